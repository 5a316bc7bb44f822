"""Likelihood-feature detector: statistics of a text's tokens under a causal LM, and a fitted linear head.

``zeroshot:features`` sits between the zero-shot statistics (``training/zeroshot.py``: one number, no
training data) and fine-tuned encoders (``hf:``): a frozen causal LM describes each window by seven
domain-agnostic statistics of its tokens, and a logistic regression on those seven numbers is fitted in
closed form on the training split. Fine-tuned encoders learn the vocabulary of their training domains;
these statistics only say how predictable the text is to an LM, which is what transfers to domains the
detector never saw (BENCHMARKS.md, "Training: text generalization": leave-one-domain-out).

Statistics over the scored positions t of a window (the tokens whose own and previous positions are
unmasked, as in ``training/zeroshot.py``), with lp_t = log p(x_t | x_<t), H_t the predictive entropy,
mu_t = -H_t and s2_t the variance of log p under the LM's own distribution:

==================  ============================================================
``lp_mean``         mean_t lp_t
``lp_std``          standard deviation of lp_t
``entropy``         mean_t H_t
``fast_detectgpt``  sum_t (lp_t - mu_t) / sqrt(sum_t s2_t) (one-model Fast-DetectGPT)
``lp_over_entropy`` lp_mean / entropy (one-model Binoculars, negated)
``gap_mean``        mean_t (lp_t - mu_t)
``gap_std``         standard deviation of lp_t - mu_t
==================  ============================================================

With a second LM of the same tokenizer (``model.reference_model``, the *performer*; the first is the
*observer*), two more features join the seven: Binoculars' two terms (Hans et al., ICML 2024), kept apart so
that the head weighs them instead of fixing their ratio:

==================  ============================================================
``logppl_perf``     -mean_t log p_perf(x_t) (log-perplexity under the performer)
``cross_ppl``       -mean_t sum_v p_obs(v) log p_perf(v) (cross-perplexity)
==================  ============================================================

With a second LM of *another* tokenizer (``model.companion_model``, e.g. gemma-3-270m beside Qwen-1.5B), its
own seven statistics (``b_lp_mean`` ... ``b_gap_std``) join the first LM's under the same head. Each window of
the first tokenizer is tokenized again by the companion over the same characters (``aigc._text``,
``preprocessing.companion``), so the graph takes ``input_ids_b`` / ``attention_mask_b`` beside the usual two.

With ``model.hidden_probe`` (``backbone`` or ``companion``) that LM's hidden states, averaged over each window's
tokens at its middle block, join as features (``h9_0`` ... for gemma-3-270m; ``training/hidden_probe.py``, which
also says what they do to thresholds).

Every statistic is a smooth function of the logits. Rank features (mean log-rank, share of top-1 /
top-10 tokens) were dropped: they jump when two logits swap, so ONNX Runtime and torch, whose logits
differ by ~1e-4 after 30 layers, disagreed by 1.7e-3 in probability on a real text (the export's parity
check is 1e-4), and leaving them out cost nothing measurable across domains (BENCHMARKS.md).

The whole module (LM, statistics, standardisation, head) exports to ONNX as one graph returning a score
(N,), larger = more AI-like (``output_kind = "score"``). The head lives in buffers, not parameters: the
training loop sees no trainable parameters and calls :func:`fit_head_on_split` (features of the training
split, then :meth:`LikelihoodFeatures.fit_head`) instead of running an optimiser.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .causal_lm import load_causal_lm, text_spec_for, with_companion
from .hidden_probe import (
    describe_head,
    fit_low_rank_head,
    hidden_feature_names,
    hidden_index,
    hidden_pool,
    logits_and_hidden,
)
from .lmhead import choose_l2, fit_head_on_split, fit_logistic, window_features
from .zeroshot import _logits, _vocab

__all__ = [
    "COMPANION_FEATURE_NAMES",
    "FEATURE_NAMES",
    "PAIR_FEATURE_NAMES",
    "LikelihoodFeatures",
    "fit_head_on_split",
    "fit_logistic",
    "pair_statistics",
    "token_statistics",
    "token_terms",
    "window_features",
]

FEATURE_NAMES = ("lp_mean", "lp_std", "entropy", "fast_detectgpt", "lp_over_entropy", "gap_mean", "gap_std")
PAIR_FEATURE_NAMES = ("logppl_perf", "cross_ppl")
COMPANION_FEATURE_NAMES = tuple(f"b_{n}" for n in FEATURE_NAMES)


def _mstd(x: torch.Tensor, valid: torch.Tensor, n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked mean and (population) standard deviation of x (N,L) per row."""
    zero = torch.zeros_like(x)
    mean = torch.where(valid, x, zero).sum(-1) / n
    var = torch.where(valid, (x - mean[:, None]) ** 2, zero).sum(-1) / n
    return mean, torch.sqrt(var.clamp_min(0.0))


