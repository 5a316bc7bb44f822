"""One request whose items make scoring raise fails alone, not the other requests that shared its model batch;
a text with a lone surrogate is an item error, not a failed batch (CLI and service)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

import aigc
from aigc.serve.batching import Batcher, Item
from aigc.serve.metrics import Metrics
from tests._bundles import build_bundle


def test_lone_surrogate_is_an_item_error(tmp_path: Path) -> None:
    det = aigc.load(build_bundle(tmp_path / "b", "text"))
    res = det.score(["the cat sat", "bad \udc80 text", "moreover delve"])
    assert res[0].error is None and res[2].error is None
    assert res[1].error is not None and "lone surrogate U+DC80 at character 4" in res[1].error


def test_cli_scores_the_rest_of_a_file_with_a_surrogate(tmp_path: Path) -> None:
    b = build_bundle(tmp_path / "b", "text")
    data = tmp_path / "s.jsonl"
    data.write_text('{"text":"the cat sat on the mat"}\n{"text":"bad \\udc80 x"}\n{"text":"moreover delve"}\n')
    out = tmp_path / "o.jsonl"
    p = subprocess.run([sys.executable, "-m", "aigc", "score", str(b), str(data), "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["error"] is None for r in rows] == [True, False, True]
    assert "lone surrogate" in rows[1]["error"]


def test_a_raising_request_fails_alone(tmp_path: Path) -> None:
    det = aigc.load(build_bundle(tmp_path / "b", "text"))
    real = det.score
    calls: list[list[Any]] = []

    def score(items: list[Any], **kw: Any) -> Any:
        calls.append(list(items))
        if "boom" in items:
            raise RuntimeError("boom")
        return real(items, **kw)

    det.score = score  # type: ignore[method-assign]

    async def run() -> list[Any]:
        b = Batcher("t", det, Metrics(), max_batch=32, max_wait_ms=200.0)
        b.start()
        b.arriving = 3  # three requests are arriving: the first waits for the others to share its batch
        try:
            jobs = [b.submit([Item("the cat sat"), Item("moreover delve")], "fpr@1%", 30),
                    b.submit([Item("boom")], "fpr@1%", 30),
                    b.submit([Item("the dog ran")], "fpr@1%", 30)]
            return await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            await b.stop()

    first, bad, third = asyncio.run(run())
    assert isinstance(bad, RuntimeError)
    assert len(calls[0]) == 4 and "boom" in calls[0]  # the three requests did share one model batch first
    assert [s.result.error for s in first] == [None, None] and third[0].result.error is None
    assert first[0].result.probability == pytest.approx(real(["the cat sat"])[0].probability)
