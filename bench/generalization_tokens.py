"""Which summaries of a text's per-token likelihoods transfer across domains? (SmolLM2-135M, CPU)

One SmolLM2 pass over the balanced sample of ``generalization_lmfeatures`` (same rows, same seed) keeps,
for every token of the first ``--max-length``, its log-probability lp, the predictive entropy H and the
variance of log p under the LM (``--cache``: an ``.npz`` so later runs cost no LM time). Feature sets are
then computed from those arrays with numpy and each is fitted with the shipped closed-form logistic
regression (``training.lmfeatures.fit_logistic``) on every leave-one-domain-out split and the newest-
generators split, exactly as ``generalization_lmfeatures`` scores them (held-out AUROC; held-out human FPR
at the training part's cross-fitted 1% threshold, pooled and worst-domain). Nothing is chosen on a held-out
part: the table prints every feature set side by side, then a sweep of the burn-in (``model.skip_tokens``).

Every machine text of fastdetectgpt.jsonl starts with the first ~30 tokens of its human text, so a burn-in
that skips them hides text both classes share; ``--drop-prefix`` cuts that prefix from every text (both
classes) to tell that apart from a genuine gain (BENCHMARKS.md: there was none). Usage::

    .venv/bin/python bench/generalization_tokens.py --max-length 384 --cache /tmp/tok384.npz \
        [--chat-cache /tmp/chat384.npz] [--drop-prefix]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generalization_lmfeatures import heldout_results, lm_batches, sample_rows  # noqa: E402
from generalization_text import DATA, DOMAINS  # noqa: E402

CHAT_PREFIX = "<|im_start|>user\nWrite a passage.<|im_end|>\n<|im_start|>assistant\n"


def token_arrays(texts: list[str], max_length: int, threads: int, batch: int, context: str = "") -> list[np.ndarray]:
    """Per text a (T-1, 3) float32 array of (lp, H, Var log p) at each scored position under SmolLM2.

    ``context``: a string whose tokens are put before every text (SmolLM2's chat turn, say); the arrays
    still hold the text's tokens 1..T-1 only, aligned with the plain pass."""
    import torch

    from training.lmfeatures import token_terms
    from training.weights import smollm2_path
    from training.zeroshot import load_causal_lm

    torch.set_num_threads(threads)
    lm, tok = load_causal_lm(str(smollm2_path()), dtype="float32", device="cpu")
    pre = tok(context, add_special_tokens=False)["input_ids"] if context else []
    out: list[np.ndarray] = [np.zeros((0, 3), np.float32)] * len(texts)
    for idx, enc, ids, mask in lm_batches(tok, texts, max_length, batch, "SmolLM2 token arrays", pre):
        with torch.inference_mode():
            lp, ent, var = token_terms(lm(input_ids=ids, attention_mask=mask).logits, ids)
        for j, i in enumerate(idx):
            n, k = len(enc[j]) - 1, len(pre)
            out[i] = torch.stack([lp[j, k:n], ent[j, k:n], var[j, k:n]], -1).numpy().astype(np.float32)
    return out


def cached_arrays(texts: list[str], max_length: int, threads: int, batch: int, cache: Path | None,
                  context: str = "") -> list[np.ndarray]:
    """:func:`token_arrays`, read from the ``.npz`` ``cache`` when it was made from the same texts, context and
    ``max_length`` (a sha1 of them), else computed and written there."""
    key = hashlib.sha1("\x00".join([str(max_length), context, *texts]).encode()).hexdigest()
    if cache and cache.is_file():
        z = np.load(cache, allow_pickle=False)
        if "key" in z and str(z["key"]) == key:
            flat, off = z["flat"], z["offsets"]
            return [flat[off[i]: off[i + 1]] for i in range(len(texts))]
    arrs = token_arrays(texts, max_length, threads, batch, context)
    if cache:
        off = np.cumsum([0] + [len(a) for a in arrs])
        np.savez(cache, flat=np.concatenate(arrs), offsets=off, key=key)
    return arrs


# ---------------------------------------------------------------------------------------------- features
def _q(x: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    return np.quantile(x, qs).tolist()


def base7(a: np.ndarray) -> list[float]:
    """The seven statistics of ``training.lmfeatures`` (same formulas)."""
    lp, ent, var = a[:, 0].astype(float), a[:, 1].astype(float), a[:, 2].astype(float)
    gap = lp + ent
    return [lp.mean(), lp.std(), ent.mean(), gap.sum() / np.sqrt(max(var.sum(), 1e-12)),
            lp.mean() / max(ent.mean(), 1e-6), gap.mean(), gap.std()]


def zgap(a: np.ndarray) -> np.ndarray:
    return (a[:, 0] + a[:, 1]) / np.sqrt(np.maximum(a[:, 2], 1e-6))


def quantiles(a: np.ndarray) -> list[float]:
    qs = (0.1, 0.25, 0.5, 0.75, 0.9)
    return _q(a[:, 0], qs) + _q(a[:, 0] + a[:, 1], qs) + _q(zgap(a), qs)


def tails(a: np.ndarray) -> list[float]:
    """Soft shares of very surprising tokens and of near-certain ones (smooth: sigmoids, not counts)."""
    lp = a[:, 0].astype(float)
    z = zgap(a).astype(float)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    return [sig((-lp - 8) * 2).mean(), sig((-lp - 4) * 2).mean(), sig((lp + 0.5) * 4).mean(),
            sig((-z - 2) * 2).mean(), sig((z - 0.5) * 2).mean()]


def burn_in(a: np.ndarray, k: int) -> np.ndarray:
    """The positions ``token_statistics(..., skip_tokens=k)`` scores: a text of n tokens has n - 1 rows
    (row t predicts token t + 1); tokens before min(k, n // 2) are context only."""
    kk = min(k, (len(a) + 1) // 2)
    return a[max(kk - 1, 0):]


def chat(a: np.ndarray) -> list[float]:
    """Log-probability of the text as SmolLM2's own chat answer against as plain text: a one-model
    observer/performer contrast (columns 3-5 hold the chat-context pass)."""
    d = a[:, 3] - a[:, 0]
    lpc, entc, varc = a[:, 3].astype(float), a[:, 4].astype(float), a[:, 5].astype(float)
    return [d.mean(), d.std(), lpc.mean(), (lpc + entc).sum() / np.sqrt(max(varc.sum(), 1e-12)),
            lpc.mean() / max(entc.mean(), 1e-6)]


def context_free_prior(max_length: int, texts: list[str]) -> list[np.ndarray]:
    """Per text, the log-probability of each scored token (tokens 1..T-1) under SmolLM2 with no context: the
    mean of its next-token distributions after a few neutral one-token contexts, a token-level unigram prior
    (Ghostbuster compares LM and unigram probabilities). A constant vector, so an ONNX graph could hold it."""
    import torch

    from training.weights import smollm2_path
    from training.zeroshot import load_causal_lm

    lm, tok = load_causal_lm(str(smollm2_path()), dtype="float32", device="cpu")
    with torch.inference_mode():
        lps = [torch.log_softmax(lm(input_ids=torch.tensor([tok(c, add_special_tokens=False)["input_ids"]]))
                                 .logits[0, -1].float(), -1) for c in ("<|endoftext|>", "\n", "The", "<|im_start|>")]
        prior = (torch.logsumexp(torch.stack(lps), 0) - np.log(len(lps))).numpy()
    return [prior[np.asarray(tok(t, add_special_tokens=True)["input_ids"][1:max_length], dtype=np.int64)]
            .astype(np.float32) for t in texts]


def prior(a: np.ndarray) -> list[float]:
    """How much the context lifts each token above its context-free prior (the last column), and how rare
    the tokens are."""
    d = a[:, 0].astype(float) - a[:, -1].astype(float)
    return [d.mean(), d.std(), float(a[:, -1].mean()), float(a[:, -1].std())]


FEATURE_SETS: dict[str, Callable[[np.ndarray], list[float]]] = {
    "base7 (shipped)": base7,
    "base7+quantiles": lambda a: base7(a) + quantiles(a),
    "base7+tails": lambda a: base7(a) + tails(a),
    "base7+quantiles+tails": lambda a: base7(a) + quantiles(a) + tails(a),
    "fdg only": lambda a: [base7(a)[3]],
    "lp_mean only": lambda a: [base7(a)[0]],
    "fdg+zgap quantiles": lambda a: [base7(a)[3], *_q(zgap(a), (0.1, 0.25, 0.5, 0.75, 0.9))],
    "base7, burn-in 16": lambda a: base7(burn_in(a, 16)),
}
CHAT_SETS: dict[str, Callable[[np.ndarray], list[float]]] = {
    "chat only": chat,
    "chat diff mean": lambda a: [chat(a)[0]],
    "base7+chat": lambda a: base7(a) + chat(a),
    "base7 on chat pass": lambda a: base7(a[:, 3:]),
    "base7+chat+quantiles+tails": lambda a: base7(a) + chat(a) + quantiles(a) + tails(a),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-domain-human", type=int, default=200)
    ap.add_argument("--per-cell", type=int, default=30)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="")
    ap.add_argument("--chat-cache", default="", help="also a pass with SmolLM2's chat turn before each text "
                    "(cached here), for the chat feature sets")
    ap.add_argument("--prior", action="store_true",
                    help="also feature sets against SmolLM2's context-free token prior (context_free_prior)")
    ap.add_argument("--drop-prefix", action="store_true",
                    help="score every text without the words a machine text shares with its human text "
                         "(drop_shared_prefix), to measure the burn-in on text that no class shares")
    ap.add_argument("--burn-in", default="0,4,8,16,24,32,48",
                    help="burn-in sweep of the shipped seven statistics: held-out figures beside the training part's "
                    "5-fold CV AUROC (grouped by human text); run it with and without --drop-prefix")
    ap.add_argument("--sets", default="", help="comma-separated feature-set names (default: all)")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    if not DATA.is_file():
        print(f"{DATA} not found (../shared/data beside the repository)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rows = sample_rows(args.per_domain_human, args.per_cell, args.seed, args.drop_prefix)
    arrs = cached_arrays([r["text"] for r in rows], args.max_length, args.threads, args.batch,
                         Path(args.cache) if args.cache else None)
    sets = dict(FEATURE_SETS)
    if args.chat_cache:
        chat_arrs = cached_arrays([r["text"] for r in rows], args.max_length, args.threads, args.batch,
                                  Path(args.chat_cache), CHAT_PREFIX)
        arrs = [np.concatenate([a, c], 1) for a, c in zip(arrs, chat_arrs, strict=True)]
        sets.update(CHAT_SETS)
    if args.prior:
        pri = context_free_prior(args.max_length, [r["text"] for r in rows])
        arrs = [np.concatenate([a, p[:, None]], 1) for a, p in zip(arrs, pri, strict=True)]
        sets.update({"prior only": prior, "base7+prior": lambda a: base7(a) + prior(a)})
    keep = [i for i, a in enumerate(arrs) if len(a) >= 2]
    rows, arrs = [rows[i] for i in keep], [arrs[i] for i in keep]
    print(f"{len(rows)} texts, token arrays in {time.perf_counter() - t0:.0f} s")
    names = [s for s in args.sets.split(",") if s] or list(sets)
    table: dict[str, Any] = {}
    for name in names:
        feats = np.asarray([sets[name](a) for a in arrs], dtype=float)
        res = heldout_results(rows, feats)
        table[name] = res
        cells = "  ".join(f"{r['test_auroc']:.3f}/{100 * r['heldout_human_fpr']:.1f}%/"
                          f"{100 * r['heldout_human_fpr_worst_domain']:.1f}%" for r in res)
        print(f"{name:<26} {cells}", flush=True)
    print(f"columns: {', '.join([*(f'lodo-{d}' for d in DOMAINS), 'long'])}; "
          "AUROC / held-out human FPR at the pooled 1% threshold / at the worst-domain one")
    sweep: dict[str, Any] = {}
    print("\nburn-in sweep (seven statistics): held-out AUROC / worst-domain FPR (training part's CV AUROC)")
    for k in [int(v) for v in args.burn_in.split(",") if v]:
        res = heldout_results(rows, np.asarray([base7(burn_in(a, k)) for a in arrs], dtype=float))
        cells = [f"{r['test_auroc']:.3f}/{100 * r['heldout_human_fpr_worst_domain']:.1f}% "
                 f"(cv {r['train_auroc_crossfit']:.3f})" for r in res]
        cv_mean = float(np.mean([r["train_auroc_crossfit"] for r in res[:len(DOMAINS)]]))
        sweep[str(k)] = {"results": res, "mean_training_cv_auroc_lodo": cv_mean}
        print(f"{k:>3}  {'  '.join(cells)}  mean LODO training CV {cv_mean:.4f}", flush=True)
    table["burn_in_sweep"] = sweep
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
