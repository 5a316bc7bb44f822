"""Larger offline LMs for text detection: Binoculars with the Qwen2.5-Coder 0.5B/1.5B pair, likelihood
features on Qwen 0.5B / gemma-3-270m / the pair, against the SmolLM2-135M features baseline (CPU).

Every text of ``textsets.all_rows`` (fastdetectgpt sample, glimpse's newer generators and languages,
evobench; every shared opening cut from both texts of a pair) is read once by each LM, first
``--max-length`` tokens, and per-token arrays are cached in chunks (``--cache-dir``), so the run can stop and
resume, and feature sets cost no LM time afterwards:

- ``smollm2`` / ``gemma`` / ``q05``: (lp, H, Var log p) per scored token under that LM alone;
- ``pair``: one pass of both Qwen models over the same token ids, 10 columns: (lp, H, Var) under the
  observer o (0.5B) and the performer p (1.5B); X_op = -sum_v p_o(v) log p_p(v) (Binoculars'
  cross-perplexity term), E_o[(log p_p)^2]; X_po, E_p[(log p_o)^2] (the other direction).

Then, per feature set, the shipped closed-form head (``training.lmfeatures.fit_logistic``) is fitted on each
training part and scored on the held-out one (zero-shot scores are one-feature fits: the same ranking):

- ``lodo-<domain>`` and ``long`` on the fastdetectgpt sample, as ``generalization_lmfeatures``;
- ``glimpse-new``: fit on all of the fastdetectgpt sample, test on glimpse's newer generators beside the
  sample's held-out humans (cross-fitted), and the FPR on glimpse's six languages' human texts;
- ``evo-cross``: fit on fastdetectgpt + glimpse English, test on evobench, per family and domain;
- ``evo-lofo-<family>``: leave one family out within evobench (two folds over human texts, pooled), fitting
  on the older sets plus evobench's other families.

Each cell: held-out AUROC, held-out human FPR and TPR at the worst-domain 1% threshold of the training part
(cross-fitted). Usage (the LM pass is hours on 2 cores; chunks resume)::

    .venv/bin/python bench/generalization_pair.py --models smollm2,pair --max-length 128 --cache-dir C
    .venv/bin/python bench/generalization_pair.py --tables-only --cache-dir C --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import textsets  # noqa: E402
from generalization_lmfeatures import lm_batches  # noqa: E402
from generalization_splits import (  # noqa: E402,F401  (re-exported: generalization_combos, evo_overlap)
    Head,
    Prep,
    Weigh,
    _auroc,
    _cell,
    evaluate_set,
    fit_and_score,
    linear_head,
    lofo_folds,
    split_masks,
)
from generalization_text import DOMAINS  # noqa: E402
from generalization_tokens import base7  # noqa: E402  (the seven statistics, one formula for both benches)

LMS = {"smollm2": "smollm2", "q05": "qwen2.5-coder-0.5b", "q15": "qwen2.5-coder-1.5b", "gemma": "gemma3-270m",
       "gemma_rank": "gemma3-270m", "gemma_hidden": "gemma3-270m", "q15_hidden": "qwen2.5-coder-1.5b"}
WIDTH = {"smollm2": 3, "q05": 3, "q15": 3, "gemma": 3, "pair": 10, "gemma_rank": 1, "gemma_hidden": 640,
         "q15_hidden": 1536}
POOLED = {"gemma_hidden", "q15_hidden"}  # passes that keep one (layers, width) array per text, not one row per token
CHUNK = 24  # texts per cached LM pass
COLUMNS = [*(f"lodo-{d}" for d in DOMAINS), "long", "glimpse-new", "evo-cross",
           *(f"evo-lofo-{f}" for f in textsets.FAMILIES)]  # the table's held-out splits


# ------------------------------------------------------------------------------------------- LM passes
def _one_lm_terms(lm: Any, ids: Any, mask: Any) -> Any:
    import torch

    from training.lmfeatures import token_terms

    with torch.inference_mode():
        lp, ent, var = token_terms(lm(input_ids=ids, attention_mask=mask).logits, ids)
    return torch.stack([lp, ent, var], -1)


def _rank_terms(lm: Any, ids: Any, mask: Any) -> Any:
    """(N, T-1, 1): log of each observed token's rank under the LM (1 = its most likely token), the
    statistic of GLTR and of DetectLLM's log-rank ratio; ``gemma_rank`` in the cache (gemma's lp, H, Var
    are ``gemma``'s)."""
    import torch

    with torch.inference_mode():
        logits = lm(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        seen = logits.gather(-1, ids[:, 1:, None])
        rank = (logits > seen).sum(-1) + 1
    return torch.log(rank.float())[..., None]


def _hidden_terms(lm: Any, ids: Any, mask: Any) -> Any:
    """(N, 2, D): each text's hidden states averaged over its tokens after the first (gemma's <bos>, whose
    state is an outlier), at the middle layer (row 0) and after the last layer's norm (row 1)."""
    import torch

    from training.hidden_probe import hidden_index, hidden_pool  # the detector's own pooling and layer

    with torch.inference_mode():
        hs = lm(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        return torch.stack([hidden_pool(hs[hidden_index(lm, 0)], mask), hidden_pool(hs[-1], mask)], 1)


def _pair_terms(obs: Any, perf: Any, ids: Any, mask: Any) -> Any:
    """(N, T-1, 10): (lp, H, Var) under o and p, X_op, E_o[(log p_p)^2], X_po, E_p[(log p_o)^2]."""
    import torch

    with torch.inference_mode():
        lo = torch.log_softmax(obs(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
        lq = torch.log_softmax(perf(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
        tgt = ids[:, 1:, None]
        cols = []
        for la in (lo, lq):
            pa = la.exp()
            ent = -(pa * la).sum(-1)
            cols += [la.gather(-1, tgt)[..., 0], ent, (pa * la * la).sum(-1) - ent * ent]
            del pa
        po, pq = lo.exp(), lq.exp()
        x_op, e2_op = -(po * lq).sum(-1), (po * lq * lq).sum(-1)
        x_po, e2_po = -(pq * lo).sum(-1), (pq * lo * lo).sum(-1)
    return torch.stack([*cols, x_op, e2_op, x_po, e2_po], -1)


def _load(name: str) -> tuple[Any, Any]:
    from training.weights import gguf_lm_path, smollm2_path
    from training.zeroshot import load_causal_lm

    path = smollm2_path() if name == "smollm2" else gguf_lm_path(LMS[name])
    return load_causal_lm(str(path), dtype="float32", device="cpu")


def _chunk_file(cache_dir: Path, model: str, max_length: int, part: list[str]) -> Path:
    key = hashlib.sha1("\x00".join([model, str(max_length), *part]).encode()).hexdigest()[:20]
    return cache_dir / f"{model}-{key}.npz"


def _read_chunk(model: str, part: list[str], max_length: int, batch: int, lms: dict[str, Any]) -> dict[str, Any]:
    if model not in lms:
        lms[model] = (_load("q05"), _load("q15")) if model == "pair" else (_load(model),)
    m = lms[model]
    res: list[np.ndarray] = [np.zeros((0, WIDTH[model]), np.float32)] * len(part)
    tc, tokens = time.perf_counter(), 0
    for idx, enc, ids, mask in lm_batches(m[0][1], part, max_length, batch, f"{model}"):
        t = (_pair_terms(m[0][0], m[1][0], ids, mask) if model == "pair" else
             _rank_terms(m[0][0], ids, mask) if model == "gemma_rank" else
             _hidden_terms(m[0][0], ids, mask) if model in POOLED else _one_lm_terms(m[0][0], ids, mask))
        for j, i in enumerate(idx):
            res[i] = (t[j].numpy().astype(np.float16) if model in POOLED  # float16: 2 x 640 (gemma) or 2 x 1536 (Qwen-1.5B) a text, committed
                      else t[j, : len(enc[j]) - 1].numpy().astype(np.float32))
            tokens += len(enc[j])
    return {"flat": np.concatenate(res), "offsets": np.cumsum([0] + [len(a) for a in res]),
            "seconds": time.perf_counter() - tc, "texts": len(part), "tokens": tokens}


def arrays(models: list[str], texts: list[str], max_length: int, batch: int, cache_dir: Path, chunk: int = CHUNK,
           budget_s: float = float("inf")) -> dict[str, list[np.ndarray | None]]:
    """Per model and text a (T-1, WIDTH[model]) float32 array. Texts are read in chunks of ``chunk`` (in the
    order given), every model on a chunk before the next chunk, each chunk cached as one ``.npz`` per model
    under ``cache_dir``; chunks not started within ``budget_s`` seconds stay None (all models alike)."""
    import torch

    out: dict[str, list[np.ndarray | None]] = {m: [None] * len(texts) for m in models}
    lms: dict[str, Any] = {}
    t0 = time.perf_counter()
    for c0 in range(0, len(texts), chunk):
        part = texts[c0: c0 + chunk]
        files = {m: _chunk_file(cache_dir, m, max_length, part) for m in models}
        if not all(f.is_file() for f in files.values()):
            if time.perf_counter() - t0 > budget_s:
                continue
            torch.manual_seed(0)
            for m, f in files.items():
                if not f.is_file():
                    z = _read_chunk(m, part, max_length, batch, lms)
                    np.savez_compressed(f.with_suffix(".tmp.npz"), **z)
                    os.replace(f.with_suffix(".tmp.npz"), f)
            print(f"chunk {c0 // chunk + 1} of {-(-len(texts) // chunk)} done at {time.perf_counter() - t0:.0f} s",
                  flush=True)
        for m, f in files.items():
            z = np.load(f)
            for i in range(len(part)):
                out[m][c0 + i] = z["flat"][z["offsets"][i]: z["offsets"][i + 1]]
    return out


def sample_rows(fdg: tuple[int, int], glimpse: tuple[int, int], evobench: tuple[int, int], seed: int = 0
                ) -> list[dict[str, Any]]:
    """The sample's rows in the seeded order the LM passes read them (any prefix of chunks is stratified)."""
    rows = textsets.all_rows(fdg, glimpse, evobench, seed=seed)
    return [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]


def texts_read(rows: list[dict[str, Any]], arrs: dict[str, list[np.ndarray | None]]
               ) -> tuple[list[dict[str, Any]], dict[str, list[np.ndarray]]]:
    """The rows every LM has read (at least two tokens) and their arrays, in the same order."""
    keep = [i for i in range(len(rows)) if all(a[i] is not None and len(a[i]) >= 2 for a in arrs.values())]  # type: ignore[arg-type]
    return [rows[i] for i in keep], {m: [a[i] for i in keep] for m, a in arrs.items()}  # type: ignore[misc]


def lm_cost(models: list[str], cache_dir: Path) -> dict[str, dict[str, float]]:
    """Texts/s and tokens/s of each model's pass, from the cached chunks' timings."""
    out = {}
    for m in models:
        zs = [np.load(f) for f in sorted(cache_dir.glob(f"{m}-*.npz")) if ".tmp" not in f.name]
        sec = sum(float(z["seconds"]) for z in zs)
        if sec > 0:
            out[m] = {"texts_per_s": sum(int(z["texts"]) for z in zs) / sec,
                      "tokens_per_s": sum(int(z["tokens"]) for z in zs) / sec, "seconds": sec}
    return out


# -------------------------------------------------------------------------------------------- features
def pair_terms(a: np.ndarray) -> dict[str, float]:
    """Zero-shot pair statistics (larger = more machine-like) from the 10 ``pair`` columns."""
    a = a.astype(float)
    lp_o, lp_p, x_op, e2_op, x_po, e2_po = a[:, 0], a[:, 3], a[:, 6], a[:, 7], a[:, 8], a[:, 9]
    var_op, var_po = np.maximum(e2_op - x_op ** 2, 0), np.maximum(e2_po - x_po ** 2, 0)
    return {
        "binoculars": lp_o.mean() / x_op.mean(),  # log-PPL_o / X-PPL_op, negated (this repo's default)
        "binoculars_perf": lp_p.mean() / x_op.mean(),  # the reference code's performer numerator
        "logppl_perf": -lp_p.mean(), "xppl": x_op.mean(),
        "fdg_o_samples_p_scores": (lp_p + x_op).sum() / np.sqrt(max(var_op.sum(), 1e-12)),
        "fdg_p_samples_o_scores": (lp_o + x_po).sum() / np.sqrt(max(var_po.sum(), 1e-12)),
    }


def feature_sets(arrs: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Feature set name -> (n, F) matrix over the texts every needed LM has read."""
    sets: dict[str, np.ndarray] = {}
    for m, label in (("smollm2", "smollm2 features (baseline)"), ("gemma", "gemma-270m features"),
                     ("q05", "qwen-0.5b features")):
        if m in arrs:
            sets[label] = np.asarray([base7(a) for a in arrs[m]])
    if "pair" in arrs:
        p = arrs["pair"]
        terms = [pair_terms(a) for a in p]
        sets["qwen-0.5b features"] = np.asarray([base7(a[:, 0:3]) for a in p])
        sets["qwen-1.5b features"] = np.asarray([base7(a[:, 3:6]) for a in p])
        for k in ("binoculars", "binoculars_perf", "fdg_o_samples_p_scores", "fdg_p_samples_o_scores"):
            sets[f"zero-shot {k}"] = np.asarray([[t[k]] for t in terms])
        sets["0.5b features + pair terms"] = np.asarray(
            [[*base7(a[:, 0:3]), t["logppl_perf"], t["xppl"]] for a, t in zip(p, terms, strict=True)])
        sets["both features + pair terms"] = np.asarray(
            [base7(a[:, 0:3]) + base7(a[:, 3:6]) + [t["logppl_perf"], t["xppl"], t["binoculars"],
                                                    t["fdg_o_samples_p_scores"]] for a, t in zip(p, terms, strict=True)])
        if "gemma" in arrs:  # a base model beside the instruct 1.5B: strong on the old domains and the new ones?
            sets["gemma + qwen-1.5b features"] = np.hstack([sets["gemma-270m features"], sets["qwen-1.5b features"]])
    return sets


def _fmt(c: dict[str, Any]) -> str:
    lo, hi = c["auroc_ci"]
    return (f"{c['auroc']:.3f} [{lo:.2f}, {hi:.2f}] / {100 * c['fpr']:.1f}% (<={100 * c['fpr_upper95']:.1f}%) / "
            f"{100 * c['tpr']:.0f}%")


def print_table(table: dict[str, dict[str, Any]]) -> None:
    cols = COLUMNS
    print("cells: held-out AUROC [95% group-bootstrap interval] / human FPR (exact 95% upper bound) / TPR at the "
          "training part's worst-domain 1% threshold")
    for name, res in table.items():
        print(f"\n{name}  (n={res['n']}; six languages' humans flagged: "
              f"{100 * res['languages (humans)']['fpr']:.1f}% of {res['languages (humans)']['humans']})")
        print("  " + "  ".join(f"{c}={_fmt(res[c])}" for c in cols))
        ec = res["evo-cross"]
        print("  evo-cross by family: " + "  ".join(f"{k}={_fmt(v)}" for k, v in ec["by_family"].items()))
        print("  evo-cross by domain: " + "  ".join(f"{k}={_fmt(v)}" for k, v in ec["by_domain"].items()))
        print("  evo-cross by length: " + "  ".join(f"{k}={_fmt(v)}" for k, v in ec["by_length"].items()))
        for split in ("long", "glimpse-new"):
            print(f"  {split} by generator: " + "  ".join(f"{k}={_fmt(v)}" for k, v in res[split]["by_generator"].items()))


def markdown_table(table: dict[str, dict[str, Any]]) -> str:
    """The BENCHMARKS.md table: one row per feature set, cells AUROC [interval] / human FPR / TPR."""
    cols = COLUMNS
    lines = ["| detector | " + " | ".join(cols) + " | 6-language humans flagged |",
             "|---|" + "---|" * (len(cols) + 1)]
    for name, res in table.items():
        cells = []
        for c in cols:
            lo, hi = res[c]["auroc_ci"]
            cells.append(f"{res[c]['auroc']:.3f} [{lo:.2f}, {hi:.2f}] / {100 * res[c]['fpr']:.1f}% / "
                         f"{100 * res[c]['tpr']:.0f}%")
        lang = res["languages (humans)"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {100 * lang['fpr']:.1f}% of {lang['humans']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="smollm2,pair", help="LM passes to run (smollm2, q05, gemma, gemma_rank, gemma_hidden, q15_hidden, pair)")
    ap.add_argument("--fdg", default="60,8", help="fastdetectgpt: humans per domain, machine texts per cell")
    ap.add_argument("--glimpse", default="8,10", help="glimpse: per (domain, newer generator), humans per language")
    ap.add_argument("--evobench", default="10,120", help="evobench: per generator, humans")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", required=True)
    ap.add_argument("--budget-min", type=float, default=float("inf"), help="stop starting LM chunks after this")
    ap.add_argument("--tables-only", action="store_true", help="no LM pass: tables from the cached chunks")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    if not textsets.exists():
        print("the shared data folder beside the repository is missing (../shared/data/text)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    sizes = [tuple(int(v) for v in a.split(",")) for a in (args.fdg, args.glimpse, args.evobench)]
    rows = sample_rows(*sizes, seed=args.seed)  # type: ignore[arg-type]
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    models = [m for m in args.models.split(",") if m]
    budget = 0.0 if args.tables_only else args.budget_min * 60
    arrs = arrays(models, [r["text"] for r in rows], args.max_length, args.batch, cache, budget_s=budget)
    print(f"{sum(a is not None for a in arrs[models[0]])} of {len(rows)} texts read; LM cost on this machine: "
          f"{json.dumps(lm_cost(models, cache))}", flush=True)
    rows, read = texts_read(rows, arrs)
    table: dict[str, dict[str, Any]] = {}
    for name, x in feature_sets(read).items():
        table[name] = {"n": len(rows), **evaluate_set(rows, x)}
    print_table(table)
    print("\n" + markdown_table(table))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "lm_cost": lm_cost(models, cache),
                                               "results": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
