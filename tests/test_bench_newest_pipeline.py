"""bench/newest_pipeline_data.py --score-run: a finished run's test part is scored with export's threshold code,
its language humans (glimpse's ``m4-*`` domains) kept apart from the English figures, and each language's
per-language thresholds (set on one half, never below the global ones) flag fewer of its other half than the
global threshold flags (synthetic raw scores in a run folder's layout; BENCHMARKS.md, session 24)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests._bench import bench_main

pytest.importorskip("torch")


def _rows(scores: np.ndarray, labels: list[int], domains: list[str], gens: list[str]) -> list[dict[str, object]]:
    return [{"score": float(s), "label": int(y), "domain": d, "generator": g, "group": f"{d}-{i}"}
            for i, (s, y, d, g) in enumerate(zip(scores, labels, domains, gens, strict=True))]


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _english(rng: np.random.Generator, n: int, machine_mean: float) -> list[dict[str, object]]:
    """``n`` humans and ``n`` machine texts in each of two domains."""
    out: list[dict[str, object]] = []
    for d in ("xsum", "writing"):
        s = np.r_[rng.normal(-3.0, 1.0, n), rng.normal(machine_mean, 1.0, n)]
        out += _rows(s, [0] * n + [1] * n, [d] * 2 * n, ["human"] * n + ["gpt-4"] * n)
    return out


def test_score_run_keeps_languages_apart_and_sets_their_thresholds(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    run = tmp_path / "run"
    (run / "predictions").mkdir(parents=True)
    _write(run / "predictions" / "dev.jsonl", _english(rng, 150, 2.0))
    held = _english(rng, 150, 2.0)
    (run / "heldout_scores.json").write_text(json.dumps({"rows": held}), encoding="utf-8")
    # Chinese humans score like machine texts (the global threshold flags many); Arabic humans like English ones
    zh, ar = rng.normal(1.5, 1.0, 50), rng.normal(-3.0, 1.0, 50)
    langs = _rows(np.r_[zh, ar], [0] * 100, ["m4-chinese"] * 50 + ["m4-arabic"] * 50, ["human"] * 100)
    _write(run / "predictions" / "test.jsonl", _english(rng, 60, 2.0) + langs)

    # the languages' machine texts, scored later (bench/score_run_texts.py): Chinese ones above its humans
    machine = _rows(np.r_[rng.normal(4.0, 1.0, 40), rng.normal(2.0, 1.0, 40)], [1] * 80,
                    ["m4-chinese"] * 40 + ["m4-arabic"] * 40, ["chatgpt"] * 80)
    _write(run / "predictions" / "extra.jsonl", machine)
    out = tmp_path / "out.json"
    assert bench_main("newest_pipeline_data")(["--score-run", str(run), "--json", str(out), "--extra",
                                               str(run / "predictions" / "extra.jsonl")]) == 0
    res = json.loads(out.read_text())
    assert res["test"]["humans"] == 120 and res["test"]["machine"] == 120  # English only
    assert set(res["by_domain"]) == {"xsum", "writing"}
    lang = res["languages"]
    assert lang["humans"] == {"arabic": 50, "chinese": 50} and lang["machine"] == {"arabic": 40, "chinese": 40}
    g = lang["global"]["fpr@1%"]
    assert g["chinese"] >= 20 and g["arabic"] <= 2, g
    per = lang["per_language"]["fpr@1%"]
    assert len(per["flagged"]) == 5 and all(n == 50 for n in per["scored"])
    glob = res["thresholds"]["fpr@1%"]["value"]
    assert min(per["thresholds"]["arabic"] + per["thresholds"]["chinese"]) >= glob - 1e-12  # never below the global
    assert all(r.startswith("above all") for r in per["rules"]["chinese"])
    # each half's threshold sits above all of its 25 humans, so the other half's flags are few
    assert np.mean(per["by_language"]["chinese"]) < g["chinese"] / 4, per["by_language"]["chinese"]
    # the cost: Chinese machine texts caught less at Chinese's own (higher) threshold, never more
    tpr_g, tpr_own = lang["global_tpr"]["fpr@1%"]["chinese"], per["tpr"]["chinese"]
    assert len(tpr_own) == 5 and all(t <= tpr_g for t in tpr_own) and min(tpr_own) < tpr_g
