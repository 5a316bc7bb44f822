"""Each variant's own calibration and thresholds (bundle v3, ``variant_calibration``): int8 of an LM moved
probabilities by up to 0.49 under fp32's calibration (Qwen-1.5B features), so export fits every variant on
its own scores of the calibration split; the runtime serves a variant with its own; ``aigc calibrate
--variant`` refits only that variant; a bundle without the field behaves as it always did."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnx")

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny-Llama features detector with an int8 variant, calibrated on 60 texts with two targets."""
    from _lm_features import features_run

    from export import BuildOptions, build_bundle

    tmp = tmp_path_factory.mktemp("vcal")
    run, texts, labels, _, _ = features_run(tmp)
    opts = BuildOptions(targets=[0.1, 0.2], variants=["int8"], external_data="always")
    return {"bundle": build_bundle(run, tmp / "bundle", texts, labels, options=opts), "texts": texts,
            "labels": np.asarray(labels)}


def _flagged_humans(det: Any, texts: list[str], y: np.ndarray, name: str) -> tuple[int, int]:
    p = np.asarray([r.probability for r in det.score(texts)])
    thr = det.spec["thresholds"][name]["value"]
    return int((p[y == 0] >= thr).sum()), int((y == 0).sum())


def test_each_variant_holds_its_own_thresholds(case: dict[str, Any]) -> None:
    from aigc import load

    b, texts, y = case["bundle"], case["texts"], case["labels"]
    spec = json.loads((b / "bundle.json").read_text())
    assert spec["format_version"] == 3
    own = spec["variant_calibration"]["int8"]
    assert set(own) >= {"calibration", "thresholds", "score_histogram"} and set(own["thresholds"]) == set(spec["thresholds"])
    assert own["calibration"]["params"] != spec["calibration"]["params"]  # fitted on int8's own raw scores
    ev = spec["variants_eval"]["int8"]
    assert ev["max_abs_dp_vs_fp32"] <= ev["max_abs_dp_fp32_calibration"] + 1e-9 or ev["max_abs_dp_vs_fp32"] < 0.05
    fp32, int8 = load(b, providers="cpu"), load(b, providers="cpu", variant="int8")
    assert int8.spec["thresholds"] == own["thresholds"] and fp32.spec["thresholds"] == spec["thresholds"]
    for name in ("fpr@10%", "fpr@20%"):
        for det, ts in ((fp32, spec["thresholds"]), (int8, own["thresholds"])):
            k, n = _flagged_humans(det, texts, y, name)
            # the achieved FPR recorded for the variant is what the variant does on the calibration humans
            assert k / n == pytest.approx(ts[name]["achieved_fpr"], abs=1e-9) and k / n <= ts[name]["target_fpr"]


def test_bundle_without_variant_calibration_behaves_as_before(case: dict[str, Any], tmp_path: Path) -> None:
    """A v1 bundle's int8 keeps using fp32's calibration and thresholds, as every aigc did."""
    from aigc import load
    from aigc._bundle import write_bundle

    b = tmp_path / "old"
    shutil.copytree(case["bundle"], b)
    spec = json.loads((b / "bundle.json").read_text())
    del spec["variant_calibration"]
    write_bundle(b, spec, overwrite=True)
    spec = json.loads((b / "bundle.json").read_text())
    assert spec["format_version"] == 1
    det = load(b, providers="cpu", variant="int8")
    assert det.spec["thresholds"] == spec["thresholds"] and det.spec["calibration"] == spec["calibration"]


def test_recalibrating_int8_leaves_fp32_alone(case: dict[str, Any], tmp_path: Path) -> None:
    from aigc import load
    from aigc._recalibrate import CalibrateOptions, recalibrate

    b, texts, y = case["bundle"], case["texts"], case["labels"]
    out, record = recalibrate(b, texts[::-1], y[::-1], tmp_path / "r8",
                              CalibrateOptions(variant="int8", method="temperature"))
    new, old = json.loads((out / "bundle.json").read_text()), json.loads((b / "bundle.json").read_text())
    assert new["calibration"] == old["calibration"] and new["thresholds"] == old["thresholds"]
    assert new["variant_calibration"]["int8"]["calibration"]["method"] == "temperature"
    assert record["variant"] == "int8" and "variants_not_recalibrated" not in record
    k, n = _flagged_humans(load(out, providers="cpu", variant="int8"), texts, y, "fpr@10%")
    assert k / n <= 0.1
    # recalibrating fp32 keeps int8's own record, and says so
    out2, record2 = recalibrate(b, texts, y, tmp_path / "r32", CalibrateOptions(method="temperature"))
    new2 = json.loads((out2 / "bundle.json").read_text())
    assert new2["calibration"]["method"] == "temperature"
    assert new2["variant_calibration"] == old["variant_calibration"]
    assert record2["variants_not_recalibrated"] == ["int8"]


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda s: s["variant_calibration"].update(fp16=s["variant_calibration"]["int8"]), "variant_calibration.fp16: expected a variant"),
        (lambda s: s["variant_calibration"]["int8"]["thresholds"].pop("fpr@10%"), "variant_calibration.int8.thresholds: names"),
        (lambda s: s["variant_calibration"]["int8"]["calibration"].update(method="magic"), "variant_calibration.int8.calibration.method"),
        (lambda s: s["variant_calibration"]["int8"]["thresholds"]["fpr@20%"].update(value=1.5), "variant_calibration.int8.thresholds.fpr@20%.value"),
    ],
)
def test_broken_variant_calibration_refused_by_name(case: dict[str, Any], mutate: Any, expect: str) -> None:
    from aigc import BundleError
    from aigc._bundle import validate_spec

    spec = json.loads((case["bundle"] / "bundle.json").read_text())
    mutate(spec)
    with pytest.raises(BundleError, match=expect.replace(".", r"\.").replace("@", "@")):
        validate_spec(spec)
