"""``aigc calibrate --group-field F --groups-only``: a language added to a deployed bundle from its own humans
alone. The calibration, the global thresholds and the support stay the bundle's; each group in the data gets
thresholds above its humans (never below the global ones), later runs add or replace groups and keep the rest,
and what cannot work is refused with the reason."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from test_calibrate_groups import _texts, _write

import aigc
from aigc import _overlap
from aigc.cli import main


def _langs(tmp_path: Path, name: str, counts: dict[str, tuple[int, int]]) -> Path:
    """Human texts of each language: ``{code: (n, seed)}``, written like the bundle's 'AI' texts (rate 0.5-0.9)."""
    rows = [{"text": t, "language": code} for code, (n, seed) in counts.items() for t in _texts(n, seed, 0.5, 0.9)]
    return _write(tmp_path / name, rows)


def _digest(path: Path) -> str:
    return hashlib.sha256((path / "bundle.json").read_bytes()).hexdigest()


def _deployed(bundle: Path, tmp_path: Path) -> Path:
    """The tiny bundle thresholded on 400 humans of its main language (who rarely use its 'AI' words)."""
    rows = [{"text": t} for t in _texts(400, 0, 0.0, 0.4)]
    out = tmp_path / "deployed"
    assert main(["calibrate", str(bundle), str(_write(tmp_path / "en.jsonl", rows)), "--out", str(out),
                 "--humans-only"]) == 0
    return out


def test_groups_only_keeps_the_bundle_and_adds_languages(tiny_text_bundle: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    deployed = _deployed(tiny_text_bundle, tmp_path)
    before = _digest(deployed)
    orig = aigc.load(deployed).spec
    first = tmp_path / "first"
    assert main(["calibrate", str(deployed), str(_langs(tmp_path, "a.jsonl", {"xx": (40, 1), "yy": (10, 2)})),
                 "--out", str(first), "--humans-only", "--group-field", "language", "--groups-only"]) == 0
    console = capsys.readouterr().out
    assert _digest(deployed) == before  # the input is never changed
    det = aigc.load(first)
    spec = det.spec
    for key in ("calibration", "thresholds", "support"):
        assert spec.get(key) == orig.get(key), key
    rec = spec["recalibration"]
    assert rec["mode"] == "groups only" and rec["thresholds"] == "kept" and rec["data"]["n_human"] == 50
    assert rec["without_group"] == 0
    assert rec["group_thresholds"] == {"column": "language", "added": ["xx"], "replaced": [], "kept": [],
                                       "global_only": ["yy"], "weak": []}
    xx = spec["group_thresholds"]["groups"]["xx"]
    glob = orig["thresholds"]
    for name in ("fpr@1%", "fpr@5%"):
        assert xx[name]["value"] >= glob[name]["value"] and xx[name]["n_human"] == 40
    p_xx = det.predict_proba(_texts(40, 1, 0.5, 0.9))[:, 1]
    assert xx["fpr@1%"]["value"] > p_xx.max()
    assert spec["data_hashes"]["calibration"]["n"] == orig["data_hashes"]["calibration"]["n"] + 50
    assert _overlap.check_overlap(first, spec, _texts(40, 1, 0.5, 0.9), "text")["calibration"]["n_overlap"] == 40
    assert "language=xx (added): fpr@1%" in console and "too few humans" in console and "yy" in console
    fresh = _texts(300, 11, 0.5, 0.9)
    f_glob = np.mean([r.label == det.labels[1] for r in det.score(fresh, threshold="fpr@1%")])
    own = det.score(fresh, threshold="fpr@1%", groups=["xx"] * len(fresh))
    f_own = np.mean([r.label == det.labels[1] for r in own])
    assert own[0].threshold_name == "fpr@1%[language=xx]"
    assert f_glob > 0.08 and f_own < 0.04, (f_glob, f_own)

    # a second language later, and xx again on other humans: zz added, xx replaced, nothing else moves
    second = tmp_path / "second"
    assert main(["calibrate", str(first), str(_langs(tmp_path, "b.jsonl", {"zz": (30, 3), "xx": (60, 4)})),
                 "--out", str(second), "--humans-only", "--group-field", "language", "--groups-only"]) == 0
    spec2 = aigc.load(second).spec
    assert spec2["thresholds"] == orig["thresholds"] and spec2["calibration"] == orig["calibration"]
    g2 = spec2["recalibration"]["group_thresholds"]
    assert g2["added"] == ["zz"] and g2["replaced"] == ["xx"] and g2["kept"] == []
    assert spec2["group_thresholds"]["groups"]["xx"]["fpr@1%"]["n_human"] == 60
    assert "yy" in spec2["group_thresholds"]["skipped"]  # still told it has none of its own
    assert spec2["recalibration"]["previous"]["mode"] == "groups only"
    capsys.readouterr()
    assert main(["info", str(second)]) == 0
    assert "group thresholds by language added" in capsys.readouterr().out
    # a third run with yy alone (too few): it keeps xx and zz, and is refused as adding nothing
    assert main(["calibrate", str(second), str(_langs(tmp_path, "c.jsonl", {"yy": (10, 5)})), "--out",
                 str(tmp_path / "third"), "--humans-only", "--group-field", "language", "--groups-only"]) == 1
    assert "no group has the 20 human items" in capsys.readouterr().err and not (tmp_path / "third").exists()


def test_groups_only_refusals(tiny_text_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _langs(tmp_path, "a.jsonl", {"xx": (40, 1)})
    base = ["calibrate", str(tiny_text_bundle), str(data), "--humans-only"]
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "a"), "--groups-only"]) == 2
    assert "--groups-only sets per-group thresholds" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "b"), "--groups-only", "--group-field", "language",
                 "--targets", "0.02"]) == 2
    assert "drop --targets" in capsys.readouterr().err
    # a bundle whose group thresholds are by another field: one grouping field per bundle
    by_lang = tmp_path / "by-lang"
    assert main([*base, "--out", str(by_lang), "--groups-only", "--group-field", "language"]) == 0
    rows = [{"text": t, "region": "north"} for t in _texts(40, 6, 0.5, 0.9)] + [{"text": "no region here at all"}]
    capsys.readouterr()
    assert main(["calibrate", str(by_lang), str(_write(tmp_path / "r.jsonl", rows)), "--out", str(tmp_path / "c"),
                 "--humans-only", "--group-field", "region", "--groups-only"]) == 1
    err = capsys.readouterr().err
    assert "group thresholds are by 'language' (1 groups)" in err and "--group-field language" in err
    assert not any((tmp_path / n).exists() for n in ("a", "b", "c"))


