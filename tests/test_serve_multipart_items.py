"""aigc serve: a multipart text file that is not UTF-8 fails alone (its index, the others scored); the
unknown-bundle 404 names the real route; error messages keep the service's own routes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

import httpx
from _serve_helpers import serve_in_thread

from aigc.serve import ServeConfig
from aigc.serve.limits import clean_message


@pytest.fixture(scope="module")
def server(tiny_text_bundle: Path) -> Any:
    cfg = ServeConfig(bundles={"text": str(tiny_text_bundle)}, max_items=8, max_body_bytes=200_000, max_text_chars=200)
    with serve_in_thread(cfg) as (url, state):
        yield url, state


def test_one_non_utf8_file_fails_alone(server: Any) -> None:
    url, _ = server
    files = [("items", ("a.txt", b"the cat sat", "text/plain")), ("items", ("b.txt", b"caf\xe9", "text/plain")),
             ("items", ("c.txt", b"moreover delve", "text/plain"))]  # fmt: skip
    r = httpx.post(f"{url}/v1/score/text", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["n"] == 3 and body["n_failed"] == 1
    bad = body["items"][1]
    assert bad["index"] == 1 and bad["probability"] is None and bad["label"] is None
    assert "not valid UTF-8 (byte 3)" in bad["error"]
    assert bad["item_sha256"] == hashlib.sha256(b"caf\xe9").hexdigest()
    j = httpx.post(f"{url}/v1/score/text", json={"items": ["the cat sat", "moreover delve"]}).json()
    ok = [body["items"][0], body["items"][2]]
    assert [i["index"] for i in ok] == [0, 2] and all(i["error"] is None for i in ok)
    assert [i["probability"] for i in ok] == [i["probability"] for i in j["items"]]
    assert [i["threshold"] for i in body["items"]] == [j["items"][0]["threshold"]] * 3


def test_only_non_utf8_files_still_answer_per_item(server: Any) -> None:
    url, _ = server
    r = httpx.post(f"{url}/v1/score/text", files=[("items", ("b.txt", b"\xff\xfe", "text/plain"))])
    assert r.status_code == 200 and r.json()["n_failed"] == 1 and "UTF-8" in r.json()["items"][0]["error"]


def test_unknown_bundle_names_the_real_route(server: Any) -> None:
    url, _ = server
    r = httpx.get(f"{url}/v1/bundles/nope")
    assert r.status_code == 404 and "GET /v1/bundles lists them" in r.json()["error"], r.text
    assert "<path>" not in r.json()["error"]


def test_clean_message_keeps_routes_and_hides_paths() -> None:
    assert clean_message("GET /v1/bundles lists them") == "GET /v1/bundles lists them"
    assert clean_message("cannot read /home/alice/secret/x.bin") == "cannot read <path>"
