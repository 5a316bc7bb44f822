"""Checkpoints of models that train nothing in their language models (``zeroshot:*``, ``zeroshot:features``).

Such a model holds one or two pretrained causal LMs whose weights a run never changes; only a closed-form
head (a few numbers) is fitted. Copying the LMs into ``best.pt`` and ``last.pt`` wrote 2 x 9.6 GB for the
Qwen 0.5B + 1.5B pair (and filled a disk). So those checkpoints keep every other tensor and, for each LM,
its source and a fingerprint of its weights; loading rebuilds the model from the run's config (which loads
the LMs from the same source) and refuses when the LM found there is not the one the run used.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import nn

__all__ = ["FrozenLMError", "frozen_lm_names", "load_model_state", "slim_state", "weights_fingerprint"]

_SAMPLE = 65_536  # elements hashed per tensor (evenly strided), besides its name, shape and dtype


class FrozenLMError(RuntimeError):
    """A checkpoint's frozen LM is not the one the model was rebuilt with."""


def frozen_lm_names(model: nn.Module) -> list[str]:
    """The children of ``model`` that are pretrained transformers models (the LMs of a zero-shot scorer)."""
    from transformers import PreTrainedModel

    return [name for name, child in model.named_children() if isinstance(child, PreTrainedModel)]


def weights_fingerprint(module: nn.Module) -> str:
    """sha256 over every tensor's name, shape, dtype and an even sample of its values: another checkpoint of
    the same architecture differs in it (a full hash of 8 GB would take tens of seconds)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        flat = t.detach().reshape(-1)
        step = max(1, flat.numel() // _SAMPLE)
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(flat[::step][:_SAMPLE].to(torch.float64).cpu().numpy().tobytes())
    return h.hexdigest()


def slim_state(model: nn.Module, source: str) -> dict[str, Any]:
    """The checkpoint entries of a model whose LMs are frozen: ``model`` without the LMs' tensors and
    ``frozen_lms`` ``{child: {source, fingerprint}}`` (``source``: where the run's config loads them from)."""
    names = frozen_lm_names(model)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(tuple(f"{n}." for n in names))}
    frozen = {n: {"source": source, "fingerprint": weights_fingerprint(getattr(model, n))} for n in names}
    return {"model": state, "frozen_lms": frozen}


def load_model_state(model: nn.Module, ck: dict[str, Any]) -> None:
    """Load a checkpoint's weights into ``model``: all of them, or, for a slim checkpoint, all but its
    frozen LMs, which ``model`` must already hold (same fingerprint). Raises FrozenLMError naming the LM."""
    frozen = ck.get("frozen_lms")
    if not frozen:
        model.load_state_dict(ck["model"])
        return
    for name, rec in frozen.items():
        child = getattr(model, name, None)
        if not isinstance(child, nn.Module):
            raise FrozenLMError(f"the checkpoint names a frozen LM {name!r} that the rebuilt model lacks")
        if weights_fingerprint(child) != rec["fingerprint"]:
            raise FrozenLMError(
                f"{name}: the LM loaded from {rec.get('source') or 'the config'} is not the one this run used "
                "(its weights differ); restore those weights or train the run again")
    result = model.load_state_dict(ck["model"], strict=False)
    prefixes = tuple(f"{n}." for n in frozen)
    stray = [k for k in result.missing_keys if not k.startswith(prefixes)] + list(result.unexpected_keys)
    if stray:
        raise FrozenLMError(f"the checkpoint does not match the model: {stray[:5]}")
