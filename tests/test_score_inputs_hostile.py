"""`aigc score` on hostile or odd inputs: broken CSV quoting, quotes in TSV, a .txt of JSON lines, kept
values JSON has no type for, file modes, files and fields that contribute nothing, stray files and unreadable
or looping folders. Each must end in a named error row or a note, never in a silent misread or a lost batch."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import stat
from pathlib import Path

import pytest
from PIL import Image

import aigc
from aigc import _readers
from aigc._readers import iter_records
from aigc.cli import main


def _score(bundle: Path, *args: str) -> int:
    return main(["score", str(bundle), *args, "--no-progress"])


def _by_item(path: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    return {r["item"]: r for r in aigc.read_scores(path)}


# -- 1. CSV/TSV quoting ----------------------------------------------------------------------------------------
UNTERMINATED = 'id,text\n1,first row ok\n2,"she said hi\n3,third row\n4,fourth row\n5,fifth row\n'


def test_unterminated_csv_quote_is_an_error_row_and_the_rest_is_read(tiny_text_bundle: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "e.csv"
    src.write_text(UNTERMINATED)
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--id-field", "id") == 0
    rows = _by_item(out)
    assert sorted(rows) == sorted(["1", "3", "4", "5", f"{src}:3"])  # before: rows 3-5 vanished into row 2's text
    assert "unterminated quote" in rows[f"{src}:3"]["error"] and f"{src} line 3" in rows[f"{src}:3"]["error"]
    assert rows["1"]["error"] is None and rows["5"]["error"] is None
    assert "1 failed" in capsys.readouterr().err


def test_broken_quotes_resync_at_the_next_line_and_good_multiline_fields_stay_whole(tmp_path: Path) -> None:
    src = tmp_path / "m.csv"
    src.write_text('id,text\n1,"a\n2,"b\n3,ok\n4,"x"y\n5,"multi\nline"\n6,last\n')
    recs = list(iter_records(src, "csv", ["text"]))
    got = [(r.n, r.fields["text"] if r.fields else "ERR") for r in recs]
    assert got == [(2, "ERR"), (3, "ERR"), (4, "ok"), (5, "ERR"), (6, "multi\nline"), (8, "last")]
    assert "the row running to line 5" in recs[1].error  # 2,"b is closed by line 5's first quote


def test_resync_rereads_the_file_when_the_broken_row_is_too_long_to_keep(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_readers._RowLines, "CAP", 8)
    src = tmp_path / "e.csv"
    src.write_text(UNTERMINATED)
    got = [(r.n, r.fields["id"] if r.fields else "ERR") for r in iter_records(src, "csv", ["text"])]
    assert got == [(2, "1"), (3, "ERR"), (4, "3"), (5, "4"), (6, "5")]


def test_tsv_reads_quotes_as_characters(tiny_text_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "q.tsv"
    src.write_text('id\ttext\n1\t"Quoted opening without close\n2\tsecond row\n3\t"Stop," he said. "Now."\n')
    recs = list(iter_records(src, "tsv", ["text"]))
    assert [r.fields["text"] for r in recs if r.fields] == [
        '"Quoted opening without close', "second row", '"Stop," he said. "Now."']
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out)) == 0
    assert len(aigc.read_scores(out)) == 3  # before: 1 (the quote swallowed the file)


# -- 3. a .txt of JSON lines -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["j.txt", "j.md", "j.dat"])
def test_json_lines_named_as_a_document_are_refused(tiny_text_bundle: Path, tmp_path: Path, name: str) -> None:
    src = tmp_path / name
    src.write_text('{"text": "a"}\n{"text": "b"}\n')
    doc = tmp_path / "doc.txt"
    doc.write_text('{"a": 1} is how the config starts,\nthen prose follows.\n')
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), str(doc), "--out", str(out)) == 0
    rows = _by_item(out)
    assert "looks like JSON lines" in rows[str(src)]["error"] and "--input-format jsonl" in rows[str(src)]["error"]
    assert rows[str(doc)]["error"] is None  # prose starting with a JSON object is still one document
    out2 = tmp_path / "o2.jsonl"
    assert _score(tiny_text_bundle, str(src), "--input-format", "text", "--out", str(out2)) == 0
    assert aigc.read_scores(out2)[0]["error"] is None  # asked for explicitly: one document


# -- 4. kept values JSON has no type for -------------------------------------------------------------------------
@pytest.mark.parametrize("out_name", ["o.jsonl", "o.csv"])
def test_parquet_timestamp_date_decimal_bytes_are_kept(tiny_text_bundle: Path, tmp_path: Path, out_name: str) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({
        "text": ["the cat sat", "delve moreover"],
        "ts": [dt.datetime(2024, 1, 2, 3, 4, 5), None],
        "day": [dt.date(2024, 1, 2), dt.date(1999, 12, 31)],
        "amount": pa.array([decimal.Decimal("1.10"), decimal.Decimal("-0.01")], pa.decimal128(5, 2)),
        "raw": [b"\x00\xff", b"ok"],
    })
    src = tmp_path / "t.parquet"
    pq.write_table(table, src)
    out = tmp_path / out_name
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--keep-fields", "ts,day,amount,raw") == 0
    rows = aigc.read_scores(out)
    assert [r["error"] for r in rows] == [None, None]
    assert rows[0]["input"] == {"ts": "2024-01-02T03:04:05", "day": "2024-01-02", "amount": "1.10", "raw": "AP8="}
    assert rows[1]["input"]["ts"] is None and rows[1]["input"]["amount"] == "-0.01"


@pytest.mark.parametrize("out_name", ["o.jsonl", "o.csv"])
def test_lone_surrogate_in_a_kept_field_fails_nothing(tiny_text_bundle: Path, tmp_path: Path, out_name: str) -> None:
    src = tmp_path / "s.jsonl"
    src.write_text('{"text": "the cat sat", "note": "x\\udc00y"}\n{"text": "a dog ran", "note": "fine"}\n')
    out = tmp_path / out_name
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--keep-fields", "note") == 0
    rows = aigc.read_scores(out)
    assert [r["error"] for r in rows] == [None, None]
    assert rows[1]["input"]["note"] == "fine"
    if out_name.endswith(".jsonl"):
        assert rows[0]["input"]["note"] == "x\udc00y"  # escaped JSON reads back equal
    else:
        assert rows[0]["input"]["note"] == "x\\udc00y" and "UTF-8 cannot encode" in rows[0]["warnings"][0]


# -- 5. modes ------------------------------------------------------------------------------------------------
def test_output_and_run_record_get_the_umask_mode(tiny_text_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "a.jsonl"
    src.write_text('{"text": "the cat sat"}\n')
    out = tmp_path / "o.jsonl"
    old = os.umask(0o022)
    try:
        assert _score(tiny_text_bundle, str(src), "--out", str(out)) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "o.jsonl.meta.json").stat().st_mode) == 0o644  # before: 0600


# -- 6. silent gaps ------------------------------------------------------------------------------------------
def test_empty_file_and_absent_kept_field_are_named(tiny_text_bundle: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    src = tmp_path / "a.jsonl"
    src.write_text('{"text": "the cat sat", "Source": "web"}\n{"text": "a dog", "Source": "web", "lang": "en"}\n')
    other = tmp_path / "b.jsonl"
    other.write_text('{"text": "the cat sat", "source": "web", "lang": "en"}\n')
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(empty), str(src), str(other), "--out", str(out),
                  "--keep-fields", "source,lang") == 0
    err = capsys.readouterr().err
    assert f"note: {empty}: no rows" in err
    assert f"warning: {src}: no row has the field 'source'" in err and "'Source'" in err
    assert "'lang'" not in err  # present in some rows: null for the others is fine
    assert f"{other}: no row" not in err
    assert [r["input"]["source"] for r in aigc.read_scores(out)] == [None, None, "web"]


# -- 7. a stray CSV in a folder ------------------------------------------------------------------------------
def test_stray_csv_in_a_folder_is_one_error_row(tiny_text_bundle: Path, tmp_path: Path) -> None:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.txt").write_text("the cat sat on the mat")
    (d / "b.txt").write_text("delve moreover tapestry")
    (d / "manifest.csv").write_text("name,size\na.txt,22\n")
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(d), "--out", str(out)) == 0  # before: exit 2, nothing scored
    rows = _by_item(out)
    assert rows[str(d / "a.txt")]["error"] is None and rows[str(d / "b.txt")]["error"] is None
    assert "has no column 'text'" in rows[str(d / "manifest.csv")]["error"]
    named = tmp_path / "o2.jsonl"
    assert _score(tiny_text_bundle, str(d / "manifest.csv"), "--out", str(named)) == 2  # named: still strict
    assert not named.exists()


# -- 8. folder walks -----------------------------------------------------------------------------------------
def _image(path: Path) -> None:
    Image.new("RGB", (40, 40), (120, 30, 200)).save(path, format="JPEG")


def _deny(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Make listing ``denied`` fail as an unreadable folder does (tests may run as root, who reads anything)."""
    real = os.scandir

    def scandir(p: object = ".") -> object:
        if os.path.abspath(os.fspath(p)) == str(denied):  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied", os.fspath(p))  # type: ignore[arg-type]
        return real(p)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)


