"""`aigc score` and `aigc info` end to end through main(argv), plus the torch-free proof."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import aigc
from aigc.cli import main


def _images(folder: Path, n: int = 5) -> list[Path]:
    (folder / "sub").mkdir(parents=True)
    paths = []
    for i in range(n):
        p = folder / ("sub" if i % 2 else "") / f"img{i}.png"
        Image.fromarray((np.random.default_rng(i).random((40, 40, 3)) * 255).astype(np.uint8)).save(p)
        paths.append(p)
    (folder / "broken.jpg").write_text("not an image")
    (folder / "notes.md").write_text("ignored: not an image extension")
    return paths


def _rows(path: Path) -> list[dict]:  # type: ignore[type-arg]
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_score_folder_jsonl_and_csv(tiny_image_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _images(tmp_path / "imgs")
    out = tmp_path / "out.jsonl"
    assert main(["score", str(tiny_image_bundle), str(tmp_path / "imgs"), "--out", str(out), "--no-progress"]) == 0
    rows = _rows(out)
    assert len(rows) == 6
    by = {Path(r["item"]).name: r for r in rows}
    assert "not a recognised image format" in by["broken.jpg"]["error"]
    assert all(0 <= r["probability"] <= 1 for n, r in by.items() if n != "broken.jpg")
    assert not (tmp_path / "out.jsonl.partial").exists()
    err = capsys.readouterr().err
    assert "scored 5 item(s), 1 failed" in err and "broken.jpg" in err
    out_csv = tmp_path / "out.csv"
    assert main(["score", str(tiny_image_bundle), str(tmp_path / "imgs"), "--out", str(out_csv), "--no-progress",
                 "--threshold", "0.0"]) == 0
    crow = _rows(out_csv)
    assert len(crow) == 6 and {r["label"] for r in crow if not r["error"]} == {"ai"}


def test_existing_output_is_never_overwritten_and_resume(tiny_image_bundle: Path, tmp_path: Path) -> None:
    paths = _images(tmp_path / "imgs")
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n")
    assert main(["score", str(tiny_image_bundle), str(paths[0]), "--out", str(out), "--no-progress"]) == 2
    assert out.read_text() == "precious\n"
    assert main(["score", str(tiny_image_bundle), str(paths[0]), str(paths[1]), "--out", str(out), "--overwrite", "--no-progress"]) == 0
    first = _rows(out)
    assert len(first) == 2
    # resume: the two done items are kept verbatim, only the rest is scored
    assert main(["score", str(tiny_image_bundle), str(tmp_path / "imgs"), "--out", str(out), "--resume", "--no-progress"]) == 0
    rows = _rows(out)
    assert rows[:2] == first
    assert len(rows) == 6 and len({r["item"] for r in rows}) == 6


def test_list_file_and_shards(tiny_image_bundle: Path, tmp_path: Path) -> None:
    paths = _images(tmp_path / "imgs")
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(str(p.relative_to(tmp_path)) for p in paths) + "\nmissing.png\n")
    out = tmp_path / "o.jsonl"
    assert main(["score", str(tiny_image_bundle), str(lst), "--out", str(out), "--no-progress"]) == 0
    rows = _rows(out)
    assert len(rows) == 6 and "listed in" in rows[-1]["error"]
    shards = []
    for i in range(2):
        o = tmp_path / f"s{i}.jsonl"
        assert main(["score", str(tiny_image_bundle), str(lst), "--out", str(o), "--shard", f"{i}/2", "--no-progress"]) == 0
        shards += [r["item"] for r in _rows(o)]
    assert sorted(shards) == sorted(r["item"] for r in rows)
    assert main(["score", str(tiny_image_bundle), str(lst), "--out", str(tmp_path / "x.jsonl"), "--shard", "2/2"]) != 0


def test_jsonl_texts_named_by_line(tiny_text_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b'{"body": "the cat sat", "lang": "en"}\n'
        b'{"body": "moreover delve"}\n'
        b'\n'
        b'{"body": "bad \xff\xfe utf8"}\n'
        b'{"other": 1}\n'
        b'{"body": "   "}\n'
    )
    out = tmp_path / "o.jsonl"
    assert main(["score", str(tiny_text_bundle), str(src), "--out", str(out), "--text-field", "body", "--no-progress"]) == 0
    rows = _rows(out)
    assert [r["item"] for r in rows] == [f"{src}:{n}" for n in (1, 2, 4, 5, 6)]
    assert rows[0]["error"] is None and rows[1]["error"] is None
    assert "line 4: invalid UTF-8" in rows[2]["error"]
    assert "no field 'body'" in rows[3]["error"]
    assert "no visible characters" in rows[4]["error"]


def test_exit_codes(tiny_text_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": ""}\n')
    assert main(["score", str(tiny_text_bundle), str(src), "--out", str(tmp_path / "a.jsonl"), "--no-progress"]) == 1
    assert "nothing could be scored" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "bundle.json").write_text('{"format_version": 9}')
    assert main(["score", str(bad), str(src), "--out", str(tmp_path / "b.jsonl")]) == 2
    assert "format_version: found 9" in capsys.readouterr().err
    assert main(["score", str(tiny_text_bundle), str(src), "--out", str(tmp_path / "c.txt")]) == 2
    assert main(["score", str(tiny_text_bundle), str(src), "--out", str(tmp_path / "d.jsonl"), "--threshold", "nope"]) == 2


def test_info_card(tiny_text_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tiny_text_bundle)]) == 0
    out = capsys.readouterr().out
    for s in ("tiny-text", "text detector", "calibration: temperature", "fpr@1%", "0.0157", "n human", "tokenizer=tokenizer.json"):
        assert s in out, s
    assert main(["info", str(tiny_text_bundle), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["modality"] == "text"


def test_providers(tiny_image_bundle: Path, caplog: pytest.LogCaptureFixture) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the refusal cannot be shown here")
    with pytest.raises(aigc.ProviderError, match="'CUDAExecutionProvider' is not available"):
        aigc.load(tiny_image_bundle, providers=["cuda"])
    with caplog.at_level(logging.WARNING, logger="aigc"):
        det = aigc.load(tiny_image_bundle, providers="cuda", allow_fallback=True, threads=1)
    assert det.providers == ["CPUExecutionProvider"]
    assert "falling back" in caplog.text
    assert aigc.load(tiny_image_bundle, providers=None).providers == ["CPUExecutionProvider"]


def test_scoring_never_imports_torch(tiny_image_bundle: Path, tiny_text_bundle: Path, tmp_path: Path) -> None:
    """`import aigc` and full `aigc score` runs leave torch, transformers and timm out of sys.modules."""
    img = tmp_path / "a.png"
    Image.new("RGB", (40, 40), (1, 2, 3)).save(img)
    txt = tmp_path / "t.jsonl"
    txt.write_text('{"text": "the cat sat"}\n')
    code = f"""