def test_group_humans_join_the_calibration_hashes(tmp_path: Path) -> None:
    """The groups' items are added to data_hashes.json's calibration part: an evaluation on them overlaps."""
    field = _overlap.write_data_hashes(tmp_path, ["old one", "old two"], ["trained"], "text")
    spec = {"data_hashes": field}
    new = _overlap.add_calibration_items(tmp_path, field, ["new  one", "old one"], "text")
    assert new is not None and new["calibration"]["n"] == 4 and new["training"] == field["training"]
    spec["data_hashes"] = new
    hit = _overlap.check_overlap(tmp_path, spec, ["new one", "old two", "unseen"], "text")
    assert hit["calibration"]["n_overlap"] == 2 and hit["training"]["n_overlap"] == 0
    doc = json.loads((tmp_path / _overlap.DATA_HASHES_FILE).read_text())
    assert doc["training"]["n"] == 1
    assert _overlap.add_calibration_items(tmp_path, None, ["x"], "text") is None  # no hashes recorded: unknown


def test_a_variant_with_its_own_record_gets_the_groups_there() -> None:
    """int8 (``variant_calibration``) reads its own group thresholds: they go there, fp32's stay as they were."""
    from aigc._recalibrate import _store_calibration

    gt = {"column": "language", "groups": {"xx": {}}, "skipped": {}}
    spec = {"calibration": {"method": "none"}, "thresholds": {"fpr@1%": {"value": 0.9}},
            "group_thresholds": {"column": "language", "groups": {}, "skipped": {}}}
    _store_calibration(spec, "int8", {"group_thresholds": gt})
    assert spec["variant_calibration"]["int8"]["group_thresholds"] == gt
    assert spec["variant_calibration"]["int8"]["thresholds"] == spec["thresholds"]  # its view, copied whole
    assert spec["group_thresholds"]["groups"] == {}
    _store_calibration(spec, "fp32", {"group_thresholds": gt})
    assert spec["group_thresholds"] == gt


