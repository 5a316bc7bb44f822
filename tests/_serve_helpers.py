"""Helpers of the service tests: a server on a free loopback port (in a thread, or as a subprocess), items."""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token-for-tests-0123456789"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def png_bytes(w: int = 40, h: int = 40, seed: int = 0, fmt: str = "PNG") -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@contextmanager
def serve_in_thread(cfg: Any) -> Iterator[tuple[str, Any]]:
    """Run ``create_app(cfg)`` under uvicorn in a thread on a free port; yield (base url, State)."""
    import uvicorn

    from aigc.serve.app import create_app

    cfg.port = free_port()
    app = create_app(cfg)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=cfg.port, log_level="warning", lifespan="on"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not t.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the in-process server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{cfg.port}", app.state.aigc
    finally:
        server.should_exit = True
        t.join(60)


@contextmanager
def serve_subprocess(args: list[str], slow_s: float = 0.0) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``aigc serve ARGS --port 0`` as a subprocess (with each model batch slowed by ``slow_s``): the server
    picks a free port and its start line names it; waits for /readyz; yields (base url, process); kills it
    at the end if it is still running. Its output is read by a thread (``proc.lines``), so it never blocks."""
    import httpx

    boot = ("import sys, time\n"
            "import aigc._detector as d\n"
            f"slow = {slow_s!r}\n"
            "if slow:\n"
            "    orig = d.Detector.score\n"
            "    def score(self, *a, **k):\n"
            "        time.sleep(slow)\n"
            "        return orig(self, *a, **k)\n"
            "    d.Detector.score = score\n"
            "from aigc.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-c", boot, "serve", *args, "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    lines: list[str] = []
    proc.lines = lines  # type: ignore[attr-defined]
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")) if proc.stdout else None,
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    url = ""
    try:
        while True:
            if proc.poll() is not None:
                reader.join(5)
                raise RuntimeError(f"aigc serve exited with {proc.returncode}: {''.join(lines)}")
            if not url:
                m = next((re.search(r" on (http://127\.0\.0\.1:(\d+)) ", x) for x in lines if " on http://" in x), None)
                url = m.group(1) if m else ""
            if url:
                try:
                    if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"aigc serve did not become ready in 60 s: {''.join(lines)}")
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