def test_image_folder_walk_names_what_it_skips(tiny_image_bundle: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    (d / "locked").mkdir()
    _image(d / "a.jpg")
    _image(d / "pic.jpe")
    _image(d / ".hidden.jpg")
    _image(d / "noext")
    _image(d / "locked" / "x.jpg")
    (d / "sub" / "loop").symlink_to(d, target_is_directory=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    _image(outside / "o.png")
    (d / "linked").symlink_to(outside, target_is_directory=True)
    (d / "bad.jpg").symlink_to(d / "bad.jpg")  # a link to itself: cannot be read
    _deny(monkeypatch, d / "locked")
    out = tmp_path / "o.jsonl"
    assert _score(tiny_image_bundle, str(d), "--out", str(out), "--no-provenance") == 0
    rows = _by_item(out)
    err = capsys.readouterr().err
    assert rows[str(d / "pic.jpe")]["error"] is None and rows[str(d / "linked" / "o.png")]["error"] is None
    assert "cannot read this folder" in rows[str(d / "locked")]["error"]
    assert not any("/loop/" in k for k in rows)  # the loop is walked once
    assert f"{d / 'sub' / 'loop'}: a link to" in err
    assert "skipped 2 files found in folders: 1 hidden, 1 with an unknown extension" in err
    assert f"{d / 'bad.jpg'}: {d / 'bad.jpg'}" not in err  # the path once, not twice


def test_unreadable_or_empty_image_folder_says_which(tiny_image_bundle: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.jpg.gz").write_bytes(b"")
    assert _score(tiny_image_bundle, str(empty), "--out", str(tmp_path / "o.jsonl")) == 2
    err = capsys.readouterr().err
    assert "no image files" in err and ".gz" not in err  # a.jpg.gz is not read: no hint that it would be
    d = tmp_path / "denied"
    d.mkdir()
    _deny(monkeypatch, d)
    assert _score(tiny_image_bundle, str(d), "--out", str(tmp_path / "o.jsonl")) == 2
    assert "cannot read this folder (Permission denied)" in capsys.readouterr().err


def test_unreadable_subfolder_of_a_text_folder_is_an_error_row(tiny_text_bundle: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "docs"
    (d / "locked").mkdir(parents=True)
    (d / "a.txt").write_text("the cat sat")
    (d / "locked" / "b.txt").write_text("delve")
    _deny(monkeypatch, d / "locked")
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(d), "--out", str(out)) == 0
    rows = _by_item(out)
    assert rows[str(d / "a.txt")]["error"] is None
    assert "cannot read this folder" in rows[str(d / "locked")]["error"]
    assert json.loads((tmp_path / "o.jsonl.meta.json").read_text())["complete"] is True
