"""aigc serve as a subprocess on a free loopback port: the routes through the real command, auth from a
token file, SIGTERM with requests in flight (all answered, exit 0), and schemathesis on its OpenAPI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

import httpx
from _serve_helpers import TOKEN, b64, png_bytes, serve_subprocess


@pytest.fixture()
def token_file(tmp_path: Path) -> Path:
    p = tmp_path / "token"
    p.write_text(TOKEN + "\n")
    p.chmod(0o600)
    return p


def _accepted(url: str, auth: dict[str, str]) -> float:
    """Text items queued plus scored, read from /metrics."""
    n = 0.0
    for line in httpx.get(f"{url}/metrics", headers=auth).text.splitlines():
        if line.startswith(('aigc_queue_depth{bundle="text"}', 'aigc_items_total{bundle="text",status="ok"}')):
            n += float(line.split()[-1])
    return n


@pytest.mark.slow
def test_sigterm_answers_every_request_in_flight(tiny_text_bundle: Path, tiny_image_bundle: Path, token_file: Path) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with serve_subprocess([f"text={tiny_text_bundle}", f"image={tiny_image_bundle}", "--token-file", str(token_file),
                           "--no-batching"], slow_s=0.5) as (url, proc):  # fmt: skip
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert httpx.post(f"{url}/v1/score/text", json={"items": ["the cat"]}).status_code == 401
        r = httpx.post(f"{url}/v1/score/image", json={"items": [b64(png_bytes())]}, headers=auth, timeout=30)
        assert r.status_code == 200 and r.json()["items"][0]["probability"] is not None
        with ThreadPoolExecutor(6) as ex:
            futs = [ex.submit(httpx.post, f"{url}/v1/score/text", json={"items": [f"the cat {k}"]}, headers=auth, timeout=60)
                    for k in range(6)]  # fmt: skip
            deadline = time.monotonic() + 30
            while _accepted(url, auth) < 5:  # all six accepted (one in the model, the rest queued or done)
                assert time.monotonic() < deadline, "the six requests did not arrive"
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            in_flight = sum(not f.done() for f in futs)
            answers = [f.result() for f in futs]
        assert in_flight >= 3  # at 0.5 s per request, most were still waiting when the signal came
        assert [a.status_code for a in answers] == [200] * 6
        assert proc.wait(60) == 0
        time.sleep(0.2)  # the reader thread drains the last lines
        out = "".join(proc.lines)  # type: ignore[attr-defined]
        assert url in out and "Traceback" not in out  # --port 0: the start line named the free port it got


def test_serve_refuses_bad_settings(tiny_text_bundle: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    short = tmp_path / "short"
    short.write_text("abc")
    for args, msg in [([str(tiny_text_bundle), "--token-file", str(short)], "at least 16"),
                      ([str(tiny_text_bundle), "--shadow", f"other={tiny_text_bundle}"], "no bundle named 'other'"),
                      ([str(tiny_text_bundle), "--max-batch", "0"], "--max-batch"),
                      ([str(tiny_text_bundle), "--port", "70000"], "--port: found 70000"),
                      ([str(tmp_path / "missing")], "no such bundle")]:  # fmt: skip
        r = subprocess.run([sys.executable, "-m", "aigc", "serve", *args], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)
    import socket

    with socket.socket() as busy:  # a port already taken: one line naming it, exit 2
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "aigc", "serve", str(tiny_text_bundle), "--port", str(port)], env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(tiny_text_bundle: Path, tiny_image_bundle: Path, token_file: Path, tmp_path: Path) -> None:
    st = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    if not Path(st).exists():
        pytest.skip("schemathesis is not installed (the serve-dev extra)")
    with serve_subprocess([f"text={tiny_text_bundle}", f"image={tiny_image_bundle}", "--token-file", str(token_file),
                           "--max-items", "16", "--max-body-bytes", "100000"]) as (url, _):  # fmt: skip
        r = subprocess.run(
            [st, "run", f"{url}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "8", "--seed", "0",
             "--header", f"Authorization: Bearer {TOKEN}", "--request-timeout", "20", "--no-color"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
    tail = (r.stdout + r.stderr)[-3000:]
    assert r.returncode == 0, tail
    assert "not_a_server_error" in tail or "passed" in tail.lower()


def test_import_aigc_stays_light_and_the_service_is_torch_free(tiny_text_bundle: Path) -> None:
    code = (
        "import sys\n"
        "import aigc, aigc.serve, aigc.triton\n"
        "light = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'uvicorn', 'prometheus_client', 'starlette'))\n"
        "from aigc.serve.app import create_app, load_state\n"
        "from aigc.serve import ServeConfig\n"
        "from aigc.serve.metrics import Metrics\n"
        f"cfg = ServeConfig(bundles={{'t': {str(tiny_text_bundle)!r}}})\n"
        "create_app(cfg, load_state(cfg, Metrics()))\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'timm', 'datasets'))\n"
        "print('LIGHT', light, 'HEAVY', heavy)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "LIGHT [] HEAVY []" in r.stdout, r.stdout + r.stderr