import sys
import aigc
from aigc.cli import main
assert main(["score", {str(tiny_image_bundle)!r}, {str(img)!r}, "--out", {str(tmp_path / "i.jsonl")!r}, "--no-progress"]) == 0
assert main(["score", {str(tiny_text_bundle)!r}, {str(txt)!r}, "--out", {str(tmp_path / "t.csv")!r}, "--no-progress"]) == 0
assert main(["info", {str(tiny_text_bundle)!r}]) == 0
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "timm", "datasets", "torchvision"))
print("HEAVY", heavy)
sys.exit(1 if heavy else 0)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "HEAVY []" in r.stdout


def test_default_threshold_falls_back_to_the_strictest(tiny_image_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from aigc._bundle import write_bundle

    b = tmp_path / "b"
    shutil.copytree(tiny_image_bundle, b)
    spec = json.loads((b / "bundle.json").read_text())
    del spec["thresholds"]["fpr@1%"]
    write_bundle(b, spec, overwrite=True)
    assert aigc.load(b).default_threshold == "fpr@5%"
    assert aigc.load(tiny_image_bundle).default_threshold == "fpr@1%"
    img = tmp_path / "a.png"
    Image.new("RGB", (40, 40)).save(img)
    assert main(["score", str(b), str(img), "--out", str(tmp_path / "o.jsonl"), "--no-progress"]) == 0
    assert "using fpr@5%" in capsys.readouterr().err
    assert _rows(tmp_path / "o.jsonl")[0]["threshold_name"] == "fpr@5%"
