"""Real data end to end (issue 7): train -> export -> evaluate on ../shared/data, the CI subset of
bench/e2e_shared.py (the full run is the bench command; figures in BENCHMARKS.md)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("timm")

ROOT = Path(__file__).resolve().parents[1]


def _bench_main():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("e2e_shared", ROOT / "bench" / "e2e_shared.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


@pytest.mark.shared
@pytest.mark.slow
def test_real_data_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    import aigc

    out = tmp_path / "e2e"
    assert _bench_main()(["--out", str(out), "--small"]) == 0
    s = json.loads((out / "summary.json").read_text())
    text, images = s["text"], s["images"]
    # the detector learned something of the open generators, and every report carries an AUROC
    assert text["in_distribution"]["auroc"] >= 0.6, text  # 480 texts, one epoch: 0.68 seen; chance is 0.5
    for part in ("in_distribution", "cross_generator", "glimpse"):
        rep = Path(text[part]["report"])
        assert rep.is_file() and rep.stat().st_size > 10_000
        assert isinstance(text[part]["auroc"], float)
        assert (rep.parent / "metrics.json").is_file() and (rep.parent / "summary.md").is_file()
    # the text bundle carries both variants and its thresholds, and scores through the runtime
    det = aigc.load(text["bundle"], variant="int8")
    assert set(det.spec["model"]["variants"]) == {"fp32", "int8"}
    assert {"fpr@5%", "fpr@10%", "balanced"} <= set(det.spec["thresholds"])
    r = det.score(["The committee said on Tuesday that the new rules would take effect next year."], threshold="fpr@5%")
    assert r[0].error is None and 0.0 <= r[0].probability <= 1.0
    # the few-shot image probe: cross-validated over 100 real files, per generator, with its bundle and report
    assert images["n"] == 100
    assert set(images["cv_auroc_per_generator"]) == {"gan", "diffusion1", "diffusion2", "diffusion3", "diffusion4"}
    assert 0.0 <= images["cv_auroc_ci95"][0] <= images["cv_auroc"] <= images["cv_auroc_ci95"][1] <= 1.0
    assert Path(images["report"]).is_file()
    assert aigc.load(images["bundle"]).modality == "image"
