"""`aigc score` reads every text input format as rows (issue 12, part 1): JSONL/NDJSON, CSV/TSV, Parquet,
gzip forms, any-case extensions, --input-format, stdin, --id-field, --keep-fields, a BOM; plain .txt stays one
document; every row-level problem names its file and line; bad inputs are argument errors before any output."""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import aigc
from aigc.cli import main

TEXTS = ["the cat sat on the mat", "moreover delve tapestry furthermore", "a dog ran in the park",
         "delve moreover the tapestry", "the dog sat"]


def _score(bundle: Path, *args: str) -> int:
    return main(["score", str(bundle), *args, "--no-progress"])


def _rows(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return aigc.read_scores(path)


def _expected(bundle: Path) -> list[float]:
    return [r.probability for r in aigc.load(bundle).score(TEXTS)]


def _csv(sep: str = ",") -> str:
    lines = [sep.join(["id", "text", "source"])]
    lines += [sep.join([f"r{i}", f'"{t}"' if sep == "," else t, "web"]) for i, t in enumerate(TEXTS)]
    return "\n".join(lines) + "\n"


def _jsonl() -> str:
    return "".join(json.dumps({"id": f"r{i}", "text": t, "source": "web"}) + "\n" for i, t in enumerate(TEXTS))


@pytest.mark.parametrize("name", ["in.csv", "in.tsv", "in.ndjson", "IN.JSONL", "in.jsonl.gz", "in.CSV.GZ", "in.tsv.gz",
                                  "in.json"])
def test_every_text_format_gives_one_row_per_record(tiny_text_bundle: Path, tmp_path: Path, name: str) -> None:
    low = name.lower()
    body = _csv("\t") if ".tsv" in low else _csv() if ".csv" in low else _jsonl()
    if low.endswith(".json"):
        body = json.dumps([{"id": f"r{i}", "text": t, "source": "web"} for i, t in enumerate(TEXTS)])
    data = body.encode()
    src = tmp_path / name
    src.write_bytes(gzip.compress(data) if low.endswith(".gz") else data)
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out)) == 0
    rows = _rows(out)
    assert len(rows) == 5, rows  # before: one score for the whole file (or a gzip failure)
    np.testing.assert_allclose([r["probability"] for r in rows], _expected(tiny_text_bundle), atol=1e-6)
    first = 1 if low.endswith(".json") else 2 if (".csv" in low or ".tsv" in low) else 1
    assert rows[0]["item"] == f"{src}:{first}"


def test_parquet_and_gzipped_parquet(tiny_text_bundle: Path, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"id": [f"r{i}" for i in range(5)], "text": TEXTS, "n": list(range(5))})
    src = tmp_path / "in.parquet"
    pq.write_table(table, src)
    (tmp_path / "in.parquet.gz").write_bytes(gzip.compress(src.read_bytes()))
    for f in (src, tmp_path / "in.parquet.gz"):
        out = tmp_path / f"{f.name}.jsonl"
        assert _score(tiny_text_bundle, str(f), "--out", str(out), "--id-field", "id", "--keep-fields", "n") == 0
        rows = _rows(out)
        assert [r["item"] for r in rows] == [f"r{i}" for i in range(5)]
        assert [r["input"]["n"] for r in rows] == list(range(5))
        np.testing.assert_allclose([r["probability"] for r in rows], _expected(tiny_text_bundle), atol=1e-6)
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": ["a"], "text": [None]}), bad)
    assert _score(tiny_text_bundle, str(bad), "--out", str(tmp_path / "b.jsonl")) == 1
    assert _rows(tmp_path / "b.jsonl")[0]["error"] == f"{bad} row 1: field 'text' is null, expected a string"


def test_folder_walk_is_case_insensitive_and_reads_every_format(tiny_text_bundle: Path, tmp_path: Path) -> None:
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    (d / "DATA.JSONL").write_text(_jsonl())
    (d / "sub" / "more.csv.gz").write_bytes(gzip.compress(_csv().encode()))
    (d / "essay.TXT").write_text("the cat sat on the mat\nthe dog ran\n")
    (d / "config.json").write_text('{"text": "not read: .json is read only when named"}')
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(d), "--out", str(out)) == 0
    items = [r["item"] for r in _rows(out)]
    assert len(items) == 11  # 5 + 1 + 5; before: DATA.JSONL was one plain-text document and the CSV was skipped
    assert f"{d / 'DATA.JSONL'}:1" in items and f"{d / 'sub' / 'more.csv.gz'}:6" in items
    assert str(d / "essay.TXT") in items and not any("config.json" in i for i in items)


