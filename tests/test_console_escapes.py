"""Content of bundles and data files cannot change what a terminal shows: `aigc info`, `aigc score` and
`aigc eval` print control characters (ANSI/OSC escapes, \\r, BEL, newlines inside a value, bidi overrides)
escaped; bundle validation refuses them in names and refuses non-finite threshold statistics; /metrics
exports no NaN/Inf gauge."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from aigc._bundle import BundleError, validate_spec
from aigc._printable import has_controls, printable
from aigc.cli import main

RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")  # a newline between lines is fine
CLEAR_RED = "\x1b[2J\x1b[1;31m"


def _spec(**over: Any) -> dict[str, Any]:
    from _bundles import base_spec

    spec = base_spec("text")
    spec["files"] = {"model.onnx": "0" * 64, "tokenizer.json": "0" * 64}
    spec.update(over)
    return spec


def _assert_clean(text: str) -> None:
    assert not RAW.search(text), repr(RAW.search(text))


# -- the helper ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "shown"), [
    ("a\x1b[31mb", "a\\x1b[31mb"),
    ("x\ny\rz\tw", "x\\ny\\rz\\tw"),
    ("bell\x07 del\x7f c1\x9b", "bell\\x07 del\\x7f c1\\x9b"),
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
    ("abc\u202edef\u2066\u2069", "abc\\u202edef\\u2066\\u2069"),
    ("line\u2028para\u2029", "line\\u2028para\\u2029"),
    ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
    ("zero\u200bwidth", "zero\\u200bwidth"),
])
def test_printable_escapes_controls(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    _assert_clean(printable(raw))


def test_printable_keeps_plain_text() -> None:
    for s in ("fpr@1%", "Größe ñ 日本語 😀", "family 👨\u200d👩\u200d👧", "back\\slash", "<b>html</b> | pipe", "a\u00a0b"):
        assert printable(s) == s
    assert printable(3.5) == "3.5" and printable(None) == "None"


def test_has_controls() -> None:
    assert has_controls("a\x1b[0m") and has_controls("a\nb") and has_controls("\u202eabc") and has_controls("a\u2028")
    assert not has_controls("fpr@1%") and not has_controls("日本語 😀") and not has_controls("👨\u200d👩")


def test_provenance_table_uses_the_shared_helper() -> None:
    from aigc.cli import _provenance

    assert _provenance.safe is printable


# -- D5: aigc info -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "over"), [
    ("name", {"name": "ok\x1b[2J\x1b[31mEVIL\nforged: ok | x"}),
    ("name", {"name": "right\u202etxt.exe"}),
    ("name", {"name": "two\u2028lines"}),
    ("thresholds (a threshold's name)", {"thresholds": {"evil\x1b[31mRED\x1b[0m\nFAKE: line": {
        "value": 0.5, "n_human": 10, "achieved_fpr": 0.1}}}),
    ("group_thresholds.groups.en\\x1b[31m (a threshold's name)", {"group_thresholds": {"column": "lang", "groups": {
        "en\x1b[31m": {"x\u2066y": {"value": 0.5, "n_human": 10, "achieved_fpr": 0.1}}}}}),
])
def test_validation_refuses_control_characters_in_names(field: str, over: dict[str, Any]) -> None:
    with pytest.raises(BundleError) as e:
        validate_spec(_spec(**over))
    msg = str(e.value)
    assert msg.startswith(f"{field}: found ") and "without control characters" in msg
    _assert_clean(msg)


def test_bundle_errors_escape_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from _bundles import build_bundle

    b = build_bundle(tmp_path / "b", "text")
    spec = json.loads((b / "bundle.json").read_text())
    spec["group_thresholds"] = {"column": "lang", "groups": {
        "x\x1b[2J\x1b[32mbundle OK\x1b[0m\n": {"fpr@1%": {"value": 2.0, "n_human": 10, "achieved_fpr": 0.1}}}}
    (b / "bundle.json").write_text(json.dumps(spec))
    assert main(["info", str(b)]) == 2
    cap = capsys.readouterr()
    assert "\\x1b[2J\\x1b[32mbundle OK" in cap.err and ".value: found 2.0" in cap.err
    _assert_clean(cap.err)
    assert cap.err.count("\n") == 1


def test_info_error_path_escapes_the_hostile_threshold_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from _bundles import THRESHOLDS, build_bundle

    b = build_bundle(tmp_path / "b", "text")
    spec = json.loads((b / "bundle.json").read_text())
    spec["thresholds"]["x\x1b[2J\x1b[32mbundle OK\x1b[0m\n"] = dict(THRESHOLDS["balanced"], value=2.0)
    (b / "bundle.json").write_text(json.dumps(spec))
    assert main(["info", str(b)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"aigc info: bad bundle {b}: thresholds (a threshold's name): found ")
    assert "\\x1b[2J" in err and err.count("\n") == 1
    _assert_clean(err)


def test_info_card_escapes_every_bundle_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from _bundles import THRESHOLDS, build_bundle

    t = dict(THRESHOLDS["balanced"], rule="worst\x1b[31m", groups={"g\x1b[2J\n": {"achieved_fpr": 0.1, "n_human": "5\r"}})
    b = build_bundle(tmp_path / "b", "text", {
        "name": "plain <name>",
        "thresholds": {**THRESHOLDS, "balanced": t},
        "provenance": {"created": "2026\x1b[31m-red\n\rFAKE LINE", "source": "<b>src</b>\x07\x1b]0;title\x07",
                       "packages": {"onnx\x1b[1m": "1.0\nFAKE: pkg"}},
        "variants_eval": {"int8": {"refused": "gate\x1b[2J\nFAKE: refused", "auroc": "0.9\x1b[0m"},
                          "fp16\u202e": {"forced": True, "forced_reason": "why\rFAKE"}},
        "group_thresholds": {"column": "lang\x1b[5m", "groups": {"de\n": {"fpr@1%": THRESHOLDS["fpr@1%"]}}},
        "metrics": {"k\x1b[3m": "v\n"},
        "recalibration": {"created": "now\x1b[8m", "data": {"source": "d\x1b]8;;http://x\x07"}, "targets": ["t\n"],
                          "original": {"name": "orig\x1b[31m"}},
    })
    assert main(["info", str(b)]) == 0
    out = capsys.readouterr().out
    _assert_clean(out)
    assert "2026\\x1b[31m-red\\n\\rFAKE LINE" in out and "\\x07\\x1b]0;title\\x07" in out
    assert not any(line.startswith(("FAKE", "\\rFAKE")) for line in out.splitlines())
    for shown in ("onnx\\x1b[1m 1.0\\nFAKE: pkg", "gate\\x1b[2J\\nFAKE: refused", "fp16\\u202e", "why\\rFAKE",
                  "lang\\x1b[5m", "de\\n", "orig\\x1b[31m", "g\\x1b[2J\\n", "worst\\x1b[31m", "d\\x1b]8;;http://x\\x07"):
        assert shown in out, shown
    assert "plain <name>  [text detector" in out.splitlines()[0]
    # --json stays exact JSON (escaped by the encoder, never raw)
    assert main(["info", str(b), "--json"]) == 0
    js = capsys.readouterr().out
    _assert_clean(js)
    assert json.loads(js)["provenance"]["created"] == "2026\x1b[31m-red\n\rFAKE LINE"


def test_render_card_escapes_names_that_bypass_validation() -> None:
    from aigc.cli._info import render_card

    spec = _spec(name="x\x1b[2J\nforged", thresholds={"a\x1b[31m\nb": {"value": 0.5, "n_human": 1, "achieved_fpr": 0.1}})
    card = render_card(spec, {"model.onnx\x1b[1m": 10})
    _assert_clean(card)
    assert card.splitlines()[0].startswith("x\\x1b[2J\\nforged  [text")
    assert any(line.startswith("a\\x1b[31m\\nb ") for line in card.splitlines())


# -- D8: non-finite threshold statistics --------------------------------------------------------------
@pytest.mark.parametrize("key", ["value", "achieved_fpr", "fpr_upper_95", "tpr", "target_fpr"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -0.01, 1.5, True])
def test_validation_refuses_non_finite_or_out_of_range_rates(key: str, bad: Any) -> None:
    from _bundles import THRESHOLDS

    ths = json.loads(json.dumps(THRESHOLDS))
    ths["fpr@5%"][key] = bad
    with pytest.raises(BundleError, match=re.escape(f"thresholds.fpr@5%.{key}: found ")):
        validate_spec(_spec(thresholds=ths))


def test_validation_refuses_nan_in_variant_and_group_thresholds() -> None:
    from _bundles import THRESHOLDS

    bad = dict(THRESHOLDS["fpr@1%"], tpr=math.nan)
    with pytest.raises(BundleError, match=r"group_thresholds\.groups\.en\.fpr@1%\.tpr: found nan"):
        validate_spec(_spec(group_thresholds={"column": "lang", "groups": {"en": {"fpr@1%": bad}}}))


@pytest.mark.parametrize("key", ["fpr_upper_95", "tpr", "target_fpr"])
def test_null_or_absent_optional_rates_still_load(key: str) -> None:
    from _bundles import THRESHOLDS

    ths = json.loads(json.dumps(THRESHOLDS))
    ths["fpr@5%"][key] = None
    validate_spec(_spec(thresholds=ths))
    del ths["fpr@5%"][key]
    validate_spec(_spec(thresholds=ths))
    ths["fpr@5%"]["achieved_fpr"] = None
    with pytest.raises(BundleError, match=r"thresholds\.fpr@5%\.achieved_fpr: found None"):
        validate_spec(_spec(thresholds=ths))


def test_metrics_skip_non_finite_calibrated_gauges() -> None:
    pytest.importorskip("prometheus_client")
    from aigc.serve.metrics import Metrics

    m = Metrics()
    m.set_calibrated("b", {"thresholds": {"nan": {"achieved_fpr": math.nan, "tpr": math.inf},
                                          "ok": {"achieved_fpr": 0.01, "tpr": 0.7}, "flag": {"achieved_fpr": True}}})
    body = m.render()[0].decode()
    calibrated = [x for x in body.splitlines() if x.startswith(("aigc_calibrated_fpr{", "aigc_calibrated_tpr{"))]
    assert sorted(calibrated) == ['aigc_calibrated_fpr{bundle="b",threshold="ok"} 0.01',
                                  'aigc_calibrated_tpr{bundle="b",threshold="ok"} 0.7']
    assert "NaN" not in body and "+Inf" not in "".join(calibrated)


# -- D6: aigc score and aigc eval ---------------------------------------------------------------------
def test_score_failure_summary_escapes_ids_and_errors(tiny_text_bundle: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    hostile = f"{CLEAR_RED}ALL ITEMS SCORED OK\x1b[0m\nx"
    data = tmp_path / "d\x1b[31m.jsonl"
    data.write_text("\n".join([json.dumps({"id": hostile, "text": 123}), json.dumps({"id": "ok", "text": "the cat sat"}),
                               json.dumps({"id": "e\u202e", "text": ""})]) + "\n")
    out = tmp_path / "o\x07.jsonl"
    assert main(["score", str(tiny_text_bundle), str(data), "--out", str(out), "--id-field", "id", "--no-progress"]) == 0
    err = capsys.readouterr().err
    _assert_clean(err)
    assert "failures:" in err and "\\x1b[2J\\x1b[1;31mALL ITEMS SCORED OK\\x1b[0m\\nx" in err
    assert not any(line.startswith("ALL ITEMS") for line in err.splitlines())
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert hostile in {r["item"] for r in rows}  # the output file keeps the exact id


def test_score_fail_message_escapes_bundle_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "no\x1b[2Jbundle"
    assert main(["score", str(bad), str(tmp_path / "x.jsonl"), "--out", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    _assert_clean(err)
    assert "no\\x1b[2Jbundle" in err


@pytest.mark.slow
def test_eval_console_lines_escape_names_and_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from _bundles import build_bundle
    from _eval_data import write_text_data

    b = build_bundle(tmp_path / f"b{CLEAR_RED}FAKE OK\x1b[0m\nx", "text", {"name": ""})
    data = write_text_data(tmp_path / "d\x1b[31m.jsonl", n=40)
    with data.open("a") as f:
        f.write(json.dumps({"text": "the cat", "label": f"{CLEAR_RED}maybe\n"}) + "\n")
    rep = tmp_path / "rep\x07"
    assert main(["eval", str(b), str(data), "--report", str(rep), "--no-progress", "--bootstrap", "20",
                 "--no-robustness", "--min-slice", "5"]) == 0
    cap = capsys.readouterr()
    _assert_clean(cap.out)
    _assert_clean(cap.err)
    assert "\\x1b[2J\\x1b[1;31mFAKE OK\\x1b[0m\\nx: AUROC" in cap.out and "rep\\x07" in cap.out
    assert "Overlap of b\\x1b[2J" in cap.err and "rows of " in cap.err and "d\\x1b[31m.jsonl" in cap.err
    names = [b["name"] for b in json.loads((rep / "metrics.json").read_text())["bundles"]]
    assert names == [b.name]  # metrics.json keeps the exact name
