"""``--heldout-thresholds`` never ships a threshold that flags nothing: when a domain of the held-out scores
holds its humans above every ai calibration text (session 21: a domain the run also trained on through its own
pairs), export refuses and names the domain; ``--heldout-skip-domain`` leaves it out (recorded), ``--force``
keeps the threshold (recorded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("export.cli")

from aigc import _calibration
from aigc._thresholds import ThresholdError, choose_worst_group_thresholds, group_threshold
from export.build_options import BuildOptions
from export.threshold_fit import raise_to_heldout, warn_flagless
from training.heldout_scores import HELDOUT_FILE

TARGETS = (0.01, 0.05)


def _calibration_split(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    raw = np.r_[rng.normal(-2, 1, 200), rng.normal(2, 1, 200)]
    y = np.r_[np.zeros(200, int), np.ones(200, int)]
    dom = (["a", "b"] * 200)
    cal = _calibration.fit_calibration(raw, y, "platt")
    return _calibration.apply_calibration(raw, cal), y, dom, cal


def _held(rng: np.random.Generator, with_c: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    raw = [rng.normal(-1.5, 1, 120), rng.normal(-1.5, 1, 120), rng.normal(2, 1, 100)]
    y = [np.zeros(240, int), np.ones(100, int)]
    dom = ["a"] * 120 + ["b"] * 120 + ["a", "b"] * 50
    if with_c:  # 37 humans of a domain scored above every ai text by a head fitted without it
        raw.append(np.full(37, 8.0) + rng.normal(0, 0.3, 37))
        y.append(np.zeros(37, int))
        dom += ["c"] * 37
    return np.concatenate(raw), np.concatenate(y), dom


def test_a_domain_above_every_ai_text_is_refused_by_name_and_forced_only_on_request() -> None:
    rng = np.random.default_rng(0)
    p, y, dom, cal = _calibration_split(rng)
    dev = choose_worst_group_thresholds(p, y, dom, "domain", TARGETS)
    held = _held(rng, with_c=True)
    opt = BuildOptions(targets=TARGETS, worst_group_column="domain", heldout_scores=held)
    with pytest.raises(ThresholdError) as e:
        raise_to_heldout(dev, p, y, dom, opt, cal)
    msg = str(e.value)
    assert msg.startswith("fpr@1%:") and "flags none of the 200 ai calibration items (TPR 0)" in msg
    assert "domain 'c' of the held-out scores (37 humans, above all 37 humans" in msg
    assert "--heldout-skip-domain c" in msg and "--force" in msg

    forced = raise_to_heldout(dev, p, y, dom, BuildOptions(targets=TARGETS, worst_group_column="domain",
                                                           heldout_scores=held, force=True), cal)
    for name in ("fpr@1%", "fpr@5%"):
        t = forced[name]
        assert t["tpr"] == 0 and t["heldout"]["forced"] is True and t["heldout"]["set_by"] == "c"
        assert t["value"] > dev[name]["value"]


def test_leaving_the_domain_out_gives_a_threshold_that_flags_and_records_it() -> None:
    rng = np.random.default_rng(0)
    p, y, dom, cal = _calibration_split(rng)
    dev = choose_worst_group_thresholds(p, y, dom, "domain", TARGETS)
    raw_h, y_h, d_h = _held(rng, with_c=False)
    why = {"c": "left out by --heldout-skip-domain (37 rows)"}
    opt = BuildOptions(targets=TARGETS, worst_group_column="domain", heldout_scores=(raw_h, y_h, d_h),
                       heldout_left_out=why)
    out = raise_to_heldout(dev, p, y, dom, opt, cal)
    p_h = _calibration.apply_calibration(raw_h, cal)
    for tgt in TARGETS:
        name = f"fpr@{tgt * 100:g}%"
        t, h = out[name], out[name]["heldout"]
        assert t["tpr"] > 0.5 and "forced" not in h and h["left_out_domains"] == why
        assert set(h["groups"]) == {"a", "b"}
        for d in ("a", "b"):  # each domain's own threshold of the held-out scores, and the highest sets the value
            v, rule = group_threshold(p_h, y_h, np.asarray(d_h) == d, tgt)
            assert h["groups"][d]["threshold"] == v and h["groups"][d]["rule"] == rule == "conformal"
        top = max(h["groups"][d]["threshold"] for d in ("a", "b"))
        assert h["set_by"] == ("all domains pooled" if top < h["value"] else
                               next(d for d in ("a", "b") if h["groups"][d]["threshold"] >= h["value"]))
        assert h["value"] == pytest.approx(max(top, h["value"]))


def _run_with_heldout(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"domain": d, "label": i % 2, "score": float(i)} for i, d in enumerate(["news", "web"] * 30)]
    (run / HELDOUT_FILE).write_text(json.dumps({"by": "domain", "rows": rows}), encoding="utf-8")
    return run


@pytest.mark.parametrize(("extra", "what"), [
    (["--heldout-skip-domain", "wiki"], "--heldout-skip-domain wiki: the run's held-out scores have no such domain "
                                        "(they have: news, web)"),
    (["--heldout-skip-domain", "news", "--heldout-skip-domain", "web"], "leaves no row of the held-out scores"),
])
def test_skipping_an_unknown_or_every_domain_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        extra: list[str], what: str) -> None:
    from aigc.cli import main as aigc_main

    run = _run_with_heldout(tmp_path)
    argv = ["export", str(run), "--out", str(tmp_path / "b"), "--worst-group", "domain", "--heldout-thresholds", *extra]
    assert aigc_main(argv) == 2
    assert what in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_skip_domain_needs_heldout_thresholds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aigc.cli import main as aigc_main

    run = _run_with_heldout(tmp_path)
    assert aigc_main(["export", str(run), "--out", str(tmp_path / "b"), "--worst-group", "domain",
                      "--heldout-skip-domain", "news"]) == 2
    assert "pass it with --heldout-thresholds" in capsys.readouterr().err


def test_any_threshold_that_flags_no_ai_item_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(1)
    p = np.r_[rng.uniform(0.0, 0.9, 200), rng.uniform(0.0, 0.5, 100)]  # every ai item below the highest humans
    y = np.r_[np.zeros(200, int), np.ones(100, int)]
    from aigc._thresholds import choose_thresholds

    thr = choose_thresholds(p, y, targets=TARGETS)
    assert thr["fpr@1%"]["tpr"] == 0 and thr["fpr@5%"]["tpr"] == 0 and thr["balanced"]["tpr"] > 0
    with caplog.at_level("WARNING"):
        assert warn_flagless(thr) == ["fpr@1%", "fpr@5%"]
    assert "fpr@1%: P >= " in caplog.text and "flags none of the 100 ai calibration items (TPR 0)" in caplog.text
    ok = choose_thresholds(np.r_[p[:200], p[200:] + 0.5], y, targets=TARGETS)
    assert warn_flagless(ok) == []