def test_plain_txt_is_one_document_and_the_help_says_so(tiny_text_bundle: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out)) == 0
    assert [r["item"] for r in _rows(out)] == [str(src)]
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert "a .txt or .md file is ONE document" in helptext
    assert "relative paths are resolved from the list's folder" in helptext


def test_input_format_forces_a_format_and_unknown_jsonl_is_named(tiny_text_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "export.dat"
    src.write_text(_csv())
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--input-format", "csv") == 0
    assert len(_rows(out)) == 5
    j = tmp_path / "rows.data"
    j.write_text(_jsonl())
    assert _score(tiny_text_bundle, str(j), "--out", str(tmp_path / "j.jsonl")) == 1
    assert "looks like JSON lines" in _rows(tmp_path / "j.jsonl")[0]["error"]
    assert _score(tiny_text_bundle, str(j), "--out", str(tmp_path / "k.jsonl"), "--input-format", "jsonl") == 0
    assert len(_rows(tmp_path / "k.jsonl")) == 5


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_stdin(tiny_text_bundle: Path, tiny_image_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, _jsonl().encode())
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, "-", "--out", str(out)) == 0
    assert [r["item"] for r in _rows(out)] == [f"<stdin>:{n}" for n in range(1, 6)]
    _stdin(monkeypatch, gzip.compress(_csv().encode()))
    assert _score(tiny_text_bundle, "-", "--out", str(tmp_path / "c.jsonl"), "--input-format", "csv") == 0
    assert len(_rows(tmp_path / "c.jsonl")) == 5
    _stdin(monkeypatch, _csv().encode())  # CSV cannot be told from prose: the format must be named
    assert _score(tiny_text_bundle, "-", "--out", str(tmp_path / "d.jsonl")) == 2
    assert "--input-format" in capsys.readouterr().err and not (tmp_path / "d.jsonl").exists()
    img = tmp_path / "a.png"
    Image.new("RGB", (40, 40), (9, 9, 9)).save(img)
    _stdin(monkeypatch, f"{img}\n".encode())  # image bundle: a list of paths
    assert _score(tiny_image_bundle, "-", "--out", str(tmp_path / "i.jsonl")) == 0
    assert [r["item"] for r in _rows(tmp_path / "i.jsonl")] == [str(img)]


def test_id_field_and_keep_fields(tiny_text_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(_csv() + 'r1,"the cat",web\n,"no id",web\n')
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--id-field", "id", "--keep-fields", "source,id") == 0
    rows = _rows(out)
    assert [r["item"] for r in rows[:5]] == [f"r{i}" for i in range(5)]
    assert rows[0]["input"] == {"source": "web", "id": "r0"}
    assert rows[5]["item"] == f"{src}:7" and "id 'r1' repeats" in rows[5]["error"]
    assert rows[6]["error"] == f"{src} line 8: no value in the id field 'id' (--id-field)"
    assert _score(tiny_text_bundle, str(src), "--out", str(tmp_path / "x.jsonl"), "--keep-fields", "nope") == 2
    assert not (tmp_path / "x.jsonl").exists()


def test_row_errors_name_file_and_line_and_a_bom_is_accepted(tiny_text_bundle: Path, tmp_path: Path) -> None:
    bom = b"\xef\xbb\xbf"
    j = tmp_path / "in.jsonl"
    j.write_bytes(bom + b'{"text": "the cat sat"}\nnot json\n{"text": 3}\n')
    c = tmp_path / "in.csv"
    c.write_bytes(bom + b'text,x\n"the dog ran",1\n"bad \xff",2\n"too",many,cells\n')
    t = tmp_path / "in.txt"
    t.write_bytes(bom + b"the cat sat")
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(j), str(c), str(t), "--out", str(out)) == 0
    by = {r["item"]: r for r in _rows(out)}
    assert by[f"{j}:1"]["error"] is None  # before: 'not valid JSON' because of the BOM
    assert by[f"{j}:2"]["error"].startswith(f"{j} line 2: not valid JSON")
    assert by[f"{j}:3"]["error"] == f"{j} line 3: field 'text' is int, expected a string"
    assert by[f"{c}:2"]["error"] is None  # the BOM is not part of the first column's name
    assert by[f"{c}:3"]["error"].startswith(f"{c} line 3: invalid UTF-8")
    assert by[f"{c}:4"]["error"].startswith(f"{c} line 4: 3 cells, the header has 2")
    det = aigc.load(tiny_text_bundle)
    assert by[str(t)]["probability"] == pytest.approx(det.score(["the cat sat"])[0].probability, abs=1e-6)


