"""``aigc serve BUNDLE... [--host 127.0.0.1] [--port 8080]``: the detector as an HTTP service.

Binds to loopback unless ``--host`` says otherwise. On SIGTERM (or Ctrl-C) it stops accepting, answers
every accepted request, and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys

from .config import ConfigError, ServeConfig, bundle_name, read_token

__all__ = ["add_arguments", "config_from_args", "run"]

log = logging.getLogger("aigc.serve")
D = ServeConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundles", nargs="+", metavar="[NAME=]BUNDLE",
                   help="bundles to serve (folders or .zip); served at /v1/score/NAME (default NAME: the folder name)")
    g = p.add_argument_group("network")
    g.add_argument("--host", default=D.host, help="address to bind (default: 127.0.0.1, loopback only)")
    g.add_argument("--port", type=int, default=D.port,
                   help="port (default: 8080; 0: a free port, and the start line says which)")
    g.add_argument("--token-file", default=None, help="file holding a bearer token that every /v1 and /metrics request must send")
    g = p.add_argument_group("batching")
    g.add_argument("--max-batch", type=int, default=D.max_batch, help=f"items per model batch (default: {D.max_batch})")
    g.add_argument("--max-wait-ms", type=float, default=D.max_wait_ms,
                   help=f"longest wait for a batch to fill while requests arrive (default: {D.max_wait_ms:g})")
    g.add_argument("--no-batching", action="store_true", help="score each request alone (no merging across requests)")
    g.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: one per core)")
    g.add_argument("--provider", default=None, help="execution provider(s), e.g. cpu or cuda")
    g.add_argument("--variant", default=D.variant, help="model variant: fp32, int8 or fp16 (as the bundles offer)")
    g.add_argument("--no-provenance", action="store_true",
                   help="do not read what image files declare about their origin (read by default, as aigc score does)")
    g.add_argument("--weak-groups", choices=("warn", "refuse"), default=D.weak_groups,
                   help="an item whose group the bundle marks weak: warn (label it, with a warning; default) or refuse "
                        "(no label, the item's error says why), as aigc score --weak-groups")
    g = p.add_argument_group("limits")
    g.add_argument("--max-body-bytes", type=int, default=D.max_body_bytes, help=f"largest request body (default: {D.max_body_bytes}; 413 above)")
    g.add_argument("--max-items", type=int, default=D.max_items, help=f"items per request (default: {D.max_items}; 413 above)")
    g.add_argument("--max-image-pixels", type=int, default=D.max_image_pixels,
                   help=f"pixels of one image, read from its header before decoding (default: {D.max_image_pixels}; the item fails above)")
    g.add_argument("--max-text-chars", type=int, default=D.max_text_chars,
                   help=f"characters of one text (default: {D.max_text_chars}; the item fails above)")
    g.add_argument("--max-queue", type=int, default=D.max_queue,
                   help=f"items waiting per bundle (default: {D.max_queue}; 503 with Retry-After above)")
    g.add_argument("--timeout", type=float, default=D.request_timeout_s,
                   help=f"seconds a request may wait for its answer (default: {D.request_timeout_s:g}; 504 after)")
    g = p.add_argument_group("monitoring")
    g.add_argument("--drift-window", type=int, default=D.drift_window, help=f"scores kept per bundle for drift (default: {D.drift_window})")
    g.add_argument("--shadow", action="append", default=[], metavar="NAME=CANDIDATE",
                   help="also score every item of bundle NAME with the CANDIDATE bundle, off the response path")
    g.add_argument("--shadow-queue", type=int, default=D.shadow_queue, help=f"items waiting for the shadow (default: {D.shadow_queue}; dropped above)")
    g.add_argument("--score-log", default=None, metavar="FILE", help="append a JSONL row per scored item (item sha256, both verdicts)")
    g.add_argument("--score-log-max-bytes", type=int, default=D.score_log_max_bytes, help="rotate the score log at this size")
    g.add_argument("--score-log-backups", type=int, default=D.score_log_backups, help="rotated score logs kept")
    g.add_argument("--log-content", action="store_true", help="write the items themselves into the score log (default: only their sha256)")


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """ServeConfig from parsed arguments; ConfigError names the flag at fault."""
    bundles: dict[str, str] = {}
    for a in args.bundles:
        name, path = bundle_name(a)
        if name in bundles:
            raise ConfigError(f"two bundles named {name!r}; name them: NAME=PATH")
        bundles[name] = path
    shadow: dict[str, str] = {}
    for s in args.shadow:
        if "=" not in s:
            raise ConfigError(f"--shadow {s!r}: expected NAME=CANDIDATE_BUNDLE")
        name, path = s.split("=", 1)
        shadow[name] = path
    cfg = ServeConfig(
        bundles=bundles, host=args.host, port=args.port, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
        batching=not args.no_batching, max_body_bytes=args.max_body_bytes, max_items=args.max_items,
        max_image_pixels=args.max_image_pixels, max_text_chars=args.max_text_chars, max_queue=args.max_queue,
        request_timeout_s=args.timeout, token=read_token(args.token_file) if args.token_file else None,
        threads=args.threads, provider=args.provider, variant=args.variant, drift_window=args.drift_window,
        shadow=shadow, shadow_queue=args.shadow_queue, score_log=args.score_log,
        score_log_max_bytes=args.score_log_max_bytes, score_log_backups=args.score_log_backups, log_content=args.log_content,
        provenance=not args.no_provenance, weak_groups=args.weak_groups,
    )  # fmt: skip
    cfg.check()
    return cfg


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ModuleNotFoundError as e:
        print(f"aigc serve: needs the serve extra ({e.name} is not installed): pip install 'aigc-sentinel[serve]'", file=sys.stderr)
        return 2
    try:
        cfg = config_from_args(args)
    except ConfigError as e:
        print(f"aigc serve: {e}", file=sys.stderr)
        return 2
    from .._bundle import BundleError
    from .._session import ProviderError
    from .app import Metrics, create_app, load_state

    metrics = Metrics()
    try:
        state = load_state(cfg, metrics)
    except (BundleError, ProviderError, OSError, ValueError) as e:
        print(f"aigc serve: {e}", file=sys.stderr)
        return 2
    app = create_app(cfg, state)
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: reachable from other machines%s", cfg.host, "" if cfg.token else " WITHOUT a token (--token-file)")
    try:
        sock = bind_socket(cfg.host, cfg.port)
    except OSError as e:
        print(f"aigc serve: cannot listen on {cfg.host}:{cfg.port} ({e.strerror or e})", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(
        app, host=cfg.host, port=port, log_level="warning", access_log=False, server_header=False,
        timeout_graceful_shutdown=int(cfg.request_timeout_s) + 5, lifespan="on",
    ))  # fmt: skip
    # uvicorn re-raises the signal that stopped it once it has drained; a no-op handler keeps the exit code 0
    signal.signal(signal.SIGTERM, lambda *_: None)
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    print(f"aigc serve: {', '.join(cfg.bundles)} on http://{host}:{port} (OpenAPI at /docs)", file=sys.stderr, flush=True)
    server.run(sockets=[sock])
    return 0 if server.started else 1


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: a free port; ``getsockname`` tells which), as uvicorn binds
    its own, so that the start line can name the real port before the server runs."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
