"""aigc quickstart --out: a file, a path under a file or a folder it did not make is refused with one clear
line and exit code 2 (no traceback), and nothing there is touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from training.quickstart import MARKER, QuickstartRefused, main

REPO = Path(__file__).resolve().parents[1]


def _refused(out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(QuickstartRefused) as e:
        main(["--out", str(out)])
    assert e.value.code == 2 and isinstance(e.value, SystemExit)
    err = capsys.readouterr().err
    assert str(e.value) in err
    return str(e.value)


def test_out_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("precious")
    assert "exists and is a file, not a folder" in _refused(f, capsys)
    assert f.read_text() == "precious"


def test_out_under_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("precious")
    assert "cannot use it as the output folder" in _refused(f / "sub", capsys)
    assert f.read_text() == "precious"


def test_foreign_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    assert "was not made by the quickstart" in _refused(tmp_path, capsys)
    assert (tmp_path / "mine.txt").read_text() == "precious" and not (tmp_path / MARKER).exists()


def test_its_own_folder_is_reused(tmp_path: Path) -> None:
    from training.quickstart import _prepare

    out = tmp_path / "qs"
    _prepare(out)
    (out / "runs").mkdir()
    (out / "data").mkdir()
    _prepare(out)
    assert (out / MARKER).is_file() and not (out / "runs").exists() and (out / "data").is_dir()


def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("torch")  # the train extra, which `aigc quickstart` asks for before it starts
    f = tmp_path / "out"
    f.write_text("precious")
    r = subprocess.run([sys.executable, "-m", "aigc", "quickstart", "--out", str(f)], capture_output=True, text=True,
                       cwd=REPO, timeout=300)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "exists and is a file, not a folder" in r.stderr
    assert f.read_text() == "precious"
