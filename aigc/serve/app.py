"""The FastAPI application: bundles loaded and warmed in the lifespan, the request-metrics middleware,
error handlers that never leak a stack trace or a path, and the routes of :mod:`aigc.serve.routes`."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from .._bundle import open_bundle
from .._detector import Detector
from .batching import Batcher, Scored
from .config import ServeConfig
from .drift import DriftMonitor
from .limits import ApiError, clean_message
from .metrics import Metrics
from .shadow import ScoreLog, ShadowRunner, log_row

__all__ = ["Served", "State", "create_app"]

log = logging.getLogger("aigc.serve")


@dataclass
class Served:
    """One bundle behind the service."""

    name: str
    detector: Detector
    sha256: str
    batcher: Batcher
    drift: DriftMonitor
    shadow: ShadowRunner | None = None


@dataclass
class State:
    config: ServeConfig
    metrics: Metrics
    bundles: dict[str, Served] = field(default_factory=dict)
    ready: bool = False
    score_log: ScoreLog | None = None


def _load(path: str, cfg: ServeConfig) -> tuple[Detector, str]:
    b = open_bundle(path)
    det = Detector(b, providers=cfg.provider, threads=cfg.threads, variant=cfg.variant, batch_size=cfg.max_batch)
    return det, b.json_sha256


def _warm(det: Detector) -> None:
    """One item through the whole path, so that the first request does not pay for ORT's first run."""
    if det.modality == "text":
        det.score(["warm up the model with one short text"], det.default_threshold)
        return
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (127, 127, 127)).save(buf, "PNG")
    det.score([buf.getvalue()], det.default_threshold)


def _on_scored(state: State, served_name: str) -> Any:
    def hook(scored: list[Scored], thresholds: list[str | float], groups: list[str | None]) -> None:
        s = state.bundles[served_name]
        s.drift.add([x.result for x in scored])
        if s.shadow is not None:
            s.shadow.offer(scored, thresholds, groups)
        elif state.score_log is not None:
            state.score_log.write([log_row(s.name, (s.detector, s.sha256), x, g, state.config.log_content)
                                   for x, g in zip(scored, groups, strict=True)])  # fmt: skip

    return hook


def load_state(cfg: ServeConfig, metrics: Metrics) -> State:
    """Load, warm and wire every bundle (and shadow candidate); raises on an unusable bundle."""
    state = State(cfg, metrics)
    if cfg.score_log:
        state.score_log = ScoreLog(cfg.score_log, cfg.score_log_max_bytes, cfg.score_log_backups)
    for name, path in cfg.bundles.items():
        det, sha = _load(path, cfg)
        _warm(det)
        batcher = Batcher(name, det, metrics, cfg.max_batch, cfg.max_wait_ms, cfg.max_queue, cfg.batching,
                          cfg.max_image_pixels, cfg.max_text_chars, on_scored=_on_scored(state, name),
                          provenance=cfg.provenance, weak_groups=cfg.weak_groups)  # fmt: skip
        served = Served(name, det, sha, batcher, DriftMonitor(name, det.spec, cfg.drift_window, metrics))
        if name in cfg.shadow:
            cand, cand_sha = _load(cfg.shadow[name], cfg)
            _warm(cand)
            served.shadow = ShadowRunner(name, det, sha, cand, cand_sha, metrics, cfg.shadow_queue, state.score_log,
                                         cfg.log_content, cfg.drift_window)  # fmt: skip
        state.bundles[name] = served
        log.info("bundle %s: %s (%s, sha256 %s)", name, det.spec.get("name"), det.modality, sha[:12])
    return state


def _route_label(path: str, bundles: dict[str, Served]) -> tuple[str, str]:
    """(route template, bundle) for the metrics; unknown names collapse to '-' to bound the label set."""
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[:2] == ["v1", "score"]:
        return "/v1/score/{bundle}", parts[2] if parts[2] in bundles else "-"
    if len(parts) >= 3 and parts[:2] == ["v1", "bundles"]:
        tail = "/drift" if len(parts) == 4 and parts[3] == "drift" else ""
        return "/v1/bundles/{name}" + tail, parts[2] if parts[2] in bundles else "-"
    if path in ("/v1/bundles", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        return path, ""
    return "other", ""


class _RequestMetrics:
    """Pure ASGI middleware: counts requests by route, bundle and status and times them."""

    def __init__(self, app: Any, state: State) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(msg: Any) -> None:
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route, bundle = _route_label(scope.get("path", ""), self.state.bundles)
            m = self.state.metrics
            m.requests.labels(route=route, bundle=bundle, status=str(status["code"])).inc()
            m.latency.labels(route=route).observe(time.perf_counter() - t0)


def _error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message, "kind": kind}, status_code=status, headers=headers)


def create_app(config: ServeConfig, state: State | None = None) -> Any:
    """The ASGI app. Bundles load in the lifespan (or pass a ready ``state``, as tests may)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from .routes import add_routes

    config.check()
    metrics = state.metrics if state is not None else Metrics()
    holder: dict[str, State] = {"state": state or State(config, metrics)}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not holder["state"].bundles:
            loaded = await asyncio.get_running_loop().run_in_executor(None, load_state, config, metrics)
            holder["state"].__dict__.update(loaded.__dict__)
        st = holder["state"]
        for s in st.bundles.values():
            s.batcher.start()
            if s.shadow is not None:
                s.shadow.start()
        st.ready = True
        try:
            yield
        finally:
            st.ready = False
            for s in st.bundles.values():
                await s.batcher.stop()
                if s.shadow is not None:
                    await asyncio.get_running_loop().run_in_executor(None, s.shadow.stop)
            if st.score_log is not None:
                st.score_log.close()

    app = FastAPI(
        title="aigc-sentinel detector service",
        version=_version(),
        description="Calibrated scores of AI-generated images and texts from aigc bundles. "
                    "Every score equals `aigc score`'s for the same bundle and item.",
        lifespan=lifespan,
    )  # fmt: skip
    app.state.aigc = holder["state"]

    @app.exception_handler(ApiError)
    async def _api_error(request: Any, exc: ApiError) -> Any:
        holder["state"].metrics.error(exc.kind)
        return _error_response(exc.status, exc.kind, clean_message(exc.message), exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Any, exc: StarletteHTTPException) -> Any:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        holder["state"].metrics.error(kind)
        msg = exc.detail if isinstance(exc.detail, str) else kind.replace("_", " ")
        return _error_response(exc.status_code, kind, clean_message(msg), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Any, exc: RequestValidationError) -> Any:
        holder["state"].metrics.error("invalid_request")
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()[:5]]
        return _error_response(422, "invalid_request", clean_message("; ".join(parts))[:500])

    @app.exception_handler(Exception)
    async def _internal(request: Any, exc: Exception) -> Any:
        log.exception("internal error on %s", request.url.path)
        holder["state"].metrics.error("internal")
        return _error_response(500, "internal", "internal error (logged by the service)")

    add_routes(app, holder)
    app.add_middleware(_RequestMetrics, state=holder["state"])
    return app


def _version() -> str:
    import aigc

    return aigc.__version__
