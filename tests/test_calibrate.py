"""``aigc calibrate``: round trips (tiny bundle -> calibrate on generated humans -> the thresholds hold their
target FPR on fresh humans from the same source), a labelled refit with a stated prevalence, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import aigc
from aigc._calibration import adjust_prevalence, apply_calibration, sigmoid
from aigc.cli import main

AI_WORDS = ["delve", "tapestry", "moreover", "furthermore"]
HUMAN_WORDS = ["cat", "dog", "sat", "ran", "the", "on", "mat", "a", "in", "park"]


def _texts(n: int, seed: int, ai: bool) -> list[str]:
    """The team's data: its humans use the 'AI' words more than the bundle's calibration humans did."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        q = rng.uniform(0.6, 0.95) if ai else rng.uniform(0.2, 0.7)
        words = [str(rng.choice(AI_WORDS) if rng.random() < q else rng.choice(HUMAN_WORDS)) for _ in range(int(rng.integers(6, 40)))]
        out.append(" ".join(words))
    return out


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _fpr(det: aigc.Detector, texts: list[str], name: str) -> float:
    res = det.score(texts, threshold=name)
    return float(np.mean([r.probability >= r.threshold for r in res]))


def _tol(target: float, n_cal: int, n_fresh: int) -> float:
    """3 sd of the fresh FPR around the target: the conformal threshold's own spread plus binomial sampling."""
    return 3 * float(np.sqrt(target * (1 - target) * (1 / n_cal + 1 / n_fresh)))


