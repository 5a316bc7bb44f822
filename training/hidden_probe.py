"""A linear probe on an LM's hidden states, beside the likelihood statistics (``model.hidden_probe``).

The statistics of ``training/lmfeatures.py`` say how likely an LM finds a text's tokens. The hidden states say what
the text is to the LM. Averaged over a window's tokens at the middle layer, they gave a linear head far better
ranking of texts from generators it never saw (BENCHMARKS.md, "Round 6" and "Round 7": mean held-out AUROC 0.92
against 0.83 for the fourteen statistics alone; 2024 generators 0.96-0.98), **and a threshold that does not carry
to a domain or a language absent from training**: at the training humans' 1% threshold 9.8-15.7% of an unseen
domain's humans and about a quarter of non-English humans were flagged. Set thresholds on your own humans
(``aigc calibrate``) before trusting its flags.

- Pooling: the mean of the layer's states over the window's real tokens after its first (the leading special
  token, whose state is an outlier in every LM measured), ``hidden_pool`` below.
- Layer: ``model.hidden_layer`` 0 means the middle one, ``hidden_states[(n_layers + 1) // 2]`` (gemma-3-270m:
  9 of 18, the layer the bench measured); k > 0 is the output of block k.
- ``model.head_components`` k > 0 fits the head on the states' first k principal components (of the z-scored
  states of the training split, labels unused) beside the statistics, and folds the projection back into one
  weight per state, so the graph is the same linear head; 0 fits one weight per state (``model.l2`` then matters).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["fit_low_rank_head", "hidden_feature_names", "hidden_index", "hidden_pool", "logits_and_hidden"]


def hidden_index(lm: nn.Module, layer: int) -> int:
    """The index into ``hidden_states`` (embeddings first) of ``model.hidden_layer``; ValueError when the LM has
    no such block."""
    cfg: Any = lm.config
    n = int(cfg.num_hidden_layers)
    if not 0 <= layer <= n:
        raise ValueError(f"model.hidden_layer: found {layer}, expected 0 (the middle block) to {n} (this LM's blocks)")
    return (n + 1) // 2 if layer == 0 else layer


def hidden_feature_names(prefix: str, width: int, index: int) -> tuple[str, ...]:
    """``{prefix}h{index}_{i}`` for each of the ``width`` states (``b_`` for the companion LM)."""
    return tuple(f"{prefix}h{index}_{i}" for i in range(width))


def logits_and_hidden(lm: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, vocab: int,
                      index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward: the logits (N, T, vocab) and the states (N, T, D) at ``hidden_states[index]``."""
    out = lm(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, output_hidden_states=True)
    return out.logits[..., :vocab], out.hidden_states[index]


def hidden_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(N, D): the mean of ``states`` over each window's unmasked positions after its first."""
    m = attention_mask.to(states.dtype).clone()
    m[:, 0] = 0.0
    w = m / m.sum(-1, keepdim=True).clamp_min(1.0)
    return (states * w[..., None]).sum(1).float()


def fit_low_rank_head(x: np.ndarray, y: np.ndarray, first: int, k: int, l2: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The closed-form head on the statistics ``x[:, :first]`` and the first ``k`` principal components of the
    z-scored states ``x[:, first:]``, returned as ``(mean, std, weight, bias)`` over all of ``x``'s columns:
    the score ``((x - mean) / std) @ weight + bias`` equals the head applied to the statistics and components.
    """
    from .lmfeatures import fit_logistic

    h = np.asarray(x[:, first:], dtype=np.float64)
    if not 0 < k <= min(h.shape):
        raise ValueError(f"model.head_components: found {k}, expected 1 to {min(h.shape)} (states x training texts)")
    h_mean = h.mean(0)
    h_std = h.std(0)
    h_std = np.where(h_std > 1e-12, h_std, 1.0)
    z = (h - h_mean) / h_std
    _, _, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
    comps = vt[:k].T  # (D, k)
    s_mean, s_std, w, b = fit_logistic(np.hstack([x[:, :first], z @ comps]), y, l2)
    w_pc = w[first:] / s_std[first:]
    mean = np.concatenate([s_mean[:first], h_mean])
    std = np.concatenate([s_std[:first], h_std])
    weight = np.concatenate([w[:first], comps @ w_pc])
    return mean, std, weight, float(b - s_mean[first:] @ w_pc)


def describe_head(names: tuple[str, ...], first: int, weight: np.ndarray) -> dict[str, Any]:
    """What the run's log shows of a head with a probe: the statistics' weights, and the states' weight norm."""
    out: dict[str, Any] = dict(zip(names[:first], np.round(weight[:first], 4).tolist(), strict=True))
    out["hidden_norm"] = round(float(np.linalg.norm(weight[first:])), 4)
    return out
