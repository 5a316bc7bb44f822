"""Scoring with the torch model as the runtime scores (same windows, pooling, batches by token budget),
and the detection metrics of those scores: ``evaluate`` is what the loop calls on dev and test."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from aigc._text import (
    TextSpec,
    batches_by_token_budget,
    encode_windows,
    flatten_windows,
    pool_scores,
    window_feeds,
    window_lengths,
)
from aigc.metrics import auroc as _auroc
from aigc.metrics import average_precision as _average_precision
from training.context import Context, autocast, gather
from training.transforms import eval_crops

__all__ = ["detection_metrics", "evaluate", "logits_per_token", "score_rows", "sliced_auroc", "window_outputs"]

log = logging.getLogger(__name__)


# -------------------------------------------------------------------------------------------- metrics
def detection_metrics(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    """AUROC, AP and accuracy at s > 0 (argmax of two logits) for raw scores (larger = more AI-like)."""
    y = np.asarray(y).astype(np.int64)
    s = np.asarray(s, dtype=np.float64)
    ok = ~np.isnan(s)
    y, s = y[ok], s[ok]
    both = 0 < int(y.sum()) < y.size
    return {
        "auroc": _auroc(y, s) if both else float("nan"),
        "ap": _average_precision(y, s) if both else float("nan"),
        "accuracy": float(np.mean((s > 0).astype(np.int64) == y)) if y.size else float("nan"),
        "n": int(y.size),
        "n_failed": int((~ok).sum()),
    }


def sliced_auroc(rows: list[dict[str, Any]], s: np.ndarray, column: str) -> dict[str, float]:
    """AUROC per value of ``column`` (domain: within the value; generator: the value's AI samples vs all humans)."""
    out: dict[str, float] = {}
    y = np.asarray([r["label"] for r in rows])
    vals = sorted({str(r.get(column)) for r in rows})
    for v in vals:
        if column == "generator":
            m = np.asarray([(r["label"] == 0) or str(r.get(column)) == v for r in rows])
            if all(r["label"] == 0 for r, k in zip(rows, m, strict=True) if k):
                continue
        else:
            m = np.asarray([str(r.get(column)) == v for r in rows])
        yy, ss = y[m], s[m]
        ok = ~np.isnan(ss)
        if 0 < yy[ok].sum() < ok.sum():
            out[v] = _auroc(yy[ok], ss[ok])
    return out


def _raw_score(out: torch.Tensor, output_kind: str) -> torch.Tensor:
    """Raw score s per row: logit[1] - logit[0] (logits), or the output itself (score)."""
    out = out.float()
    return out if output_kind == "score" else out[:, 1] - out[:, 0]


# ------------------------------------------------------------------------------------------- evaluate
def window_outputs(
    tokenizer: Any,
    texts: Sequence[str],
    spec: TextSpec,
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    max_tokens: int,
    max_batch: int,
    width: int | None = None,
    progress: str | None = None,
    companion_tokenizer: Any = None,
) -> tuple[np.ndarray, dict[int, list[int]]]:
    """Cut ``texts`` into the spec's windows, as the runtime does, and run ``fn(input_ids, attention_mask)``
    (right-padded int64 arrays (b, T)) over batches by token budget; with a companion tokenizer in the spec,
    ``fn(input_ids, attention_mask, input_ids_b, attention_mask_b)`` (``aigc._text.window_feeds``).

    Returns the per-window outputs, ``(n_windows,)`` or ``(n_windows, width)`` (NaN where ``fn`` gave
    nothing), and for each text that has windows the rows of its windows; texts that cannot be encoded
    (empty, no tokens) are absent. ``progress``: a tqdm description, or ``None`` for no bar.
    """
    flat, flat_b, per = flatten_windows(encode_windows(tokenizer, list(texts), spec, companion_tokenizer))
    out = np.full(len(flat) if width is None else (len(flat), width), np.nan)
    batches: Any = list(batches_by_token_budget(window_lengths(flat, flat_b), max_tokens, max_batch))
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc=progress, unit="batch")
    for b in batches:
        feeds = window_feeds(spec, [flat[j] for j in b], [flat_b[j] for j in b] if flat_b else None)
        out[b] = fn(*feeds.values())
    return out, per