def token_terms(logits: torch.Tensor, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per position t of causal-LM logits (N, T, V): ``(lp, H, var)``, each (N, T-1), with lp the
    log-probability of token t + 1, H the predictive entropy and var the variance of log p under the LM's
    own distribution (no masking: :func:`token_statistics` masks)."""
    lp_all = torch.log_softmax(logits[:, :-1, :].float(), dim=-1)  # (N, T-1, V)
    lp = lp_all.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    p = lp_all.exp()
    ent = -(p * lp_all).sum(-1)
    var = (p * lp_all * lp_all).sum(-1) - ent * ent  # Var[log p] under p
    return lp, ent, var


def scored_positions(attention_mask: torch.Tensor, skip_tokens: int = 0) -> torch.Tensor:
    """(N, T-1) bool: the positions whose token and previous token are both real, less the burn-in."""
    valid = (attention_mask[:, 1:] > 0) & (attention_mask[:, :-1] > 0)  # (N, T-1)
    if skip_tokens > 0:
        real = (attention_mask > 0).long()
        k = torch.clamp(real.sum(-1, keepdim=True) // 2, max=int(skip_tokens))  # (N, 1)
        pos = torch.cumsum(real, dim=-1) - 1  # each token's index among the row's real tokens
        valid = valid & (pos[:, 1:] >= k)
    return valid


def pair_statistics(obs_logits: torch.Tensor, perf_logits: torch.Tensor, input_ids: torch.Tensor,
                    attention_mask: torch.Tensor, skip_tokens: int = 0) -> torch.Tensor:
    """:data:`PAIR_FEATURE_NAMES` (N, 2) float32 from the observer's and performer's logits (N, T, V) over the
    same token ids, on the positions :func:`token_statistics` scores (NaN where there is none)."""
    lo = torch.log_softmax(obs_logits[:, :-1, :].float(), dim=-1)  # (N, T-1, V)
    lq = torch.log_softmax(perf_logits[:, :-1, :].float(), dim=-1)
    lp_perf = lq.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # (N, T-1)
    xent = -(lo.exp() * lq).sum(-1)  # (N, T-1)
    valid = scored_positions(attention_mask, skip_tokens)
    n = valid.sum(-1).to(torch.float32)
    zero = torch.zeros_like(xent)
    logppl = -torch.where(valid, lp_perf, zero).sum(-1) / n
    xppl = torch.where(valid, xent, zero).sum(-1) / n
    return torch.stack([logppl, xppl], dim=-1)


def token_statistics(logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     skip_tokens: int = 0) -> torch.Tensor:
    """The statistics of :data:`FEATURE_NAMES` (N, 7) float32 from causal-LM logits (N, T, V).

    ``skip_tokens`` (burn-in): the first ``k`` tokens of each row serve as context only and are not
    scored, with ``k = min(skip_tokens, n // 2)`` for a row of ``n`` tokens, so a short row keeps half its
    tokens; tokens are counted from the row's first unmasked one, so padding may sit on either side. The
    first token is never scored (nothing predicts it). A row with no scored position gives NaN (as the
    zero-shot statistics do).
    """
    lp, ent, var = token_terms(logits, input_ids)  # (N, T-1) each
    valid = scored_positions(attention_mask, skip_tokens)  # (N, T-1)
    n = valid.sum(-1).to(torch.float32)
    gap = lp + ent  # lp - E[log p]
    zero = torch.zeros_like(lp)
    lp_mean, lp_std = _mstd(lp, valid, n)
    ent_mean, _ = _mstd(ent, valid, n)
    fdg = torch.where(valid, gap, zero).sum(-1) / torch.sqrt(torch.where(valid, var, zero).sum(-1).clamp_min(1e-12))
    gap_mean, gap_std = _mstd(gap, valid, n)
    ratio = lp_mean / ent_mean.clamp_min(1e-6)
    return torch.stack([lp_mean, lp_std, ent_mean, fdg, ratio, gap_mean, gap_std], dim=-1)


class LikelihoodFeatures(nn.Module):
    """A frozen causal LM, the seven token statistics, standardisation and a linear head: score (N,).

    Until :meth:`fit_head` runs, the head is the one-model Fast-DetectGPT statistic alone (weight 1 on
    ``fast_detectgpt``), so an unfitted module is still a sensible zero-shot detector.
    """

    output_kind = "score"
    feat_mean: torch.Tensor  # buffers (register_buffer), declared for the type checker
    feat_std: torch.Tensor
    head_weight: torch.Tensor
    head_bias: torch.Tensor
    fitted: torch.Tensor

    def __init__(self, lm: nn.Module, l2: float = 1.0, skip_tokens: int = 0, performer: nn.Module | None = None,
                 companion: nn.Module | None = None, hidden_probe: str = "", hidden_layer: int = 0,
                 head_components: int = 0, l2_grid: Sequence[float] = ()) -> None:
        super().__init__()
        if skip_tokens < 0:
            raise ValueError(f"skip_tokens: found {skip_tokens}, expected 0 or more")
        self.lm = lm
        self.performer = performer
        self.companion = companion
        self.vocab = _vocab(lm) if performer is None else _vocab(lm, performer)
        self.vocab_b = _vocab(companion) if companion is not None else 0
        self.l2 = float(l2)
        self.l2_grid = tuple(float(v) for v in l2_grid)
        if any(not np.isfinite(v) or v < 0 for v in (self.l2, *self.l2_grid)):
            raise ValueError(f"model.l2 and model.l2_grid: found {self.l2} and {list(self.l2_grid)}, expected finite values >= 0")
        self.skip_tokens = int(skip_tokens)
        self.feature_names = (FEATURE_NAMES + (PAIR_FEATURE_NAMES if performer is not None else ())
                              + (COMPANION_FEATURE_NAMES if companion is not None else ()))
        self.n_statistics = len(self.feature_names)
        self.hidden_probe, self.head_components, self.hidden_at = self._probe(hidden_probe, hidden_layer, head_components)
        self.input_names = ["input_ids", "attention_mask"] + (["input_ids_b", "attention_mask_b"] if companion is not None else [])
        f = len(self.feature_names)
        w = torch.zeros(f)
        w[FEATURE_NAMES.index("fast_detectgpt")] = 1.0
        self.register_buffer("feat_mean", torch.zeros(f))
        self.register_buffer("feat_std", torch.ones(f))
        self.register_buffer("head_weight", w)
        self.register_buffer("head_bias", torch.zeros(()))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.int64))

    def _probe(self, source: str, layer: int, components: int) -> tuple[str, int, int]:
        """Check ``model.hidden_probe`` and its settings; add the states' names to ``feature_names``."""
        if source not in ("", "backbone", "companion"):
            raise ValueError(f"model.hidden_probe: found {source!r}, expected '', 'backbone' or 'companion'")
        if source == "companion" and self.companion is None:
            raise ValueError("model.hidden_probe: 'companion' needs model.companion_model")
        if components < 0 or (components and not source):
            raise ValueError(f"model.head_components: found {components}, expected 0, or more with model.hidden_probe")
        if not source:
            return "", 0, 0
        lm = self.lm if source == "backbone" else self.companion
        assert lm is not None  # checked above
        at = hidden_index(lm, layer)
        cfg: Any = lm.config
        self.feature_names += hidden_feature_names("b_" if source == "companion" else "", int(cfg.hidden_size), at)
        return source, int(components), at

    def _lm_pass(self, lm: nn.Module, ids: torch.Tensor, mask: torch.Tensor, vocab: int, probe: bool
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not probe:
            return _logits(lm, ids, mask, vocab), None
        logits, states = logits_and_hidden(lm, ids, mask, vocab, self.hidden_at)
        return logits, hidden_pool(states, mask)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, input_ids_b: torch.Tensor | None = None,
                 attention_mask_b: torch.Tensor | None = None) -> torch.Tensor:
        """(N, F) statistics of each window: the seven, then the pair's two with a performer, then the
        companion's seven over ``input_ids_b`` (the same windows under its tokenizer; required with one), then
        with ``hidden_probe`` the probed LM's pooled hidden states (``training/hidden_probe.py``)."""
        logits, pooled = self._lm_pass(self.lm, input_ids, attention_mask, self.vocab, self.hidden_probe == "backbone")
        parts = [token_statistics(logits, input_ids, attention_mask, self.skip_tokens)]
        if self.performer is not None:
            perf = _logits(self.performer, input_ids, attention_mask, self.vocab)
            parts.append(pair_statistics(logits, perf, input_ids, attention_mask, self.skip_tokens))
        if self.companion is not None:
            if input_ids_b is None or attention_mask_b is None:
                raise ValueError("LikelihoodFeatures with a companion LM needs input_ids_b and attention_mask_b")
            logits_b, pooled_b = self._lm_pass(self.companion, input_ids_b, attention_mask_b, self.vocab_b,
                                               self.hidden_probe == "companion")
            parts.append(token_statistics(logits_b, input_ids_b, attention_mask_b, self.skip_tokens))
            pooled = pooled_b if pooled is None else pooled
        if pooled is not None:
            parts.append(pooled.to(parts[0].dtype))
        return parts[0] if len(parts) == 1 else torch.cat(parts, -1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, input_ids_b: torch.Tensor | None = None,
                attention_mask_b: torch.Tensor | None = None) -> torch.Tensor:
        z = (self.features(input_ids, attention_mask, input_ids_b, attention_mask_b) - self.feat_mean) / self.feat_std
        return z @ self.head_weight + self.head_bias

    def head_arrays(self, features: np.ndarray, labels: np.ndarray, domains: Sequence[str] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """``(mean, std, weight, bias)`` of this model's kind of head (its ``head_components``; its ``l2``, or with
        ``l2_grid`` and the texts' ``domains`` the grid's value chosen by leave-one-domain-out) fitted on per-text
        features (n, F) and labels (n,), without touching the buffers (:meth:`fit_head` sets them)."""
        return self._fit_at(features, labels, self.head_penalty(features, labels, domains)[0])

    def head_penalty(self, features: np.ndarray, labels: np.ndarray, domains: Sequence[str] | None = None
                     ) -> tuple[float, dict[str, Any]]:
        """The penalty :meth:`head_arrays` uses: ``l2``, or with ``l2_grid`` and ``domains`` the one
        :func:`training.lmhead.choose_l2` picks; also what was measured."""
        if not self.l2_grid:
            return self.l2, {}
        if domains is None:
            return self.l2, {"l2": self.l2, "chosen_by": "model.l2", "why": "no domains given"}
        return choose_l2(self._fit_at, features, labels, domains, self.l2_grid, self.l2)

    def _fit_at(self, features: np.ndarray, labels: np.ndarray, l2: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        if self.head_components:
            return fit_low_rank_head(features, labels, self.n_statistics, self.head_components, l2)
        return fit_logistic(features, labels, l2)

    def fit_head(self, features: np.ndarray, labels: np.ndarray, domains: Sequence[str] | None = None
                 ) -> dict[str, Any]:
        """Fit the head on per-text features (n, F) and labels (n,) (their ``domains`` choose the penalty with
        ``l2_grid``); return what was fitted (for the log). With ``head_components`` the probe's states enter
        through their principal components (folded back)."""
        l2, selection = self.head_penalty(features, labels, domains)
        mean, std, w, b = self._fit_at(features, labels, l2)
        dev = self.head_weight.device
        self.feat_mean.copy_(torch.as_tensor(mean, dtype=torch.float32, device=dev))
        self.feat_std.copy_(torch.as_tensor(std, dtype=torch.float32, device=dev))
        self.head_weight.copy_(torch.as_tensor(w, dtype=torch.float32, device=dev))
        self.head_bias.fill_(b)
        self.fitted.fill_(1)
        weights = (describe_head(self.feature_names, self.n_statistics, w) if self.hidden_probe
                   else dict(zip(self.feature_names, np.round(w, 4).tolist(), strict=True)))
        out = {"n": len(labels), "weights": weights, "bias": round(b, 4), "l2": l2}
        return {**out, "l2_selection": selection} if selection else out


def create_lmfeatures(model: str = "smollm2", dtype: Any = None, device: Any = None, l2: float = 1.0,
                      skip_tokens: int = 0, performer: str = "", companion: str = "", hidden_probe: str = "",
                      hidden_layer: int = 0, head_components: int = 0, l2_grid: Sequence[float] = ()
                      ) -> tuple[LikelihoodFeatures, Any]:
    """Build the detector on the causal LM ``model`` (hub name, local path, or an offline preset: ``smollm2``,
    ``qwen2.5-coder-0.5b``, ...). ``performer``: a second LM of the same tokenizer whose Binoculars terms join
    the features (``qwen2.5-coder-1.5b`` beside the 0.5B observer); a different tokenizer is refused.
    ``companion``: a second LM of any tokenizer whose own seven statistics join (``gemma3-270m``); its
    tokenizer is set on the returned model as ``companion_tokenizer``. ``hidden_probe`` (``backbone`` or
    ``companion``), ``hidden_layer``, ``head_components``: the hidden-state probe (``training/hidden_probe.py``).
    ``l2_grid``: the head's penalty chosen from these by leave-one-domain-out (``l2`` the fallback)."""
    from .causal_lm import check_same_tokenizer

    lm, tok = load_causal_lm(model, dtype, device)
    perf = comp = None
    if performer:
        perf, tok_p = load_causal_lm(performer, dtype, device)
        check_same_tokenizer(tok, tok_p, model, performer, "zeroshot:features with a performer")
    if companion:
        comp, tok_c = load_causal_lm(companion, dtype, device)
    out = LikelihoodFeatures(lm, l2, skip_tokens, perf, comp, hidden_probe, hidden_layer, head_components, l2_grid)
    if comp is not None:
        out.companion_tokenizer = tok_c
    return out, tok


try:
    from training.registry import register_model
except ImportError:  # pragma: no cover - the registry ships with training/
    register_model = None

if register_model is not None:

    @register_model("zeroshot:features", modality="text", output_kind="score",
                    help="seven token statistics under model.backbone (default smollm2; with model.reference_model "
                         "also Binoculars' two terms) + a logistic-regression head fitted in closed form on the "
                         "training split (generalizes across domains)")
    def _zs_features(cfg: Any) -> nn.Module:
        lm = cfg.backbone or (cfg.pretrained if cfg.pretrained not in ("", "hub") else "") or "smollm2"
        dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if torch.cuda.is_available() \
            else torch.float32
        model, tok = create_lmfeatures(lm, dtype=dtype, device="cpu", l2=cfg.l2, skip_tokens=cfg.skip_tokens,
                                       performer=cfg.reference_model, companion=cfg.companion_model,
                                       hidden_probe=cfg.hidden_probe, hidden_layer=cfg.hidden_layer,
                                       head_components=cfg.head_components, l2_grid=cfg.l2_grid)
        model.tokenizer = tok
        model.text_spec = text_spec_for(tok)
        if cfg.companion_model:
            model.text_spec = with_companion(model.text_spec, model.companion_tokenizer)
        return model
