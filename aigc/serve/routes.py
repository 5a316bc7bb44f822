"""The routes of ``aigc serve`` and the models that document them in the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from .._result import Result
from .batching import QueueFull
from .limits import ApiError, check_token, clean_message, parse_json, parse_multipart, read_body

__all__ = ["ErrorBody", "ScoreItem", "ScoreRequest", "ScoreResponse", "add_routes"]


class ScoreRequest(BaseModel):
    """Texts, or images as base64 strings (a ``data:...;base64,`` prefix is allowed)."""

    model_config = ConfigDict(extra="forbid")
    items: list[str] = Field(..., min_length=1, description="texts, or base64-encoded image files; at most --max-items")
    threshold: str | float | None = Field(None, description="a threshold name of the bundle (fpr@1%, fpr@5%, balanced) or a probability; default: the bundle's")
    groups: list[str | None] | None = Field(None, description="one group per item (or null): selects per-group thresholds where the bundle has them")


class ScoreItem(BaseModel):
    """The runtime's result for one item (``aigc.Result.to_dict``), its position and the sha256 of its bytes."""

    model_config = ConfigDict(extra="allow")
    index: int
    item_sha256: str | None = None
    probability: float | None = Field(None, description="calibrated P(ai); null when the item failed")
    label: str | None = None
    threshold_name: str | None = None
    threshold: float | None = None
    out_of_support: bool = False
    support_reasons: list[str] = []
    warnings: list[str] = []
    error: str | None = None
    meta: dict[str, Any] = {}


class ScoreResponse(BaseModel):
    bundle: str
    bundle_name: str | None = None
    bundle_sha256: str = Field(..., description="sha256 of the bundle's bundle.json (which holds the sha256 of every file)")
    modality: str
    variant: str
    n: int
    n_failed: int
    items: list[ScoreItem]


class ErrorBody(BaseModel):
    error: str
    kind: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": d}
    for code, d in {400: "malformed body (JSON, UTF-8, multipart)", 401: "missing or wrong bearer token",
                    404: "unknown bundle", 413: "body or item count above the limits",
                    415: "content type is neither application/json nor multipart/form-data",
                    422: "invalid request (fields, threshold)", 503: "queue full or not ready (see Retry-After)",
                    504: "not answered within the per-request timeout"}.items()
}

_SCORE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": ScoreRequest.model_json_schema()},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["items"],
                "properties": {"items": {"type": "array", "items": {"type": "string", "format": "binary"}},
                               "threshold": {"type": "string"},
                               "groups": {"type": "array", "items": {"type": "string"}}}}},
        },
    }
}


def _card(s: Any) -> dict[str, Any]:
    from ..cli._info import render_card

    spec = s.detector.spec
    return {
        "name": s.name,
        "bundle_name": spec.get("name"),
        "bundle_sha256": s.sha256,
        "modality": spec["modality"],
        "labels": spec["labels"],
        "variant": s.detector.variant,
        "variants": spec["model"]["variants"],
        "thresholds": spec["thresholds"],
        "group_thresholds": spec.get("group_thresholds"),
        "calibration": spec["calibration"],
        "support": spec.get("support"),
        "variants_eval": spec.get("variants_eval"),
        "metrics": spec.get("metrics"),
        "provenance": spec.get("provenance"),
        "drift_available": s.drift.hist is not None,
        "shadow": s.shadow.report() if s.shadow is not None else None,
        "card": render_card(spec),
    }