def test_csv_without_the_text_column_is_an_argument_error(tiny_text_bundle: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.csv"
    src.write_text("body\nthe cat\n")
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out)) == 2
    assert "the CSV header has no column 'text'" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "o.jsonl.partial").exists()
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--text-field", "body") == 0


def test_missing_input_and_empty_folder_are_argument_errors(tiny_text_bundle: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(tmp_path / "nope.jsonl"), "--out", str(out)) == 2
    assert "nope.jsonl: no such file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert _score(tiny_text_bundle, str(tmp_path / "empty"), "--out", str(out)) == 2
    assert "holds no text files" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "o.jsonl.meta.json").exists()  # the corrected re-run is not refused


def test_wrong_modality_is_named(tiny_text_bundle: Path, tiny_image_bundle: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 40), (i, 0, 0)).save(imgs / f"p{i}.jpg")
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(imgs / "p0.jpg"), "--out", str(out)) == 2
    assert "this is a text bundle; the input looks like images (1 .jpg file)" in capsys.readouterr().err
    assert _score(tiny_text_bundle, str(imgs), "--out", str(out)) == 2
    assert "this is a text bundle; the input looks like images (3 .jpg files)" in capsys.readouterr().err
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.jsonl").write_text(_jsonl())
    assert _score(tiny_image_bundle, str(texts), "--out", str(out)) == 2
    assert "this is an image bundle; the input looks like texts (1 .jsonl file)" in capsys.readouterr().err
    assert _score(tiny_image_bundle, str(texts / "a.jsonl"), "--out", str(out)) == 2
    assert "this is an image bundle" in capsys.readouterr().err
    disguised = tmp_path / "photo.txt"  # a JPEG under a text name: the file's bytes say what it is
    disguised.write_bytes((imgs / "p0.jpg").read_bytes())
    assert _score(tiny_text_bundle, str(disguised), "--out", str(out)) == 1
    assert _rows(out)[0]["error"] == "this is a text bundle; the file holds JPEG image data, not text"
    assert not out.with_name("o.jsonl.partial").exists()


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "in-folder"])
def test_the_output_is_never_one_of_the_inputs(tiny_text_bundle: Path, tmp_path: Path, how: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    src = corpus / "same.jsonl"
    src.write_text(_jsonl())
    before = src.read_bytes()
    given = src
    if how == "symlink":
        given = tmp_path / "link.jsonl"
        given.symlink_to(src)
    elif how == "hardlink":
        given = tmp_path / "hard.jsonl"
        os.link(src, given)
    elif how == "in-folder":
        given = corpus
    for extra in ([], ["--overwrite"]):
        assert _score(tiny_text_bundle, str(given), "--out", str(src), *extra) == 2
        err = capsys.readouterr().err
        assert ("output file" in err or "exists" in err), err
        assert src.read_bytes() == before
    assert "output file" in err


def test_stdin_that_is_the_output_is_refused(tiny_text_bundle: Path, tmp_path: Path) -> None:
    import subprocess

    src = tmp_path / "same.jsonl"
    src.write_text(_jsonl())
    before = src.read_bytes()
    with open(src, "rb") as fh:
        r = subprocess.run([sys.executable, "-m", "aigc", "score", str(tiny_text_bundle), "-", "--out", str(src),
                            "--overwrite", "--no-progress"], stdin=fh, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "standard input is the output file" in r.stderr, r.stderr
    assert src.read_bytes() == before


def test_a_cut_gzip_keeps_the_rows_before_and_names_the_cut(tiny_text_bundle: Path, tmp_path: Path) -> None:
    body = "".join(json.dumps({"text": f"the cat sat {i} " * 20}) + "\n" for i in range(200)).encode()
    gz = gzip.compress(body)
    src = tmp_path / "cut.jsonl.gz"
    src.write_bytes(gz[: len(gz) // 2])
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out)) == 0
    rows = _rows(out)
    assert all(r["error"] is None for r in rows[:-1]) and len(rows) > 20
    assert f"line {len(rows)}: truncated or corrupt gzip data after line {len(rows) - 1}" in rows[-1]["error"]


def test_parquet_without_pyarrow_names_the_extra(tiny_text_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.parquet"
    src.write_bytes(b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out)) == 2
    assert "reading Parquet needs pyarrow: pip install 'aigc-sentinel[formats]'" in capsys.readouterr().err
    assert not out.exists()