def test_humans_only_round_trip(tiny_text_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (tiny_text_bundle / "bundle.json").read_bytes()
    data = _jsonl(tmp_path / "humans.jsonl", [{"text": t} for t in _texts(800, 0, ai=False)])
    out = tmp_path / "mine"
    assert main(["calibrate", str(tiny_text_bundle), str(data), "--out", str(out), "--humans-only"]) == 0
    assert "calibration kept on 800 items (800 human, 0 AI" in capsys.readouterr().out
    assert (tiny_text_bundle / "bundle.json").read_bytes() == before  # the input is never changed
    new, old = aigc.load(out), aigc.load(tiny_text_bundle)  # loads: every sha256 matches
    spec = new.spec
    rec = spec["recalibration"]
    assert rec["version"] == 1 and rec["calibration"] == "kept" and rec["data"]["n_human"] == 800
    assert rec["data"]["fingerprint"].startswith("sha256:") and rec["original"]["bundle_json_sha256"]
    assert spec["calibration"] == old.spec["calibration"] and spec["model"] == old.spec["model"]
    assert spec["preprocessing"] == old.spec["preprocessing"]
    assert "kept from the original bundle" in spec["thresholds"]["balanced"]["note"]
    assert spec["support"]["text"]["outlier"]["version"] == 2 and spec["data_hashes"]["calibration"]["n"] == 800
    fresh = _texts(4000, 1, ai=False)
    for name, target in (("fpr@1%", 0.01), ("fpr@5%", 0.05)):
        t = spec["thresholds"][name]
        assert t["n_human"] == 800 and t["achieved_fpr"] <= target
        f_old, f_new = _fpr(old, fresh, name), _fpr(new, fresh, name)
        if name == "fpr@5%":
            assert f_old > 3 * target  # the shipped threshold does not transfer to this team's humans
        assert f_new <= target + _tol(target, 800, 4000), (name, f_new)
        assert f_new >= target - _tol(target, 800, 4000), (name, f_new)


def test_labelled_refit_with_prevalence(tiny_text_bundle: Path, tmp_path: Path) -> None:
    rows = [{"text": t, "label": 0} for t in _texts(500, 2, ai=False)] + [{"text": t, "label": 1} for t in _texts(300, 3, ai=True)]
    data = _jsonl(tmp_path / "lab.jsonl", rows)
    out = tmp_path / "mine.zip"
    assert main(["calibrate", str(tiny_text_bundle), str(data), "--out", str(out), "--prevalence", "0.02",
                 "--method", "platt", "--targets", "0.01,0.05"]) == 0  # fmt: skip
    det = aigc.load(out)
    cal = det.spec["calibration"]
    assert det.spec["recalibration"]["calibration"] == "refit" and cal["method"] == "platt" and cal["n"] == 800
    # an aigc that reads v1 only would ignore the shift: the bundle says v2 (and a plain one stays v1)
    assert det.spec["format_version"] == 2 and aigc.load(tiny_text_bundle).spec["format_version"] == 1
    from aigc.cli._info import render_card

    card = render_card(det.spec)
    assert "prevalence: P(ai) is moved from the 0.375 share" in card and "to 0.02" in card
    assert f"on {data} (500 human, 300 AI items): calibration refit" in card
    assert "prevalence:" not in render_card(aigc.load(tiny_text_bundle).spec)
    prev = cal["prevalence"]
    assert prev["target"] == 0.02 and prev["base"] == pytest.approx(300 / 800)
    texts = _texts(50, 4, ai=True)
    raw, _ = det.raw_scores(texts)
    plain = {k: v for k, v in cal.items() if k != "prevalence"}
    p0 = apply_calibration(raw, plain)
    p = det.predict_proba(texts)[:, 1]
    np.testing.assert_allclose(p, adjust_prevalence(p0, 300 / 800, 0.02), rtol=1e-9)
    odds = (p / (1 - p)) / (p0 / (1 - p0))
    np.testing.assert_allclose(odds, (0.02 / 0.98) / (0.375 / 0.625), rtol=1e-6)  # Bayes' rule on the odds
    assert np.all(p < p0)
    # the thresholds are set on the adjusted P and still hold their FPR on fresh humans
    fresh = _texts(3000, 5, ai=False)
    assert _fpr(det, fresh, "fpr@5%") <= 0.05 + _tol(0.05, 500, 3000)
    # a bundle without the prevalence object is not adjusted
    assert apply_calibration(np.array([1.0]), {"method": "temperature", "params": {"temperature": 2.0}})[0] == sigmoid(np.array([0.5]))[0]


def test_refusals(tiny_text_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    few = _jsonl(tmp_path / "few.jsonl", [{"text": t} for t in _texts(50, 6, ai=False)])
    out = tmp_path / "out"

    def run(*args: str) -> int:
        return main(["calibrate", str(tiny_text_bundle), *args])

    assert run(str(few), "--out", str(out), "--humans-only") == 1
    assert "needs at least 99 human items, found 50" in capsys.readouterr().err
    assert not out.exists()
    assert run(str(few), "--out", str(out), "--humans-only", "--targets", "0.05") == 0  # 19 humans suffice for 5%
    assert run(str(few), "--out", str(out), "--humans-only", "--targets", "0.05") == 2  # out exists
    assert "--overwrite" in capsys.readouterr().err
    assert run(str(few), "--out", str(out), "--humans-only", "--targets", "0.05", "--overwrite") == 0
    # labels missing when needed: a calibration refit needs AI items
    assert run(str(few), "--out", str(tmp_path / "o2"), "--humans-only", "--targets", "0.05", "--method", "platt") == 1
    assert "needs labelled AI items" in capsys.readouterr().err
    # unlabelled rows without --humans-only are not guessed
    assert run(str(few), "--out", str(tmp_path / "o3")) == 2
    assert "--humans-only" in capsys.readouterr().err
    lab = _jsonl(tmp_path / "lab.jsonl", [{"text": "the cat", "label": 1}, {"text": "a dog"}])
    assert run(str(lab), "--out", str(tmp_path / "o4"), "--humans-only") == 2
    assert "labelled AI" in capsys.readouterr().err
    # never over the input bundle
    assert run(str(few), "--out", str(tiny_text_bundle), "--humans-only", "--overwrite") == 2
    assert "is the input bundle" in capsys.readouterr().err
    assert run(str(few), "--out", str(tmp_path / "o5"), "--humans-only", "--prevalence", "1.5") == 2
    assert not any((tmp_path / f"o{k}").exists() for k in range(2, 6))
    aigc.load(tiny_text_bundle)  # still valid


def test_calibration_data_the_model_was_trained_on_is_warned_and_recorded(tmp_path: Path,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from aigc._bundle import write_bundle
    from aigc._overlap import write_data_hashes
    from tests._bundles import build_bundle

    humans = _texts(300, 3, ai=False)
    b = build_bundle(tmp_path / "b", "text")
    spec = json.loads((b / "bundle.json").read_text())
    spec["data_hashes"] = write_data_hashes(b, _texts(50, 9, ai=False), humans[:40], "text")  # 40 training items
    write_bundle(b, spec, overwrite=True)
    data = _jsonl(tmp_path / "humans.jsonl", [{"text": t} for t in humans])
    with caplog.at_level(logging.WARNING, logger="aigc"):
        assert main(["calibrate", str(b), str(data), "--out", str(tmp_path / "mine"), "--humans-only"]) == 0
    assert "40 of the 300 calibration items (40 humans) are items the model was trained on" in caplog.text
    rec = aigc.load(tmp_path / "mine").spec["recalibration"]
    assert rec["data_in_training"] == {"n": 40, "share": pytest.approx(40 / 300), "n_human": 40}
    # data it never saw: no warning, no record
    caplog.clear()
    fresh = _jsonl(tmp_path / "fresh.jsonl", [{"text": t} for t in humans[40:]])
    with caplog.at_level(logging.WARNING, logger="aigc"):
        assert main(["calibrate", str(b), str(fresh), "--out", str(tmp_path / "mine2"), "--humans-only"]) == 0
    assert "trained on" not in caplog.text and "data_in_training" not in aigc.load(tmp_path / "mine2").spec["recalibration"]


def test_console_lines_escape_paths_rows_and_bundle_text(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """An ESC sequence, a \\r or a newline in the data's path, a row, --out or the bundle's forced_reason is
    shown escaped (aigc._printable): none can clear the screen or forge a line of aigc calibrate's output."""
    import logging

    from aigc._printable import has_controls
    from tests._bundles import build_bundle

    hostile = "\x1b[2J\x1b[1;31m"
    b = build_bundle(tmp_path / "b", "text", {"variants_eval": {"fp32": {
        "forced": True, "forced_reason": f"why{hostile}\nFAKE: all fine"}}})
    data = _jsonl(tmp_path / f"d{hostile}\r.jsonl", [{"text": t} for t in _texts(40, 7, ai=False)] + [{"text": 5}])
    out = tmp_path / f"o{hostile}\nwrote FAKE"
    with caplog.at_level(logging.WARNING, logger="aigc"):
        assert main(["calibrate", str(b), str(data), "--out", str(out), "--humans-only", "--targets", "0.05"]) == 0
    cap = capsys.readouterr()
    assert "skipped 1 unusable rows (first: d\\x1b[2J\\x1b[1;31m\\r.jsonl:41: field 'text' is int" in cap.err
    assert f"wrote {tmp_path}/o\\x1b[2J\\x1b[1;31m\\nwrote FAKE: calibration kept on 40 items" in cap.out
    assert "shipped with --force: why\\x1b[2J\\x1b[1;31m\\nFAKE: all fine;" in caplog.text
    for text in (cap.out, cap.err, caplog.text):
        assert not has_controls(text.replace("\n", "")), text  # the newlines between lines, and no other
    assert aigc.load(out).spec["recalibration"]["data"]["source"] == str(data)  # the bundle keeps the exact path
    assert main(["calibrate", str(tmp_path / f"no{hostile}\rbundle"), str(data), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"aigc calibrate: bad bundle {tmp_path}/no\\x1b[2J\\x1b[1;31m\\rbundle: ")
    assert err.count("\n") == 1 and not has_controls(err.replace("\n", ""))