def add_routes(app: Any, holder: dict[str, Any]) -> None:
    """Register every route on ``app``; ``holder["state"]`` is the service's State."""
    bearer = HTTPBearer(auto_error=False, description="the token of --token-file (when the service has one)")

    def auth(request: Request, _: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        check_token(holder["state"].config.token, request.headers.get("authorization"))

    def served(name: str) -> Any:
        s = holder["state"].bundles.get(name)
        if s is None:
            raise ApiError(404, "unknown_bundle", f"no bundle named {name[:64]!r}; GET /v1/bundles lists them")
        return s

    @app.get("/healthz", summary="the process is up", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="every bundle is loaded and warmed", tags=["health"],
             responses={503: {"model": ErrorBody, "description": "not ready (starting or shutting down)"}})
    async def readyz() -> Any:
        st = holder["state"]
        if not st.ready:
            raise ApiError(503, "not_ready", "not ready", {"Retry-After": str(st.config.retry_after_s)})
        return {"status": "ready", "bundles": sorted(st.bundles)}

    @app.get("/metrics", summary="Prometheus metrics", tags=["monitoring"], dependencies=[Depends(auth)],
             response_class=Response, responses={401: _ERRORS[401]})
    async def metrics() -> Any:
        body, ctype = holder["state"].metrics.render()
        return Response(body, media_type=ctype)

    @app.get("/v1/bundles", summary="the cards of every bundle", tags=["bundles"], dependencies=[Depends(auth)],
             responses={401: _ERRORS[401]})
    async def bundles() -> dict[str, Any]:
        return {"bundles": [_card(s) for s in holder["state"].bundles.values()]}

    @app.get("/v1/bundles/{name}", summary="one bundle's card", tags=["bundles"], dependencies=[Depends(auth)],
             responses={401: _ERRORS[401], 404: _ERRORS[404]})
    async def bundle(name: str) -> dict[str, Any]:
        return _card(served(name))

    @app.get("/v1/bundles/{name}/drift", summary="PSI, flag rates and out-of-support rate of the live window",
             tags=["monitoring"], dependencies=[Depends(auth)], responses={401: _ERRORS[401], 404: _ERRORS[404]})
    async def drift(name: str) -> dict[str, Any]:
        return served(name).drift.report()

    @app.post("/v1/score/{bundle}", summary="score texts or images with a bundle", tags=["scoring"],
              dependencies=[Depends(auth)], response_model=ScoreResponse, responses=_ERRORS, openapi_extra=_SCORE_BODY)
    async def score(bundle: str, request: Request) -> Any:
        st = holder["state"]
        s = served(bundle)
        cfg = st.config
        if not st.ready:
            raise ApiError(503, "not_ready", "not ready", {"Retry-After": str(cfg.retry_after_s)})
        s.batcher.arriving += 1
        try:
            parsed = await _parse(request, s.detector.modality, cfg)
        finally:
            s.batcher.arriving -= 1
        threshold = parsed.threshold if parsed.threshold is not None else s.detector.default_threshold
        try:
            s.detector.resolve_threshold(threshold)
            for it in parsed.items:
                if it.group is not None:
                    s.detector.resolve_threshold(threshold, it.group)
        except (KeyError, ValueError) as e:
            raise ApiError(422, "invalid_threshold", str(e.args[0] if e.args else e)) from None
        bad = parsed.item_errors
        good = [it for k, it in enumerate(parsed.items) if k not in bad]
        try:
            scored = await s.batcher.submit(good, threshold, cfg.request_timeout_s) if good else []
        except QueueFull:
            raise ApiError(503, "queue_full", "the queue is full; retry later", {"Retry-After": str(cfg.retry_after_s)}) from None
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", f"not answered within {cfg.request_timeout_s:g} s (--timeout)") from None
        if bad:  # refused while parsing: each fails alone, like the runtime's failed items
            st.metrics.items.labels(bundle=s.name, status="error").inc(len(bad))
            st.metrics.error("item", len(bad))
        done = iter(scored)
        items = []
        for k, it in enumerate(parsed.items):
            if k in bad:
                name, value = s.detector.resolve_threshold(threshold, it.group)
                d, sha = Result(float("nan"), None, name, value, bad[k][0]).to_dict(), bad[k][1]
            else:
                x = next(done)
                d, sha = x.result.to_dict(), x.sha256
            if d.get("error"):
                d["error"] = clean_message(str(d["error"]))
            items.append({"index": k, "item_sha256": sha, **d})
        return _json({
            "bundle": s.name, "bundle_name": s.detector.spec.get("name"), "bundle_sha256": s.sha256,
            "modality": s.detector.modality, "variant": s.detector.variant, "n": len(items),
            "n_failed": sum(1 for i in items if i["error"]), "items": items,
        })  # fmt: skip


def _default(o: Any) -> Any:
    """numpy scalars and arrays, sets and other values a runtime result may carry, as JSON values."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    return str(o)


def _finite(x: Any) -> Any:
    """``x`` with NaN and infinities replaced by None (JSON has no NaN)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def _json(body: dict[str, Any]) -> Response:
    """The answer as JSON: whatever per-item fields the runtime's Result.to_dict gives pass through."""
    data = json.dumps(_finite(body), ensure_ascii=False, allow_nan=False, default=_default, separators=(",", ":"))
    return Response(data.encode("utf-8"), media_type="application/json")


async def _parse(request: Any, modality: str, cfg: Any) -> Any:
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype not in ("application/json", "multipart/form-data"):
        raise ApiError(415, "unsupported_media_type",
                       f"content type {ctype[:60] or '(none)'!r}; send application/json or multipart/form-data")  # fmt: skip
    body = await read_body(request, cfg.max_body_bytes)
    if ctype == "application/json":
        return parse_json(body, cfg.max_items)
    return await parse_multipart(request, modality, cfg.max_items, cfg.max_body_bytes)