def progress_label(ctx: Context, what: str) -> str | None:
    """A tqdm description for a long pass (``train.progress`` on, rank 0), else None (no bar)."""
    return what if ctx.dist.main and getattr(ctx.cfg.train, "progress", False) else None


@torch.no_grad()
def score_rows(model: nn.Module, rows: list[dict[str, Any]], ctx: Context, progress: str | None = None
               ) -> np.ndarray:
    """Raw scores (n,) of rows on this process, by the runtime's preprocessing; NaN where an item fails.
    ``progress``: a tqdm description (a bar over the batches), or None."""
    model.eval()
    dev = ctx.dist.device
    scores = np.full(len(rows), np.nan)
    if not rows:
        return scores
    if ctx.modality == "image":
        assert ctx.image_spec is not None
        bs = ctx.cfg.eval.batch_size
        starts: Any = range(0, len(rows), bs)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc=progress, unit="batch")
        for b in starts:
            xs, owner = [], []
            for j in range(b, min(b + bs, len(rows))):
                try:
                    crops = eval_crops(rows[j], ctx.image_spec)
                except ValueError as e:
                    log.warning("eval: %s: %s", rows[j]["item"], e)
                    continue
                xs.extend(crops)
                owner.extend([j] * len(crops))
            if not xs:
                continue
            x = torch.from_numpy(np.stack(xs)).to(dev)
            if ctx.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(ctx):
                out = model(x)
            raw = _raw_score(out, ctx.output_kind).cpu().numpy()
            own = np.asarray(owner)
            for j in sorted(set(owner)):  # a grid's crop scores pool as the runtime pools them
                scores[j] = pool_scores(raw[own == j], ctx.image_spec.pooling)
        return scores
    assert ctx.text_spec is not None
    spec = ctx.text_spec

    def run(*arrays: np.ndarray) -> np.ndarray:
        with autocast(ctx):
            out = model(*(torch.from_numpy(a).to(dev) for a in arrays))
        return _raw_score(out, ctx.output_kind).cpu().numpy()

    win, per = window_outputs(ctx.tokenizer, [r["item"] for r in rows], spec, run, ctx.cfg.eval.max_tokens,
                              ctx.cfg.eval.batch_size, progress=progress, companion_tokenizer=ctx.companion_tokenizer)
    for i, js in per.items():
        scores[i] = pool_scores(win[js], spec.pooling)
    return scores


def evaluate(model: nn.Module, rows: list[dict[str, Any]], ctx: Context, progress: str | None = None
             ) -> tuple[dict[str, Any], np.ndarray]:
    """Score ``rows`` (each rank its shard, gathered) and return (metrics, scores (n,)); identical on all ranks.
    ``progress``: as :func:`score_rows`."""
    d = ctx.dist
    mine = list(range(d.rank, len(rows), d.world))
    s_mine = score_rows(model, [rows[i] for i in mine], ctx, progress)
    scores = np.full(len(rows), np.nan)
    for idx, s in gather(d, (mine, s_mine.tolist())):
        scores[idx] = s
    y = np.asarray([r["label"] for r in rows])
    m: dict[str, Any] = detection_metrics(y, scores)
    return m, scores


def logits_per_token(model: Any) -> int | None:
    """Float32 logits per token that the graph of ``model`` holds: the output vocabulary of each causal
    LM inside it, summed (Binoculars: two); None for a model without a causal LM."""
    total = 0
    for m in model.modules():
        if not type(m).__name__.endswith("ForCausalLM"):
            continue
        head = m.get_output_embeddings() if hasattr(m, "get_output_embeddings") else None
        width = getattr(head, "out_features", None) or getattr(getattr(m, "config", None), "vocab_size", 0)
        total += int(width or 0)
    return total or None