def test_a_group_the_detector_cannot_separate_is_marked_weak(tiny_text_bundle: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Glimpse's Russian ChatGPT answers rank like its humans (AUROC 0.66, BENCHMARKS.md session 25): a group whose
    machine items score like its humans is recorded and warned about as weak; one that separates is not; a later
    run that sets the weak group again on humans alone drops its old measurement and keeps the other's."""
    deployed = _deployed(tiny_text_bundle, tmp_path)
    rows = [{"text": t, "language": "ww", "label": 0} for t in _texts(40, 21, 0.5, 0.9)]
    rows += [{"text": t, "language": "ww", "label": 1} for t in _texts(20, 22, 0.5, 0.9)]  # as its humans write
    rows += [{"text": t, "language": "vv", "label": 0} for t in _texts(40, 23, 0.0, 0.3)]
    rows += [{"text": t, "language": "vv", "label": 1} for t in _texts(20, 24, 0.7, 1.0)]
    rows += [{"text": t, "language": "uu", "label": 1} for t in _texts(5, 25, 0.7, 1.0)]  # too few to measure
    rows += [{"text": t, "language": "uu", "label": 0} for t in _texts(30, 26, 0.0, 0.3)]
    first = tmp_path / "first"
    with caplog.at_level("WARNING", logger="aigc"):
        assert main(["calibrate", str(deployed), str(_write(tmp_path / "both.jsonl", rows)), "--out", str(first),
                     "--group-field", "language", "--groups-only"]) == 0
    spec = aigc.load(first).spec
    det = spec["group_thresholds"]["detection"]
    assert set(det) == {"vv", "ww"}  # uu: 5 machine items, fewer than 10
    assert det["ww"]["weak"] and det["ww"]["auroc"] < 0.75 and (det["ww"]["n_human"], det["ww"]["n_ai"]) == (40, 20)
    assert not det["vv"]["weak"] and det["vv"]["auroc"] > 0.9
    assert spec["recalibration"]["group_thresholds"]["weak"] == ["ww"]
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "ww (AUROC" in said and "consider not serving" in said and "vv (AUROC" not in said
    capsys.readouterr()
    assert main(["info", str(first)]) == 0
    info = capsys.readouterr().out
    line = next(x for x in info.splitlines() if "detection by language" in x)
    assert f"ww {det['ww']['auroc']:.4f} (40/20) WEAK" in line and "vv " in line and line.count("WEAK") == 1, line

    # items scored with the weak group carry a warning that says so; the others, and items without a group, do not
    loaded = aigc.load(first)
    res = loaded.score(_texts(3, 28, 0.5, 0.9), groups=["ww", "vv", None])
    assert [any("language=ww" in w and "says little" in w for w in r.warnings) for r in res] == [True, False, False]
    assert all(r.error is None for r in res) and res[0].to_dict()["warnings"] == res[0].warnings
    # refused instead: the weak group's item gets no label nor probability and says why; the others are as before
    ref = loaded.score(_texts(3, 28, 0.5, 0.9), groups=["ww", "vv", None], weak_groups="refuse")
    assert ref[0].label is None and np.isnan(ref[0].probability) and "not labelled" in (ref[0].error or "")
    assert [(r.label, r.probability) for r in ref[1:]] == [(r.label, r.probability) for r in res[1:]]
    with pytest.raises(ValueError, match="weak_groups"):
        loaded.score(["x"], weak_groups="ignore")
    posts = _write(tmp_path / "posts.jsonl", [{"text": t, "language": g} for t, g in
                                              zip(_texts(3, 29, 0.5, 0.9), ["ww", "vv", "ww"], strict=True)])
    scored = tmp_path / "scored.jsonl"
    assert main(["score", str(first), str(posts), "--out", str(scored), "--group-field", "language",
                 "--weak-groups", "refuse", "--no-progress"]) == 0  # refused items count as failed, not the run
    out_rows = [json.loads(x) for x in scored.read_text().splitlines()]
    assert [r["label"] is None for r in out_rows] == [True, False, True]
    assert all("weak groups refused" in r["error"] for r in (out_rows[0], out_rows[2]))
    assert "1 item(s), 2 failed" in capsys.readouterr().err

    second = tmp_path / "second"
    assert main(["calibrate", str(first), str(_langs(tmp_path, "ww.jsonl", {"ww": (40, 27)})), "--out", str(second),
                 "--humans-only", "--group-field", "language", "--groups-only"]) == 0
    det2 = aigc.load(second).spec["group_thresholds"]["detection"]
    assert set(det2) == {"vv"} and det2["vv"] == det["vv"]


@pytest.mark.parametrize("bad, said", [
    ({"ww": {"n_human": 40, "n_ai": 20, "auroc": "low", "weak": True}}, "detection.ww.auroc"),
    ({"ww": {"n_human": 40, "n_ai": 20, "auroc": 1.5, "weak": True}}, "detection.ww.auroc"),
    ({"ww": {"n_human": 40, "n_ai": 20, "auroc": 0.6, "weak": "yes"}}, "detection.ww.weak"),
    ({"ww": {"n_ai": 20, "auroc": 0.6, "weak": True}}, "detection.ww.n_human"),
    (["ww"], "group_thresholds.detection: found list"),
])
def test_a_malformed_detection_record_is_refused_at_load(tiny_text_bundle: Path, tmp_path: Path, bad: object,
                                                         said: str) -> None:
    deployed = _deployed(tiny_text_bundle, tmp_path)
    out = tmp_path / "with-groups"
    assert main(["calibrate", str(deployed), str(_langs(tmp_path, "a.jsonl", {"xx": (40, 1)})), "--out", str(out),
                 "--humans-only", "--group-field", "language", "--groups-only"]) == 0
    spec = json.loads((out / "bundle.json").read_text())
    spec["group_thresholds"]["detection"] = bad
    (out / "bundle.json").write_text(json.dumps(spec))
    with pytest.raises(aigc.BundleError, match=said.replace(".", r"\.")):
        aigc.load(out)
