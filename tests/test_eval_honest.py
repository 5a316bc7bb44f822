"""Honest numbers and careful arguments in ``aigc eval``: exact intervals for counts at a threshold, the
summary's small markers and interval sentence, weakest slices that are parts of the data, overlap with the
bundle's own data, and argument errors (exit 2) before anything is written."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from aigc._bundle import write_bundle
from aigc._overlap import write_data_hashes
from aigc.cli import main
from aigc.report import evaluate_scores
from aigc.report.summary import render_summary
from tests._bundles import build_bundle
from tests._eval_data import write_text_data


def _run(args: list[object]) -> int:
    return main(["eval", *[str(a) for a in args], "--no-progress"])


def test_zero_of_100_humans_gets_an_exact_interval() -> None:
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(100, int), np.ones(100, int)]
    p = np.r_[rng.uniform(0, 0.5, 100), rng.uniform(0.3, 1.0, 100)]
    for n_boot in (200, 0):
        t = evaluate_scores(y, p, {"fpr@1%": 0.9}, n_boot=n_boot)["thresholds"]["fpr@1%"]
        assert t["fpr"]["value"] == 0.0 and t["fpr"]["k"] == 0 and t["fpr"]["n"] == 100
        lo, hi = t["fpr"]["ci"]
        assert lo == 0.0 and hi == pytest.approx(0.0362, abs=5e-5)  # 1 - 0.025 ** (1 / 100)
        assert t["recall"]["n"] == 100 and t["recall"]["ci"][0] < t["recall"]["value"] < t["recall"]["ci"][1]
        assert t["precision"]["value"] == 1.0 and t["precision"]["ci"][1] == 1.0 and t["precision"]["ci"][0] < 0.97


def test_small_counts_are_marked() -> None:
    y = np.r_[np.zeros(10, int), np.ones(200, int)]
    p = np.r_[np.linspace(0, 0.4, 10), np.linspace(0.2, 1, 200)]
    t = evaluate_scores(y, p, {"t": 0.5}, n_boot=0, min_n=30)["thresholds"]["t"]
    assert t["fpr"]["small"] and not t["recall"]["small"]


def _metrics(tmp: Path, bundle: Path, *extra: object) -> tuple[dict, str, str]:
    data = write_text_data(tmp / "d.jsonl", n=80)
    rep = tmp / "rep"
    assert _run([bundle, data, "--report", rep, "--no-robustness", "--min-slice", "30", *extra]) == 0
    return (json.loads((rep / "metrics.json").read_text()), (rep / "summary.md").read_text(),
            (rep / "report.html").read_text())  # fmt: skip


def test_summary_says_no_bootstrap_and_carries_small_markers(tiny_text_bundle: Path, tmp_path: Path) -> None:
    m, summary, html = _metrics(tmp_path, tiny_text_bundle, "--bootstrap", "0", "--slice-by", "language,domain")
    assert "0 bootstrap replicates" not in summary and "were not computed" in summary and "were not computed" in html
    o = m["bundles"][0]["overall"]
    assert o["tpr_at_fpr"]["0.1%"]["small"]  # 40 humans allow no false positive at 0.1%
    assert "(small)" in summary
    assert "Clopper-Pearson" in summary
    # "weakest slices" never names a slice holding every scored item
    n = m["bundles"][0]["n_scored"]
    whole = [f"{f}={r['group']}" for f, rows in m["bundles"][0]["slices"].items() for r in rows if r["n"] == n]
    line = next((x for x in summary.splitlines() if x.startswith("Weakest slices")), "")
    assert not any(w in line for w in whole)


def test_weakest_slices_skip_the_whole_data_set() -> None:
    b = {"name": "b", "n_scored": 100, "failures": {"count": 0}, "thresholds": {},
         "overall": {"auroc": {"value": 0.9, "ci": None}, "ap": {"value": 0.9, "ci": None}, "tpr_at_fpr": {},
                     "thresholds": {}, "calibration": {"ece": {"value": 0.1}, "brier": {"value": 0.1}}},
         "slices": {"language": [{"group": "en", "n": 100, "auroc": {"value": 0.5, "small": False}}],
                    "domain": [{"group": "news", "n": 60, "auroc": {"value": 0.7, "small": False}}]}}  # fmt: skip
    m = {"bundles": [b], "data": {"source": "x", "modality": "text", "n_items": 100, "n_human": 50, "n_ai": 50,
                                  "problems": {"count": 0}},
         "settings": {"bootstrap": 10, "bootstrap_method": "percentile", "level": 0.95, "seed": 0, "min_slice": 30},
         "schema_version": 1}  # fmt: skip
    s = render_summary(m)
    assert "domain=news 0.700" in s and "language=en" not in s


def test_overlap_with_training_and_calibration_is_warned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_text_data(tmp_path / "d.jsonl", n=80, extra_bad_rows=False)
    texts = [json.loads(x)["text"] for x in data.read_text().splitlines()]
    b = build_bundle(tmp_path / "b", "text")
    spec = json.loads((b / "bundle.json").read_text())
    # training: 20 of the texts with other whitespace (the hash normalises it); calibration: 10 others
    spec["data_hashes"] = write_data_hashes(b, texts[20:30], ["  " + t.replace(" ", "\n") for t in texts[:20]], "text")
    write_bundle(b, spec, overwrite=True)
    rep = tmp_path / "rep"
    assert _run([b, data, "--report", rep, "--no-robustness", "--bootstrap", "0"]) == 0
    err = capsys.readouterr().err
    ov = json.loads((rep / "metrics.json").read_text())["bundles"][0]["overlap"]
    assert ov["status"] == "checked"
    assert ov["training"]["n_overlap"] == 20 and ov["calibration"]["n_overlap"] == 10
    for text in (err, (rep / "summary.md").read_text(), (rep / "report.html").read_text()):
        assert "20 of 80 evaluated items" in text and "training data" in text and "10 of 80" in text


def test_old_bundle_overlap_is_unknown(tiny_text_bundle: Path, tmp_path: Path) -> None:
    m, summary, html = _metrics(tmp_path, tiny_text_bundle, "--bootstrap", "0")
    assert m["bundles"][0]["overlap"]["status"] == "unknown"
    assert "unknown" in summary and "Overlap" in html


def test_argument_errors_exit_2_with_suggestions(tiny_text_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_text_data(tmp_path / "d.jsonl", n=40)
    rep = tmp_path / "rep"
    cases = [
        (["--slice-by", "langauge"], "did you mean 'language'"),
        (["--fairness-by", "domian"], "did you mean 'domain'"),
        (["--bootstrap-cluster", "domian"], "did you mean 'domain'"),
        (["--threshold", "fpr@5"], "did you mean 'fpr@5%'"),
        (["--limit", "-3"], "--limit"),
        (["--robustness-limit", "-1"], "--robustness-limit"),
        (["--min-slice", "-5"], "--min-slice"),
    ]
    for extra, want in cases:
        assert _run([tiny_text_bundle, data, "--report", rep, *extra]) == 2, extra
        assert want in capsys.readouterr().err
    assert not rep.exists()


def test_existing_report_refused_and_files_get_normal_modes(tiny_text_bundle: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    data = write_text_data(tmp_path / "d.jsonl", n=40)
    rep = tmp_path / "rep"
    old = os.umask(0o022)
    try:
        args = [tiny_text_bundle, data, "--report", rep, "--no-robustness", "--bootstrap", "0"]
        assert _run(args) == 0
        for f in ("report.html", "metrics.json", "summary.md"):
            assert stat.S_IMODE((rep / f).stat().st_mode) == 0o644
        before = (rep / "metrics.json").read_text()
        assert _run(args) == 2
        assert "--overwrite" in capsys.readouterr().err
        assert (rep / "metrics.json").read_text() == before
        assert _run([*args, "--overwrite"]) == 0
    finally:
        os.umask(old)
