"""bench/score_run_texts.py scores texts with a finished run's torch model exactly as ``aigc train`` scored its
dev split (a tiny random Llama's ``zeroshot:features`` run): same scores, same predictions rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests._bench import bench_main

pytest.importorskip("torch")


def test_scores_match_the_runs_own_predictions(tmp_path: Path) -> None:
    from test_zeroshot_pipeline import train_features_run

    *_, run = train_features_run(tmp_path, {}, "score-texts", 40)
    dev = [json.loads(x) for x in (run / "splits" / "dev.jsonl").read_text().splitlines()]
    data = tmp_path / "dev_texts.jsonl"
    data.write_text("".join(json.dumps({"text": r["item"], "label": r["label"], "domain": r.get("domain")}) + "\n"
                            for r in dev), encoding="utf-8")
    out = tmp_path / "extra.jsonl"
    main = bench_main("score_run_texts")
    assert main([str(run), str(data), "--out", str(out)]) == 0
    mine = [json.loads(x) for x in out.read_text().splitlines()]
    theirs = [json.loads(x) for x in (run / "predictions" / "dev.jsonl").read_text().splitlines()]
    assert len(mine) == len(theirs) == len(dev) > 5
    np.testing.assert_allclose([r["score"] for r in mine], [r["score"] for r in theirs], rtol=0, atol=1e-6)
    assert [r["label"] for r in mine] == [r["label"] for r in theirs]
    assert main([str(run), str(data), "--out", str(out)]) == 2  # an existing output is never replaced
