"""What ``aigc calibrate`` may write over, and the bundles it writes: ``--overwrite`` replaces an earlier bundle
only (never the input's parent, neighbour bundles, the data, a folder or file that is not a bundle); bundle.json
is readable like the other files; re-thresholding a bundle whose variants carry their own calibration keeps every
variant's threshold names equal. Also bundle loading: non-finite calibration parameters, a corrupt zip."""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

import aigc
from aigc._bundle import BundleError, place_bundle, validate_spec, write_bundle, zip_bundle
from aigc.cli import main

WORDS = ["cat", "dog", "sat", "ran", "the", "on", "mat", "a", "in", "park", "delve", "moreover"]


@pytest.fixture
def humans(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    f = tmp_path / "humans.jsonl"
    f.write_text("".join(json.dumps({"text": " ".join(rng.choice(WORDS, 10))}) + "\n" for _ in range(40)))
    return f


def _calibrate(bundle: Path, data: Path, out: Path, *extra: str) -> int:
    return main(["calibrate", str(bundle), str(data), "--out", str(out), "--humans-only", "--targets", "0.1", *extra])


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_overwrite_never_replaces_what_is_not_an_earlier_bundle(tiny_text_bundle: Path, humans: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    par = tmp_path / "par" / "bundles"
    shutil.copytree(tiny_text_bundle, par / "prod")
    shutil.copytree(tiny_text_bundle, par / "other")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    copy = tmp_path / "humans_copy.jsonl"
    shutil.copy(humans, copy)
    before = _tree(tmp_path)
    cases = [(par / "prod", par, "holds the input bundle"),  # the input's parent, with a neighbour bundle
             (tiny_text_bundle, humans.parent, "holds the data"),  # the folder of DATA
             (tiny_text_bundle, humans, "is the data"),
             (tiny_text_bundle, copy, "is a file, not a bundle folder"),
             (tiny_text_bundle, tmp_path / "notes", "a folder without bundle.json"),
             (par / "prod", par / "prod" / "sub", "lies inside the input bundle")]  # fmt: skip
    for src, out, msg in cases:
        assert _calibrate(src, humans, out, "--overwrite") == 2, out
        assert msg in capsys.readouterr().err, out
    assert _tree(tmp_path) == before  # nothing was touched
    # an earlier bundle is replaced, folder or zip
    for name in ("earlier", "earlier.zip"):
        assert _calibrate(tiny_text_bundle, humans, tmp_path / name) == 0
        assert _calibrate(tiny_text_bundle, humans, tmp_path / name) == 2
        assert "--overwrite" in capsys.readouterr().err
        assert _calibrate(tiny_text_bundle, humans, tmp_path / name, "--overwrite") == 0
        assert aigc.load(tmp_path / name).spec["recalibration"]["targets"] == [0.1]
    # a zip that is not a bundle is not
    (tmp_path / "x.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
    assert _calibrate(tiny_text_bundle, humans, tmp_path / "x.zip", "--overwrite") == 2
    assert "not a zipped bundle" in capsys.readouterr().err and (tmp_path / "x.zip").stat().st_size == 22


def test_place_bundle_refuses_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    """The last line of defence, for callers that skipped the early check (export, a race)."""
    new = tmp_path / "new"
    new.mkdir()
    (new / "bundle.json").write_text("{}")
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.jsonl").write_text("{}\n")
    with pytest.raises(FileExistsError, match="without bundle.json"):
        place_bundle(new, data, overwrite=True)
    (tmp_path / "f.zip").write_text("not a zip")
    with pytest.raises(FileExistsError, match="not a zipped bundle"):
        place_bundle(new, tmp_path / "f.zip", overwrite=True)
    assert (data / "rows.jsonl").read_text() == "{}\n" and (tmp_path / "f.zip").read_text() == "not a zip"
    old = tmp_path / "old"
    old.mkdir()
    (old / "bundle.json").write_text("[]")
    assert place_bundle(new, old, overwrite=True) == old and (old / "bundle.json").read_text() == "{}"


def test_bundle_json_is_readable_like_the_other_files(tiny_text_bundle: Path, humans: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert _calibrate(tiny_text_bundle, humans, tmp_path / "b") == 0
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "b").iterdir()}
        assert modes["bundle.json"] == 0o644 == modes["model.onnx"], modes
        os.umask(0o027)
        b2 = tmp_path / "b2"
        shutil.copytree(tiny_text_bundle, b2)
        write_bundle(b2, json.loads((b2 / "bundle.json").read_text()), overwrite=True)
        assert stat.S_IMODE((b2 / "bundle.json").stat().st_mode) == 0o640
    finally:
        os.umask(old)


@pytest.mark.parametrize(("method", "params", "field"), [
    ("temperature", {"temperature": math.nan}, "temperature"),
    ("temperature", {"temperature": math.inf}, "temperature"),
    ("platt", {"a": 1.0, "b": math.nan}, "b"),
    ("isotonic", {"x": [0.0, math.nan], "y": [0.1, 0.9]}, "x/y"),
])  # fmt: skip
def test_non_finite_calibration_is_refused(tiny_text_bundle: Path, method: str, params: dict, field: str) -> None:
    spec = json.loads((tiny_text_bundle / "bundle.json").read_text())
    spec["calibration"] = {"method": method, "params": params}
    with pytest.raises(BundleError, match=f"calibration.params.{field}: found (nan|inf).*finite"):
        validate_spec(spec)
    spec["calibration"] = {"method": "temperature", "params": {"temperature": 1.0},
                           "prevalence": {"base": math.nan, "target": 0.02}}  # fmt: skip
    with pytest.raises(BundleError, match="calibration.prevalence"):
        validate_spec(spec)


def test_corrupt_zip_bundle_is_a_clear_error(tiny_text_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    z = zip_bundle(tiny_text_bundle, tmp_path / "b.zip")
    raw = bytearray(z.read_bytes())
    name_at = raw.index(b"model.onnx")  # first local header's file name: the compressed data follows it
    for i in range(name_at + 40, name_at + 80):
        raw[i] ^= 0xFF
    z.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match=r"b\.zip: the zip is corrupt"):
        aigc.load(z)
    assert main(["info", str(z)]) == 2
    assert "the zip is corrupt" in capsys.readouterr().err


def _variant_bundle(src: Path, out: Path) -> Path:
    """``src`` with an int8 variant (the same graph) that carries its own calibration (temperature 3, not 2)."""
    shutil.copytree(src, out)
    shutil.copy(out / "model.onnx", out / "model.int8.onnx")
    spec = json.loads((out / "bundle.json").read_text())
    spec["model"]["variants"]["int8"] = "model.int8.onnx"
    own = {"calibration": {"method": "temperature", "params": {"temperature": 3.0}, "n": 2000},
           "thresholds": json.loads(json.dumps(spec["thresholds"]))}  # fmt: skip
    spec["variant_calibration"] = {"int8": own}
    write_bundle(out, spec, overwrite=True)
    return out


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_new_targets_rethreshold_every_variant_with_its_own_record(tiny_text_bundle: Path, humans: Path, tmp_path: Path,
                                                                   variant: str) -> None:  # fmt: skip
    b = _variant_bundle(tiny_text_bundle, tmp_path / "v")
    out = tmp_path / "new"
    assert _calibrate(b, humans, out, "--variant", variant) == 0
    spec = json.loads((out / "bundle.json").read_text())
    own = spec["variant_calibration"]["int8"]
    assert set(spec["thresholds"]) == set(own["thresholds"]) == {"fpr@10%", "balanced"}
    assert own["calibration"]["params"] == {"temperature": 3.0} and spec["calibration"]["params"] == {"temperature": 2.0}
    other = "int8" if variant == "fp32" else "fp32"
    assert spec["recalibration"]["also_recalibrated"] == {other: {"calibration": "kept", "n": 40, "n_failed": 0}}
    texts = [json.loads(line)["text"] for line in humans.read_text().splitlines()]
    for v, rec in (("fp32", spec), ("int8", own)):  # each holds its target on its own scores of these humans
        det = aigc.load(out, variant=v)
        p = np.array([r.probability for r in det.score(texts)])
        t = rec["thresholds"]["fpr@10%"]
        assert det.spec["thresholds"]["fpr@10%"] == t
        assert float(np.mean(p >= t["value"])) == pytest.approx(t["achieved_fpr"]) and t["achieved_fpr"] <= 0.1
    assert spec["thresholds"]["fpr@10%"]["value"] != own["thresholds"]["fpr@10%"]["value"]
    # targets that keep the names refit only the asked variant, as before
    again = tmp_path / "again"
    assert _calibrate(out, humans, again, "--variant", variant) == 0
    rec = json.loads((again / "bundle.json").read_text())["recalibration"]
    assert "also_recalibrated" not in rec and rec.get("variants_not_recalibrated", []) == (["int8"] if variant == "fp32" else [])
