"""What ``aigc export`` reads as calibration data, and what it refuses before calibrating on it: one item column
per file, typed items, positive ``--limit``, group columns that exist, humans without a worst group, and
calibration items that are training items (warned, recorded, refused from 5% unless allowed)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aigc._thresholds import ThresholdError
from export.build_options import (
    MAX_CALIBRATION_OVERLAP,
    BuildOptions,
    ExportRefused,
    calibration_overlap,
    check_group_values,
)
from export.calibration_data import read_calibration_data, read_calibration_jsonl
from export.split_scores import failed_rows


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


# --- one item column per file -----------------------------------------------------------------------------


def test_rows_with_item_and_text_are_refused_unless_the_column_is_named(tmp_path: Path) -> None:
    rows = [{"item": f"doc-{i}", "text": f"the real text number {i}", "label": i % 2} for i in range(4)]
    f = _jsonl(tmp_path / "cal.jsonl", rows)
    with pytest.raises(ValueError, match=r"cal\.jsonl:1: the row has several item columns \(item, text\); .*--item-column"):
        read_calibration_data(f, "text")
    data = read_calibration_data(f, "text", item_column="text")
    assert data.items == [r["text"] for r in rows] and data.item_column == "text"
    assert read_calibration_data(f, "text", item_column="item").items == [f"doc-{i}" for i in range(4)]


def test_the_item_column_never_switches_between_rows(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "cal.jsonl", [{"text": "first text", "label": 0}, {"item": "doc-1", "label": 1}])
    with pytest.raises(ValueError, match=r"cal\.jsonl:2: the item is in 'item' but the first row's is in 'text'"):
        read_calibration_data(f, "text")
    # a later row with a second candidate column is refused too, even when it also has the first row's
    g = _jsonl(tmp_path / "cal2.jsonl", ["", {"text": "first text", "label": 0}, {"text": "x y", "item": "d", "label": 1}])
    with pytest.raises(ValueError, match=r"cal2\.jsonl:3: the row has several item columns"):
        read_calibration_data(g, "text")
    h = _jsonl(tmp_path / "cal3.jsonl", [{"body": "a text", "label": 0}, {"text": "b", "label": 1}])
    with pytest.raises(ValueError, match=r"cal3\.jsonl:1: no item column .*the row has: body, label"):
        read_calibration_data(h, "text")
    with pytest.raises(ValueError, match=r"cal3\.jsonl:2: no 'body' column \(--item-column\); the row has: text, label"):
        read_calibration_data(h, "text", item_column="body")


@pytest.mark.parametrize(("value", "words"), [(None, "text is null"), (7, r"text is 7 \(int\)"), ("  ", "text is empty"),
                                              (["a"], r"text is \[\"a\"\] \(list\)")])
def test_unusable_texts_are_refused_naming_the_line(tmp_path: Path, value: Any, words: str) -> None:
    f = _jsonl(tmp_path / "cal.jsonl", [{"text": "a fine text", "label": 0}, {"text": value, "label": 1}])
    with pytest.raises(ValueError, match=rf"cal\.jsonl:2: {words}"):
        read_calibration_data(f, "text")


def test_image_paths_are_resolved_and_must_exist(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"not really a png")
    f = _jsonl(tmp_path / "cal.jsonl", [{"path": "imgs/a.png", "label": 0}, {"path": "imgs/gone.png", "label": 1}])
    with pytest.raises(ValueError, match=r"cal\.jsonl:2: path 'imgs/gone.png': no such image file"):
        read_calibration_data(f, "image")
    g = _jsonl(tmp_path / "ok.jsonl", [{"path": "imgs/a.png", "label": "human"}])
    data = read_calibration_data(g, "image")
    assert data.items == [str(tmp_path / "imgs" / "a.png")] and data.labels == [0] and data.where == [f"{g}:1"]


def test_group_column_values_and_a_mistyped_column(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "cal.jsonl", [{"text": "a", "label": 0, "domain": "news"}, {"text": "b", "label": 1}])
    assert read_calibration_jsonl(f, "domain", "text")[2] == ["news", None]
    with pytest.raises(ValueError, match=r"no calibration row has that column \(the rows have: domain, label, text\)"):
        read_calibration_jsonl(f, "domian", "text")
    data = read_calibration_data(f, "text")
    with pytest.raises(ValueError, match=r"^--worst-group domian: no calibration row has that column"):
        data.column("domian", "--worst-group")
    assert data.head(1).items == ["a"] and data.head(1).where == [f"{f}:1"]


# --- groups: missing values -----------------------------------------------------------------------------


def test_items_without_a_group(caplog: pytest.LogCaptureFixture) -> None:
    y = np.array([0, 0, 1, 0, 1])
    src = [f"cal.jsonl:{i}" for i in range(1, 6)]
    opt = BuildOptions(group_column="domain", item_sources=src)
    with caplog.at_level(logging.WARNING):
        check_group_values(y, ["a", None, None, "b", "a"], None, opt)
    assert "2 of 5 calibration items (1 of 3 humans) have no 'domain' value (cal.jsonl:2, cal.jsonl:3)" in caplog.text
    # the worst-group rule promises the target on every group's humans: a human without a group is refused
    opt = BuildOptions(worst_group_column="domain", item_sources=src)
    with pytest.raises(ThresholdError, match=r"1 of 3 human calibration items have no 'domain' value \(cal\.jsonl:2\)"):
        check_group_values(y, None, ["a", None, "b", "b", "a"], opt)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        check_group_values(y, None, ["a", "a", None, "b", "a"], opt)  # an ai item without one: warned
    assert "1 of 2 ai calibration items have no 'domain' value (cal.jsonl:3)" in caplog.text


# --- calibration items that are training items ------------------------------------------------------------


def test_calibration_overlap_is_counted_warned_refused_and_allowed(caplog: pytest.LogCaptureFixture) -> None:
    items = [f"calibration text number {i}" for i in range(40)]
    y = np.array([i % 2 for i in range(40)])
    # the hash of data_hashes.json: whitespace collapsed, NFC
    train = [f"training text {i}" for i in range(100)] + ["calibration  text number 3 ", "calibration text number 4"]
    src = [f"cal.jsonl:{i + 1}" for i in range(40)]
    with caplog.at_level(logging.WARNING):
        rec = calibration_overlap(items[:4] + items[5:], np.delete(y, 4), BuildOptions(training_items=train[:101],
                                                                                       item_sources=src), "text")
    assert rec == {"n": 1, "n_human": 0, "n_items": 39, "share": round(1 / 39, 4), "human_share": 0.0,
                   "limit": MAX_CALIBRATION_OVERLAP}
    assert "1 of 39 calibration items (0 of 19 humans) are items of the run's training split (first: cal.jsonl:4)" \
        in caplog.text
    # 2 of 40 items is 5%, and 1 of 20 humans is 5%: refused
    with pytest.raises(ExportRefused, match=r"2 of 40 calibration items \(1 of 20 humans\).*--allow-calibration-overlap"):
        calibration_overlap(items, y, BuildOptions(training_items=train, item_sources=src), "text")
    rec = calibration_overlap(items, y, BuildOptions(training_items=train, allow_calibration_overlap=True), "text")
    assert rec is not None and rec["n"] == 2 and rec["n_human"] == 1 and rec["allowed"] is True
    assert calibration_overlap(items, y, BuildOptions(training_items=["other"]), "text")["n"] == 0  # type: ignore[index]
    assert calibration_overlap(items, y, BuildOptions(), "text") is None  # training items unknown


def test_image_overlap_compares_file_bytes(tmp_path: Path) -> None:
    def put(name: str, data: bytes) -> str:
        (tmp_path / name).write_bytes(data)
        return str(tmp_path / name)

    cal = [put(f"c{i}.png", bytes([i]) * (100 + i)) for i in range(20)]
    train = [put("t0.png", bytes([3]) * 103), put("t1.png", bytes([9]) * 103), put("t2.png", b"x" * 5000)]
    rec = calibration_overlap(cal, np.array([i % 2 for i in range(20)]),
                              BuildOptions(training_items=train, allow_calibration_overlap=True), "image")
    assert rec is not None and rec["n"] == 1 and rec["n_human"] == 0  # c3 (an ai item) has t0's bytes


def test_unscored_rows_are_named() -> None:
    ok = np.array([True, False, True, False])
    opt = BuildOptions(item_sources=["f:1", "f:2", "f:3", "f:5"])
    assert failed_rows(ok, [None, "empty text", None, None], opt) == "f:2: empty text; f:5: NaN score"
    assert failed_rows(ok, None, None) == "item 1: no score; item 3: no score"


# --- end to end through the CLI (tiny BERT text run) -------------------------------------------------------


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from _export_tiny import make_texts, text_run, write_jsonl

    root = tmp_path_factory.mktemp("export_caldata")
    run = text_run(root / "run")
    texts, labels, groups = make_texts()
    rows = [{"text": t, "label": y, "domain": g} for t, y, g in zip(texts, labels, groups, strict=True)]
    (root / "run" / "checkpoints").mkdir(parents=True)
    (root / "run" / "splits").mkdir(parents=True)
    # the training split holds 3 calibration texts (1.4% of 220): warned about and recorded, not refused
    train = [{"item": f"train text {i}", "label": i % 2} for i in range(30)] + [
        {"item": texts[i], "label": labels[i]} for i in (0, 2, 5)]
    write_jsonl(root / "run" / "splits" / "train.jsonl", train)
    return {"root": root, "run": run, "rows": rows, "texts": texts, "cal": write_jsonl(root / "cal.jsonl", rows)}


def _export(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch, cal: Path, *extra: str, out: str = "b") -> int:
    import export.cli as ecli
    from aigc.cli import main

    monkeypatch.setattr(ecli, "_load_run", lambda run_dir, checkpoint: case["run"])
    return main(["export", str(case["root"] / "run"), "--out", str(case["root"] / out), "--calibration-data",
                 str(cal), *extra])


@pytest.mark.train
def test_cli_refusals_before_any_export(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from _export_tiny import write_jsonl

    import export.cli as ecli
    from aigc.cli import main

    monkeypatch.setattr(ecli, "_load_run", lambda run_dir, checkpoint: pytest.fail("loaded the run"))
    for bad in ("-150", "0"):
        assert main(["export", str(case["root"] / "run"), "--out", str(case["root"] / "x"), "--calibration-data",
                     str(case["cal"]), "--limit", bad]) == 2
        assert f"--limit {bad}: expected a positive number" in capsys.readouterr().err
    assert _export(case, monkeypatch, case["cal"], "--group-column", "domian", out="x") == 2
    assert "--group-column domian: no calibration row has that column (the rows have: domain, label, text)" \
        in capsys.readouterr().err
    assert _export(case, monkeypatch, case["cal"], "--worst-group", "domian", out="x") == 2
    assert "(the rows have: domain, label, text)" in capsys.readouterr().err
    ids = write_jsonl(case["root"] / "ids.jsonl", [{"item": f"doc-{i}", **r} for i, r in enumerate(case["rows"])])
    assert _export(case, monkeypatch, ids, out="x") == 2
    assert "ids.jsonl:1: the row has several item columns (item, text)" in capsys.readouterr().err
    nulls = write_jsonl(case["root"] / "nulls.jsonl", [*case["rows"][:5], {"text": None, "label": 0}])
    assert _export(case, monkeypatch, nulls, out="x") == 2
    assert "nulls.jsonl:6: text is null" in capsys.readouterr().err
    # a human without a worst group is a hole in the rule's promise
    holes = [dict(r) for r in case["rows"]]
    for r in holes[:8]:
        r.pop("domain")
    hole = write_jsonl(case["root"] / "holes.jsonl", holes)
    assert _export(case, monkeypatch, hole, "--worst-group", "domain", out="x") == 1
    assert "4 of 110 human calibration items have no 'domain' value (" in capsys.readouterr().err
    # half of the calibration items are training items: refused
    train = case["root"] / "run" / "splits" / "train.jsonl"
    kept = train.read_bytes()
    write_jsonl(train, [{"item": r["text"], "label": r["label"]} for r in case["rows"][:110]])
    try:
        assert _export(case, monkeypatch, case["cal"], out="x") == 1
        err = capsys.readouterr().err
        assert "110 of 220 calibration items (55 of 110 humans) are items of the run's training split" in err
        assert f"(first: {case['cal']}:1," in err and "--allow-calibration-overlap" in err
    finally:
        train.write_bytes(kept)
    assert not (case["root"] / "x").exists()


@pytest.mark.train
@pytest.mark.slow
def test_cli_records_overlap_and_names_the_item_column(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    from _export_tiny import write_jsonl

    from aigc._bundle import open_bundle

    partial = [dict(r) for r in case["rows"]]
    for r in partial[:8]:
        r.pop("domain")
    ids = write_jsonl(case["root"] / "ids2.jsonl", [{"item": f"doc-{i}", **r} for i, r in enumerate(partial)])
    with caplog.at_level(logging.WARNING):
        assert _export(case, monkeypatch, ids, "--item-column", "text", "--group-column", "domain", "--targets",
                       "0.05", out="ok") == 0
    spec = open_bundle(case["root"] / "ok").spec
    assert spec["provenance"]["calibration_data"]["item_column"] == "text"
    ov = spec["data_hashes"]["calibration_in_training"]
    assert ov == {"n": 3, "n_human": 2, "n_items": 220, "share": round(3 / 220, 4), "human_share": round(2 / 110, 4),
                  "limit": MAX_CALIBRATION_OVERLAP}
    assert "warning: 3 of 220 calibration items (2 humans) are training items" in capsys.readouterr().out
    assert f"3 of 220 calibration items (2 of 110 humans) are items of the run's training split (first: {ids}:1," \
        in caplog.text
    assert f"8 of 220 calibration items (4 of 110 humans) have no 'domain' value ({ids}:1," in caplog.text
    # calibrated on the texts, not the "doc-N" ids: the bundle's support saw real word counts
    assert spec["support"]["text"]["n_chars"]["max"] > 20


# --- console lines: what comes from the user or the data is escaped (aigc._printable) -------------------------

HOSTILE = "\x1b[2J\x1b[1;31m"


def _no_controls(text: str) -> bool:
    from aigc._printable import has_controls

    return not has_controls(text.replace("\n", ""))  # the newlines between lines, and no other control character


@pytest.mark.train
def test_cli_refusals_escape_paths_names_and_columns(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from _export_tiny import write_jsonl

    rows = [{"text": r["text"], "label": r["label"], f"dom{HOSTILE}\rain": r["domain"]} for r in case["rows"]]
    cols = write_jsonl(case["root"] / "cols.jsonl", rows)
    assert _export(case, monkeypatch, cols, "--group-column", "domain", out="x") == 2
    err = capsys.readouterr().err
    assert "(the rows have: dom\\x1b[2J\\x1b[1;31m\\rain, label, text)" in err and err.count("\n") == 1
    assert _no_controls(err)
    from aigc.cli import main

    assert main(["export", str(case["root"] / f"no{HOSTILE}\nrun"), "--out", str(case["root"] / "x")]) == 2
    err = capsys.readouterr().err
    assert err == f"aigc export: {case['root']}/no\\x1b[2J\\x1b[1;31m\\nrun: no such run folder\n"
    # a --name bundle validation refuses is refused before the export, not by a traceback after it
    monkeypatch.setattr("export.cli._load_run", lambda run_dir, checkpoint: pytest.fail("loaded the run"))
    assert main(["export", str(case["root"] / "run"), "--out", str(case["root"] / "x"), "--calibration-data",
                 str(case["cal"]), "--name", f"n{HOSTILE}\rok"]) == 2
    err = capsys.readouterr().err
    assert "--name 'n\\x1b[2J\\x1b[1;31m\\rok': expected a name without control characters" in err and _no_controls(err)
    assert not (case["root"] / "x").exists()


@pytest.mark.train
@pytest.mark.slow
def test_cli_summary_and_warnings_escape_paths_and_group_values(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    from _export_tiny import write_jsonl

    from aigc._bundle import open_bundle

    rows = [dict(r, domain=f"news{HOSTILE}\r" if r["domain"] == "news" else r["domain"]) for r in case["rows"]]
    rows[1].pop("domain")  # an AI item without a group: warned about naming its file:line
    cal = write_jsonl(case["root"] / f"cal{HOSTILE}\r.jsonl", rows)
    out = f"b{HOSTILE}\nwrote FAKE"
    with caplog.at_level(logging.WARNING):
        assert _export(case, monkeypatch, cal, "--worst-group", "domain", "--targets", "0.05", out=out) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith(f"wrote {case['root']}/b\\x1b[2J\\x1b[1;31m\\nwrote FAKE: text bundle")
    assert "    domain=news\\x1b[2J\\x1b[1;31m\\r: achieved FPR" in stdout
    assert f"have no 'domain' value ({case['root']}/cal\\x1b[2J\\x1b[1;31m\\r.jsonl:2)" in caplog.text
    assert f"(first: {case['root']}/cal\\x1b[2J\\x1b[1;31m\\r.jsonl:1, " in caplog.text  # the training overlap
    assert _no_controls(stdout) and _no_controls(caplog.text)
    spec = open_bundle(case["root"] / out).spec  # the bundle keeps the exact values
    assert f"news{HOSTILE}\r" in spec["thresholds"]["fpr@5%"]["groups"]
    assert spec["provenance"]["calibration_data"]["file"] == str(cal)
    # a run whose name bundle validation refuses: one escaped line and exit 1, not a traceback
    monkeypatch.setitem(case["run"].config, "name", f"run{HOSTILE}\n")
    assert _export(case, monkeypatch, case["cal"], "--targets", "0.05", out="named") == 1
    err = capsys.readouterr().err
    assert err.startswith("aigc export: name: found 'run\\x1b[2J\\x1b[1;31m\\n', expected a name without control")
    assert err.count("\n") == 1 and not (case["root"] / "named").exists()
