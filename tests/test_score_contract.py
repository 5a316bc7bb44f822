"""The output contract of `aigc score` (issue 12, parts 2, 5, 6 and the misleading errors): the run record and
--resume's refusals, CSV that reads back equal to JSONL, the API's default threshold, argument errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aigc
from aigc.cli import main

TEXTS = ["the cat sat on the mat", "moreover delve tapestry", "a dog ran in the park", "delve moreover"]


def _corpus(tmp_path: Path) -> Path:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t, "src": f"s{i}"}) + "\n" for i, t in enumerate(TEXTS)))
    return src


def _score(bundle: Path, *args: str) -> int:
    return main(["score", str(bundle), *args, "--no-progress"])


def test_run_record_and_resume_refuses_other_settings(tiny_text_bundle: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    src = _corpus(tmp_path)
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--threshold", "fpr@5%") == 0
    rec = json.loads((tmp_path / "o.jsonl.meta.json").read_text())
    s = rec["settings"]
    assert rec["complete"] is True and s["bundle_name"] == "tiny-text" and s["variant"] == "fp32"
    assert (s["threshold_name"], s["threshold_value"]) == ("fpr@5%", 0.6)
    assert len(s["bundle_sha256"]) == 64
    first = out.read_bytes()
    # another threshold (name or probability): refused, nothing touched
    for args in (["--threshold", "0.1"], [], ["--text-field", "src"], ["--keep-fields", "src"]):
        assert _score(tiny_text_bundle, str(src), "--out", str(out), "--resume", *args) == 2
        err = capsys.readouterr().err
        assert "--resume:" in err and "other settings" in err, (args, err)
        assert out.read_bytes() == first
    assert "threshold_name 'fpr@5%' -> 'p>=0.1'" not in err  # the last message names the last difference
    # another bundle (same name, other content): refused by its sha256
    other = tmp_path / "other"
    shutil.copytree(tiny_text_bundle, other)
    from aigc._bundle import write_bundle

    spec = json.loads((other / "bundle.json").read_text())
    spec["thresholds"]["fpr@5%"]["value"] = 0.61
    write_bundle(other, spec, overwrite=True)
    assert _score(other, str(src), "--out", str(out), "--resume", "--threshold", "fpr@5%") == 2
    assert "bundle_sha256" in capsys.readouterr().err
    # the same settings: resumes and keeps the rows verbatim
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--resume", "--threshold", "fpr@5%") == 0
    assert out.read_bytes() == first


def test_resume_without_a_record_and_resume_with_overwrite(tiny_text_bundle: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    src = _corpus(tmp_path)
    out = tmp_path / "o.jsonl"
    out.write_text('{"item": "x", "probability": 0.5}\n')  # made by something else
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--resume") == 2
    assert "o.jsonl.meta.json is missing" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        _score(tiny_text_bundle, str(src), "--out", str(out), "--resume", "--overwrite")
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not allowed with argument" in err


def test_an_interrupted_run_is_not_clobbered(tiny_text_bundle: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    src = _corpus(tmp_path)
    partial = tmp_path / "o.jsonl.partial"
    partial.write_text("rows of an interrupted run\n")
    assert _score(tiny_text_bundle, str(src), "--out", str(tmp_path / "o.jsonl")) == 2
    assert "o.jsonl.partial exists" in capsys.readouterr().err
    assert partial.read_text() == "rows of an interrupted run\n"


def test_csv_round_trips_to_the_jsonl_rows(tiny_text_bundle: Path, tiny_image_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text('text,src\n"the cat sat, on the mat",a\n"",b\n"delve moreover ""quoted""",\n{"not": csv\n')
    j, c = tmp_path / "o.jsonl", tmp_path / "o.csv"
    for o in (j, c):
        assert _score(tiny_text_bundle, str(src), "--out", str(o), "--keep-fields", "src") == 0
    rows = aigc.read_scores(j)
    assert aigc.read_scores(c) == rows
    assert rows[1]["error"] and rows[0]["meta"]["n_tokens"] > 0 and rows[0]["input"] == {"src": "a"}
    assert rows[2]["input"] == {"src": None} and rows[3]["input"] == {"src": None} and "cells" in rows[3]["error"]
    header = c.read_text().splitlines()[0].split(",")
    assert {"meta.n_tokens", "meta.script", "input.src", "out_of_support"} <= set(header)
    assert "true" in c.read_text() or "false" in c.read_text()
    assert "True" not in c.read_text() and "False" not in c.read_text()
    # images: reasons and warnings with "; " inside survive as lists; jpeg_quality None stays None
    from PIL import Image

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.new("RGB", (4, 4), (3, 4, 5)).save(imgs / "tiny.png")  # a warning with ';' and ':' in it
    Image.new("RGB", (40, 40), (200, 10, 10)).save(imgs / "q.jpg", quality=70)
    (imgs / "broken.png").write_text("no")
    ji, ci = tmp_path / "i.jsonl", tmp_path / "i.csv"
    for o in (ji, ci):
        assert _score(tiny_image_bundle, str(imgs), "--out", str(o)) == 0
    irows = aigc.read_scores(ji)
    assert aigc.read_scores(ci) == irows
    by = {Path(r["item"]).name: r for r in irows}
    assert by["tiny.png"]["warnings"] and by["q.jpg"]["meta"]["jpeg_quality"] is not None
    assert by["tiny.png"]["meta"]["jpeg_quality"] is None and by["broken.png"]["meta"]["width"] is None


def _bundle_without_fpr1(tiny_image_bundle: Path, tmp_path: Path) -> Path:
    from aigc._bundle import write_bundle

    b = tmp_path / "b"
    shutil.copytree(tiny_image_bundle, b)
    spec = json.loads((b / "bundle.json").read_text())
    del spec["thresholds"]["fpr@1%"]
    write_bundle(b, spec, overwrite=True)
    return b


def test_api_default_threshold_is_the_bundles(tiny_image_bundle: Path, tmp_path: Path) -> None:
    det = aigc.load(_bundle_without_fpr1(tiny_image_bundle, tmp_path))
    arr = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    r = det.score([arr])[0]  # before: KeyError 'fpr@1%'
    assert (r.threshold_name, r.threshold) == ("fpr@5%", 0.6)
    assert det.score([arr], threshold=None)[0].threshold_name == "fpr@5%"
    assert [x.threshold_name for x in det.iter_score([arr, arr])] == ["fpr@5%", "fpr@5%"]
    assert aigc.load(tiny_image_bundle).score([arr])[0].threshold_name == "fpr@1%"


def test_threshold_did_you_mean(tiny_text_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _corpus(tmp_path)
    assert _score(tiny_text_bundle, str(src), "--out", str(tmp_path / "o.jsonl"), "--threshold", "fpr@5") == 2
    err = capsys.readouterr().err
    assert "did you mean 'fpr@5%'?" in err and err.count("\n") == 1
    with pytest.raises(KeyError, match="did you mean 'balanced'"):
        aigc.load(tiny_text_bundle).resolve_threshold("balance")
    with pytest.raises(KeyError) as e:  # never a suggestion that changes the number
        aigc.load(tiny_text_bundle).resolve_threshold("fpr@0.1%")
    assert "did you mean" not in str(e.value)


@pytest.mark.parametrize("args", [["--threads", "0"], ["--batch-size", "-1"], ["--batch-size", "x"]])
def test_bad_numbers_are_one_line_argument_errors(tiny_text_bundle: Path, tmp_path: Path, args: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    src = _corpus(tmp_path)
    with pytest.raises(SystemExit) as e:
        _score(tiny_text_bundle, str(src), "--out", str(tmp_path / "o.jsonl"), *args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"argument {args[0]}: found" in err, err
    assert not (tmp_path / "o.jsonl").exists()


def test_unavailable_provider_is_not_called_a_bad_bundle(tiny_text_bundle: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    src = _corpus(tmp_path)
    assert _score(tiny_text_bundle, str(src), "--out", str(tmp_path / "o.jsonl"), "--provider", "cuda") == 2
    err = capsys.readouterr().err
    assert "--provider:" in err and "bad bundle" not in err
    assert "pip uninstall -y onnxruntime && pip install onnxruntime-gpu" in err
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "pip uninstall -y onnxruntime && pip install onnxruntime-gpu" in readme  # the same advice
    assert _score(tiny_text_bundle, str(src), "--out", str(tmp_path / "o.jsonl"), "--variant", "int9") == 2
    assert "--variant: this bundle has no 'int9' variant" in capsys.readouterr().err


def test_version_and_a_closed_pipe(tiny_text_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith(f"aigc {aigc.__version__} ")
    p = subprocess.Popen([sys.executable, "-m", "aigc", "info", str(tiny_text_bundle)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # `aigc info B | head` where head has already gone
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_resume_a_cut_csv_rescores_the_cut_row(tiny_text_bundle: Path, tmp_path: Path) -> None:
    src = _corpus(tmp_path)
    out = tmp_path / "o.csv"
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--keep-fields", "src") == 0
    full = aigc.read_scores(out)
    text = out.read_text()
    out.rename(tmp_path / "o.csv.partial")  # as an interrupted run leaves it, its last row cut mid-cell
    (tmp_path / "o.csv.meta.json").rename(tmp_path / "o.csv.partial.meta.json")
    (tmp_path / "o.csv.partial").write_text(text[: text.rstrip("\n").rfind(",") + 2])
    assert len(aigc.read_scores(tmp_path / "o.csv.partial")) == len(TEXTS) - 1
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--keep-fields", "src", "--resume") == 0
    assert aigc.read_scores(out) == full


def test_an_interrupted_overwrite_with_other_settings_never_mixes(tiny_text_bundle: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Run A finishes (fpr@5%); run B (--overwrite, 0.1) is interrupted: --resume with B's settings must not
    keep A's rows, and --resume with A's settings must not keep B's."""
    src = _corpus(tmp_path)
    out = tmp_path / "o.jsonl"
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--threshold", "fpr@5%") == 0
    from aigc.cli import _score as score_cli

    calls = {"n": 0}
    real = score_cli.canonical_row

    def interrupt_after_two(*a, **k):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    score_cli.canonical_row = interrupt_after_two  # type: ignore[assignment]
    try:
        assert _score(tiny_text_bundle, str(src), "--out", str(out), "--threshold", "0.1", "--overwrite") == 130
    finally:
        score_cli.canonical_row = real  # type: ignore[assignment]
    assert (tmp_path / "o.jsonl.partial.meta.json").exists()
    for thr in ("0.1", "fpr@5%"):
        assert _score(tiny_text_bundle, str(src), "--out", str(out), "--threshold", thr, "--resume") == 2
        assert "other settings" in capsys.readouterr().err
    assert _score(tiny_text_bundle, str(src), "--out", str(out), "--threshold", "0.1", "--overwrite") == 0
    assert {r["threshold_name"] for r in aigc.read_scores(out)} == {"p>=0.1"}
    assert not (tmp_path / "o.jsonl.partial.meta.json").exists()
