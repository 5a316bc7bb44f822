"""Hostile labelled data for ``aigc eval`` / ``aigc calibrate`` (``aigc.report.data.load_data``): a CSV row with
more or fewer cells than its header, an unclosed quote, invalid UTF-8, a byte-order mark, quoted newlines
before a bad row. Each bad row is a problem naming ``file:line``; the other rows are still read as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigc.report.data import load_data

BOM = b"\xef\xbb\xbf"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_csv_row_with_extra_or_missing_cells_is_a_problem(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", b"label,text\n1,Hello, this text has an unquoted comma\n0,fine text\n1\n0,\"quoted, ok\"\n")
    d = load_data(f, "text")
    assert d.items == ["fine text", "quoted, ok"] and d.ids == ["d.csv:3", "d.csv:5"]
    assert d.problems == [("d.csv:2", "row has 3 cells, header has 2 (an unquoted ',' in a cell?)"),
                          ("d.csv:4", "row has 1 cells, header has 2 (a missing cell?)")]  # fmt: skip


def test_unclosed_quote_costs_its_row_only(tmp_path: Path) -> None:
    f = _write(tmp_path / "q.csv", b'label,text\n0,before\n1,"never closed\n0,after one\n1,after two\n')
    d = load_data(f, "text")
    assert d.items == ["before", "after one", "after two"] and d.y.tolist() == [0, 0, 1]
    assert d.ids == ["q.csv:2", "q.csv:4", "q.csv:5"]
    assert len(d.problems) == 1 and d.problems[0][0] == "q.csv:3" and "never closed" in d.problems[0][1]
    # a stray quote that a later quote 'closes' is refused too (strict), not read as one long cell
    f = _write(tmp_path / "s.csv", b'label,text\n1,"open\n0,"x"y\n0,last\n')
    d = load_data(f, "text")
    assert d.items == ["last"] and [i for i, _ in d.problems] == ["s.csv:2", "s.csv:3"]


def test_invalid_utf8_is_a_problem_of_its_row(tmp_path: Path) -> None:
    f = _write(tmp_path / "u.csv", b"label,text\n0,good one\n1,caf\xe9 au lait\n0,good two\n")
    d = load_data(f, "text")
    assert d.items == ["good one", "good two"]
    assert d.problems == [("u.csv:3", "invalid UTF-8 (byte 0xe9 at column 6)")]
    j = _write(tmp_path / "u.jsonl", b'{"text": "ok", "label": 0}\n{"text": "caf\xe9", "label": 1}\n')
    d = load_data(j, "text")
    assert d.items == ["ok"] and d.problems[0][0] == "u.jsonl:2" and "invalid UTF-8" in d.problems[0][1]
    with pytest.raises(ValueError, match=r"h\.csv:1: the header line cannot be read \(invalid UTF-8"):
        load_data(_write(tmp_path / "h.csv", b"lab\xe9l,text\n0,x\n"), "text")


def test_problem_ids_are_physical_lines_after_quoted_newlines(tmp_path: Path) -> None:
    f = _write(tmp_path / "m.csv", b'label,text\n0,"one\ntwo\nthree"\n1,"a\nb"\nmaybe,bad label\n0,last\n')
    d = load_data(f, "text")
    assert d.ids == ["m.csv:2", "m.csv:5", "m.csv:8"] and d.items[0] == "one\ntwo\nthree"
    assert d.problems[0][0] == "m.csv:7" and "'maybe'" in d.problems[0][1]


def test_byte_order_mark(tmp_path: Path) -> None:
    rows = [{"text": "first", "label": 1}, {"text": "second", "label": 0}]
    j = _write(tmp_path / "b.jsonl", BOM + "".join(json.dumps(r) + "\n" for r in rows).encode())
    d = load_data(j, "text")
    assert d.items == ["first", "second"] and d.problems == []
    c = _write(tmp_path / "b.csv", BOM + b"label,text\n1,ai text\n0,human text\n")
    d = load_data(c, "text", default_label=0)  # calibrate --humans-only: the AI row keeps its label
    assert d.y.tolist() == [1, 0] and d.problems == []
    t = _write(tmp_path / "b.tsv", BOM + b"label\ttext\n1\tai, with a comma\n")
    assert load_data(t, "text").items == ["ai, with a comma"]


def test_humans_only_never_defaults_a_label_column_under_another_spelling(tmp_path: Path) -> None:
    c = _write(tmp_path / "c.csv", b"Label ,text\nai,x\n")
    d = load_data(c, "text", default_label=0)
    assert len(d) == 0 and d.problems[0][0] == "c.csv:2" and "'Label '" in d.problems[0][1]
    # a file with no label column at all is what --humans-only is for
    d = load_data(_write(tmp_path / "n.csv", b"text\nx\n"), "text", default_label=0)
    assert d.y.tolist() == [0] and d.problems == []


def test_duplicate_header_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"d\.csv:1: the header names column 'label' twice"):
        load_data(_write(tmp_path / "d.csv", b"label,text,label\n0,x,1\n"), "text")


def test_eval_console_says_how_many_rows_were_unusable(tiny_text_bundle: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    pytest.importorskip("matplotlib")
    from _eval_data import write_text_data

    from aigc.cli import main

    data = write_text_data(tmp_path / "d.jsonl", n=40)  # plus a bad JSON line and an unknown label
    rep = tmp_path / "rep"
    assert main(["eval", str(tiny_text_bundle), str(data), "--report", str(rep), "--bootstrap", "0", "--no-robustness",
                 "--no-progress"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    m = json.loads((rep / "metrics.json").read_text())
    k = m["data"]["problems"]["count"]
    assert k == 2 and f"{k} of {k + m['data']['n_read']} rows of {data} were not usable" in err
    assert m["data"]["problems"]["examples"][0]["id"] in err  # the first problem, named by file:line
