"""The real contract: ``aigc train`` writes a run folder, ``aigc export`` reads it with training.load_run and
its held-out dev split, and the bundle scores like the trained torch model (both modalities, tiny models)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from _train_helpers import image_overrides, make_image_folder, make_text_jsonl, text_overrides, tiny_bert_dir

import aigc
from aigc._bundle import open_bundle
from aigc._calibration import apply_calibration
from aigc.cli import main

pytestmark = [pytest.mark.train, pytest.mark.slow]


def _train(tmp_path: Path, overrides: list[str]) -> Path:
    run = tmp_path / "run"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("name: export-test\n", encoding="utf-8")
    args = ["train", str(cfg), "--out", str(run)]
    for o in overrides:
        args += ["--set", o]
    assert main(args) == 0
    return run


def _check(run: Path, bundle: Path, name: str) -> None:
    from export import torch_raw_scores
    from training.run import load_run, read_split

    spec = open_bundle(bundle).spec
    dev = read_split(run, "dev")
    assert spec["calibration"]["n"] == len(dev) and spec["provenance"]["calibration_data"]["run_split"] == "dev"
    assert spec["metrics"]["parity"]["ok"] and spec["thresholds"][name]["n_human"] == sum(r["label"] == 0 for r in dev)
    lr = load_run(run)
    items = [r["item"] for r in dev[:6]]
    p = aigc.load(bundle, providers="cpu").predict_proba(items)[:, 1]
    raw, _ = torch_raw_scores(lr.model, lr.modality, lr.preprocessing, items, lr.input_names, lr.output_kind, lr.tokenizer_file)
    np.testing.assert_allclose(p, apply_calibration(raw, spec["calibration"]), atol=1e-4)


def test_text_run_exports(tmp_path: Path) -> None:
    data = make_text_jsonl(tmp_path / "texts.jsonl", n_pairs=90)
    bert = tiny_bert_dir(tmp_path / "bert")
    run = _train(tmp_path, text_overrides(data, f"hf:{bert}"))
    bundle = tmp_path / "bundle"
    rc = main(["export", str(run), "--out", str(bundle), "--targets", "0.05", "--variants", "fp32,int8", "--force"])
    assert rc == 0
    _check(run, bundle, "fpr@5%")
    spec = json.loads((bundle / "bundle.json").read_text())
    assert spec["modality"] == "text" and "int8" in spec["variants_eval"]


def test_image_run_exports(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "imgs", n_per_class=40)
    run = _train(tmp_path, image_overrides(data, "npr", ["model.width=8"]))
    bundle = tmp_path / "bundle"
    assert main(["export", str(run), "--out", str(bundle), "--targets", "0.1"]) == 0  # 12 dev humans
    _check(run, bundle, "fpr@10%")
