"""`aigc score --resume` refuses when an input file changed since the rows were written (rows are named by
file and line, so a shifted file would keep another text's score), and warns on a record without identities."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import aigc
from aigc._readers import file_identity, identity_change
from aigc.cli import main


def _score(bundle: Path, *args: str) -> int:
    return main(["score", str(bundle), *args, "--no-progress"])


def _lines(*texts: str) -> str:
    return "".join(json.dumps({"text": t}) + "\n" for t in texts)


def test_resume_refuses_when_an_input_gained_a_line(tiny_text_bundle: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "r.jsonl"
    src.write_text(_lines("the cat sat", "delve moreover"))
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out)) == 0
    before = out.read_bytes()
    record = json.loads((tmp_path / "o.jsonl.meta.json").read_text())
    assert record["input_files"][str(src)]["size"] == src.stat().st_size
    src.write_text(_lines("a brand new first line", "the cat sat", "delve moreover"))
    capsys.readouterr()
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--resume") == 2
    err = capsys.readouterr().err
    assert f"the input {src} changed" in err and "--overwrite" in err  # before: "1 scored, 2 kept", stale rows
    assert out.read_bytes() == before and not (tmp_path / "o.jsonl.partial").exists()
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--overwrite") == 0
    assert [r["item"] for r in aigc.read_scores(out)] == [f"{src}:1", f"{src}:2", f"{src}:3"]


def test_resume_goes_on_when_inputs_are_unchanged_or_only_touched(tiny_text_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "r.jsonl"
    src.write_text(_lines("the cat sat", "delve moreover"))
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out)) == 0
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: a small file's digest covers it all
    new = tmp_path / "new.jsonl"
    new.write_text(_lines("a dog ran"))
    assert _score(tiny_text_bundle, str(src), str(new), "--out", str(out), "--resume") == 0
    assert len(aigc.read_scores(out)) == 3
    files = json.loads((tmp_path / "o.jsonl.meta.json").read_text())["input_files"]
    assert sorted(files) == sorted([str(src), str(new)])
    new.write_text(_lines("a dog ran", "and sat"))  # a later resume without src still checks new
    assert _score(tiny_text_bundle, str(new), "--out", str(out), "--resume") == 2


def test_resume_refuses_a_changed_image(tiny_image_bundle: Path, tmp_path: Path) -> None:
    from PIL import Image

    img = tmp_path / "a.png"
    Image.new("RGB", (32, 32), (10, 20, 30)).save(img)
    out = tmp_path / "o.jsonl"
    assert _score(tiny_image_bundle, str(img), "--out", str(out), "--no-provenance") == 0
    Image.new("RGB", (48, 48), (200, 20, 30)).save(img)
    assert _score(tiny_image_bundle, str(img), "--out", str(out), "--no-provenance", "--resume") == 2


def test_old_record_without_identities_warns_and_resumes(tiny_text_bundle: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "r.jsonl"
    src.write_text(_lines("the cat sat", "delve moreover"))
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out)) == 0
    meta = tmp_path / "o.jsonl.meta.json"
    record = json.loads(meta.read_text())
    del record["input_files"]
    meta.write_text(json.dumps(record))
    capsys.readouterr()
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--resume") == 0
    assert "records no input file identities" in capsys.readouterr().err
    assert str(src) in json.loads(meta.read_text())["input_files"]  # recorded from now on


def test_identity_of_a_large_file_reads_its_ends_and_notices_a_touch(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"x" * (3 << 20))
    a = file_identity(big)
    with open(big, "r+b") as fh:  # the middle changes, the size and the ends do not
        fh.seek(3 << 19)
        fh.write(b"y")
    b = file_identity(big)
    assert a["sha256_head_tail"] == b["sha256_head_tail"]
    assert a["mtime_ns"] == b["mtime_ns"] or identity_change(a, b) is not None
    os.utime(big, ns=(0, a["mtime_ns"] + 1))
    assert "modified" in (identity_change(a, file_identity(big)) or "")
    assert identity_change(a, a) is None
