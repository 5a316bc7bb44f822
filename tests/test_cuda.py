"""CUDA paths: AMP training (bf16, fp16) with channels-last, LM statistics in bf16 on the GPU, and ONNX
Runtime's CUDA provider. Each test skips with its reason on a machine without CUDA (CI has none); they
were run on a lent GPU machine (BENCHMARKS.md, "CUDA checks")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import _train_helpers  # noqa: F401, E402  (puts this checkout's training package first)
from _train_helpers import image_overrides, make_image_folder, make_text_jsonl, text_overrides, tiny_bert_dir  # noqa: E402

pytestmark = [pytest.mark.train, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_training_on_cuda_reproduces_its_scores_on_cpu(amp: str, tmp_path: Path) -> None:
    from aigc._image import ImageSpec, decode_image, preprocess_image
    from training import fit, load_config, load_run, read_split

    cfg = load_config(None, [*image_overrides(make_image_folder(tmp_path / "img"), "timm:efficientnet_lite0"),
                             "train.device=cuda", f"train.amp={amp}", "train.channels_last=true", "train.max_steps=4"])
    run = fit(cfg, tmp_path / "run")
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [x["loss"] for x in lines if x.get("kind") == "train" and "loss" in x]
    assert losses and all(np.isfinite(losses))
    # the checkpoint loads on the CPU and, fp32 there, gives the dev scores that AMP training wrote
    lr = load_run(run)
    dev = read_split(run, "dev")
    spec = ImageSpec.from_dict(lr.preprocessing)
    x = np.stack([preprocess_image(decode_image(r["item"]).image, spec) for r in dev])
    with torch.no_grad():
        out = lr.model.cpu().float()(torch.from_numpy(x)).numpy()
    preds = [json.loads(x) for x in (run / "predictions" / "dev.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(out[:, 1] - out[:, 0], [p["score"] for p in preds], atol=0.1)


def test_amp_text_training_on_cuda(tmp_path: Path) -> None:
    from training import fit, load_config

    bert = tiny_bert_dir(tmp_path / "bert")
    cfg = load_config(None, [*text_overrides(make_text_jsonl(tmp_path / "t.jsonl"), f"hf:{bert}"),
                             "train.device=cuda", "train.amp=auto"])
    run = fit(cfg, tmp_path / "run")
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(x.get("kind") == "dev" and np.isfinite(x["auroc"]) for x in lines)
    preds = [json.loads(x) for x in (run / "predictions" / "dev.jsonl").read_text().splitlines()]
    assert preds and all(np.isfinite(p["score"]) for p in preds)


def test_lm_statistics_in_bf16_on_cuda_match_fp32_on_cpu() -> None:
    from test_zeroshot import make_lm, make_tokenizer

    from training.lmfeatures import LikelihoodFeatures

    tok = make_tokenizer()
    enc = tok(["the cat sat on the mat and the dog", "a bird"], return_tensors="pt", padding=True)
    cpu = LikelihoodFeatures(make_lm(len(tok), 0), performer=make_lm(len(tok), 1))
    gpu = LikelihoodFeatures(make_lm(len(tok), 0).to("cuda", torch.bfloat16),
                             performer=make_lm(len(tok), 1).to("cuda", torch.bfloat16))
    with torch.no_grad():
        a = cpu.features(enc["input_ids"], enc["attention_mask"]).numpy()
        b = gpu.features(enc["input_ids"].cuda(), enc["attention_mask"].cuda()).float().cpu().numpy()
    assert np.isfinite(b).all()
    np.testing.assert_allclose(b, a, rtol=0.1, atol=0.1)  # bf16 logits, statistics upcast to float32


def test_onnxruntime_cuda_provider_scores_like_cpu(tiny_image_bundle: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"onnxruntime here has no CUDA provider ({ort.get_available_providers()}); install onnxruntime-gpu")
    import aigc

    items = [np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8) for i in range(4)]
    a = aigc.load(tiny_image_bundle, providers="cpu").predict_proba(items)
    b = aigc.load(tiny_image_bundle, providers="cuda").predict_proba(items)
    np.testing.assert_allclose(a, b, atol=1e-4)
