"""Tiny bundles built without torch: ONNX graphs made with onnx.helper, a tokenizer made with `tokenizers`.

Image model: logits = W @ mean_hw(pixel_values) + b (global average pool, then a 3->2 linear layer).
Text model:  logits = mean over unmasked tokens of E[input_ids] (an embedding table of shape (V, 2)).
Both are simple enough to compute by hand in numpy, which is what the golden tests do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_W = np.array([[0.8, -0.5, 0.3], [-0.6, 0.9, 0.2]], dtype=np.float32)  # (2, 3)
IMAGE_B = np.array([0.1, -0.1], dtype=np.float32)
IMAGE_SIZE = 32

WORDS = ["the", "cat", "sat", "on", "mat", "delve", "tapestry", "moreover", "a", "dog", "ran", "park", "in", "furthermore"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS]


def text_embedding() -> np.ndarray:
    """(V, 2) table: 'AI-ish' words push logit 1 up."""
    rng = np.random.default_rng(0)
    e = rng.normal(0, 0.3, size=(len(VOCAB), 2)).astype(np.float32)
    for w in ("delve", "tapestry", "moreover", "furthermore"):
        e[VOCAB.index(w)] = [-1.0, 1.5]
    for w in ("cat", "dog", "sat", "ran"):
        e[VOCAB.index(w)] = [1.0, -1.0]
    e[0] = 0.0
    return e


def image_graph(size: int = IMAGE_SIZE, out_name: str = "logits") -> Any:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, size, size])
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", 2])
    nodes = [
        helper.make_node("GlobalAveragePool", ["pixel_values"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "B"], [out_name], transB=1),
    ]
    inits = [helper.make_tensor("W", TensorProto.FLOAT, [2, 3], IMAGE_W.ravel().tolist()),
             helper.make_tensor("B", TensorProto.FLOAT, [2], IMAGE_B.tolist())]
    g = helper.make_graph(nodes, "tiny_image", [x], [y], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def text_graph() -> Any:
    import onnx
    from onnx import TensorProto, helper

    emb = text_embedding()
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])
    nodes = [
        helper.make_node("Gather", ["E", "input_ids"], ["emb"]),  # (N,T,2)
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axes2"], ["mask3"]),  # (N,T,1)
        helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axes1"], ["summed"], keepdims=0),  # (N,2)
        helper.make_node("ReduceSum", ["mask3", "axes1"], ["count"], keepdims=0),  # (N,1)
        helper.make_node("Div", ["summed", "count"], ["logits"]),
    ]
    inits = [
        helper.make_tensor("E", TensorProto.FLOAT, list(emb.shape), emb.ravel().tolist()),
        helper.make_tensor("axes2", TensorProto.INT64, [1], [2]),
        helper.make_tensor("axes1", TensorProto.INT64, [1], [1]),
    ]
    g = helper.make_graph(nodes, "tiny_text", [ids, mask], [y], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def make_tokenizer() -> Any:
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


THRESHOLDS = {
    "fpr@1%": {"value": 0.8, "target_fpr": 0.01, "n_human": 1000, "n_ai": 1000, "achieved_fpr": 0.009,
               "fpr_upper_95": 0.0157, "tpr": 0.7, "bound": "clopper-pearson"},
    "fpr@5%": {"value": 0.6, "target_fpr": 0.05, "n_human": 1000, "n_ai": 1000, "achieved_fpr": 0.048,
               "fpr_upper_95": 0.0612, "tpr": 0.85, "bound": "clopper-pearson"},
    "balanced": {"value": 0.5, "target_fpr": None, "n_human": 1000, "n_ai": 1000, "achieved_fpr": 0.12,
                 "fpr_upper_95": 0.139, "tpr": 0.9, "bound": "clopper-pearson"},
}


def base_spec(modality: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "format_version": 1,
        "name": f"tiny-{modality}",
        "modality": modality,
        "labels": ["human", "ai"],
        "calibration": {"method": "temperature", "params": {"temperature": 2.0}, "n": 2000},
        "thresholds": json.loads(json.dumps(THRESHOLDS)),
        "provenance": {"created": "2026-11-25T00:00:00Z", "source": "tests/_bundles.py"},
    }
    if modality == "image":
        spec["model"] = {"variants": {"fp32": "model.onnx"}, "output_kind": "logits",
                         "inputs": [{"name": "pixel_values", "rank": 4, "dtype": "float32"}],
                         "outputs": [{"name": "logits", "rank": 2}]}
        spec["preprocessing"] = {"type": "image", "size": [IMAGE_SIZE, IMAGE_SIZE], "resize": "none", "crop": "center",
                                 "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bicubic",
                                 "rgb_rule": "v1"}
    else:
        spec["model"] = {"variants": {"fp32": "model.onnx"}, "output_kind": "logits",
                         "inputs": [{"name": "input_ids", "rank": 2, "dtype": "int64"},
                                    {"name": "attention_mask", "rank": 2, "dtype": "int64"}],
                         "outputs": [{"name": "logits", "rank": 2}]}
        spec["preprocessing"] = {"type": "text", "tokenizer": "tokenizer.json", "max_length": 8, "stride": 4,
                                 "pooling": "mean", "max_windows": 64, "normalize": "nfc_strip_zw",
                                 "prefix_ids": [2], "suffix_ids": [3], "pad_id": 0}
    return spec


def build_bundle(out: Path, modality: str, spec_overrides: dict[str, Any] | None = None) -> Path:
    """Write a tiny bundle of ``modality`` into ``out`` (created) and return ``out``."""
    import onnx

    from aigc._bundle import write_bundle

    out.mkdir(parents=True, exist_ok=True)
    if modality == "image":
        onnx.save(image_graph(), str(out / "model.onnx"))
    else:
        onnx.save(text_graph(), str(out / "model.onnx"))
        make_tokenizer().save(str(out / "tokenizer.json"))
    spec = base_spec(modality)
    for k, v in (spec_overrides or {}).items():
        spec[k] = v
    write_bundle(out, spec)
    return out


# -- numpy oracles -----------------------------------------------------------------------------------
def image_raw_score(rgb_uint8: np.ndarray, mean: float = 0.5, std: float = 0.25) -> float:
    """Raw score of the tiny image model for an RGB (H, W, 3) uint8 array already at the crop size."""
    x = (rgb_uint8.astype(np.float64) / 255.0 - mean) / std
    pooled = x.reshape(-1, 3).mean(axis=0)
    logits = IMAGE_W.astype(np.float64) @ pooled + IMAGE_B
    return float(logits[1] - logits[0])


def text_raw_score_window(ids: list[int]) -> float:
    e = text_embedding().astype(np.float64)[ids].mean(axis=0)
    return float(e[1] - e[0])
