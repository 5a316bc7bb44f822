"""Generalization of a likelihood-feature detector (SmolLM2-135M statistics + logistic regression).

The method of ``zeroshot:features`` (``training/lmfeatures.py``: its ``token_statistics`` and
``fit_logistic``), measured across domains and generators in one pass: every text is scored once by
SmolLM2-135M-Instruct (offline wheel, first ``--max-length`` tokens, one window), described by the seven
token statistics, and a logistic regression on them is fitted on each training part and scored on the
held-out part (``aigc train`` on the config does the same on one split; this script shares one feature
pass across all splits). The splits:

- ``lodo-<domain>``: train on the other three domains, test on this one; AUROC, and the FPR on the
  held-out domain's human texts at the threshold that gives 1% FPR on the training domains' humans
  (cross-fitted: each training human is scored by a model fitted without its fold).
- ``long``: train on the five open generators, test on davinci / gpt-3.5-turbo / gpt-4.
- ``main``: 5-fold cross-validation over all texts, grouped by the human text.

The single statistics' AUROC on each held-out part is printed beside, as the zero-shot baselines.
Features are cached (``--cache``) so a second run costs nothing. Usage::

    .venv/bin/python bench/generalization_lmfeatures.py --per-domain-human 160 --per-cell 25 \\
        --max-length 128 --threads 2 --cache /tmp/lmfeat.jsonl --json /tmp/lmfeat.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generalization_text import DATA, DOMAINS, NEW_GENERATORS, drop_shared_prefix, worst_group_threshold  # noqa: E402

from training.lmfeatures import FEATURE_NAMES as FEATURES  # noqa: E402


def sample_rows(per_domain_human: int, per_cell: int, seed: int, drop_prefix: bool = False) -> list[dict[str, Any]]:
    """Distinct human texts per domain and machine texts per (domain, generator), seeded. ``drop_prefix``:
    every text without the words a machine text shares with its human text (``drop_shared_prefix``, both
    classes), and texts left with fewer than 10 words dropped."""
    rows = [json.loads(x) for x in DATA.open(encoding="utf-8")]
    human_of = {r["pair_id"]: r["text"] for r in rows if r["label"] == 0}
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for d in DOMAINS:
        humans = sorted({r["text"]: r for r in rows if r["domain"] == d and r["label"] == 0}.values(),
                        key=lambda r: r["pair_id"])
        for i in rng.permutation(len(humans))[:per_domain_human]:
            out.append(humans[i])
        for g in sorted({r["generator"] for r in rows if r["domain"] == d and r["label"] == 1}):
            cell = [r for r in rows if r["domain"] == d and r["generator"] == g]
            for i in rng.permutation(len(cell))[:per_cell]:
                out.append(cell[i])
    for r in out:
        r["group"] = hashlib.sha1(human_of[r["pair_id"]].encode()).hexdigest()[:16]
    if drop_prefix:
        out = [{**r, "text": drop_shared_prefix(r)} for r in out]
        out = [r for r in out if len(r["text"].split()) >= 10]
    return out


def lm_batches(tok: Any, texts: list[str], max_length: int, batch: int, desc: str, prefix: list[int] | None = None
               ) -> Iterator[tuple[np.ndarray, list[list[int]], Any, Any]]:
    """Length-sorted batches for an LM pass with a progress bar: ``(idx, enc, ids, mask)`` with each text's
    first ``max_length`` tokens (after ``prefix`` ids, if given) right-padded into ``ids`` / ``mask``."""
    import torch
    from tqdm import tqdm

    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    order = np.argsort([len(t) for t in texts])
    for s in tqdm(range(0, len(texts), batch), desc=desc, unit="batch"):
        idx = order[s: s + batch]
        enc = [(prefix or []) + tok(texts[i], add_special_tokens=True)["input_ids"][:max_length] for i in idx]
        t_max = max(len(e) for e in enc)
        ids = torch.full((len(enc), t_max), pad, dtype=torch.long)
        mask = torch.zeros((len(enc), t_max), dtype=torch.long)
        for j, e in enumerate(enc):
            ids[j, : len(e)] = torch.tensor(e)
            mask[j, : len(e)] = 1
        yield idx, enc, ids, mask


def token_features(lm: Any, tok: Any, texts: list[str], max_length: int, batch: int, skip_tokens: int = 0
                   ) -> np.ndarray:
    """(n, len(FEATURES)) statistics of each text's first ``max_length`` tokens under ``lm`` (the first
    ``skip_tokens`` are context only: the detector's burn-in)."""
    import torch

    from training.lmfeatures import token_statistics

    feats = np.full((len(texts), len(FEATURES)), np.nan)
    for idx, _, ids, mask in lm_batches(tok, texts, max_length, batch, "LM features"):
        with torch.inference_mode():
            logits = lm(input_ids=ids, attention_mask=mask).logits
            f = token_statistics(logits, ids, mask, skip_tokens).numpy()
        feats[idx] = f
    return feats


def cached_features(texts: list[str], max_length: int, threads: int, batch: int, cache_path: Path | None,
                    skip_tokens: int = 0) -> np.ndarray:
    """:func:`token_features` of ``texts`` under SmolLM2, read from / appended to the JSONL ``cache_path``
    (keyed by the feature version, ``max_length`` and the text), so a second run or script costs nothing."""
    cache: dict[str, list[float]] = {}
    if cache_path and cache_path.is_file():
        for line in cache_path.read_text().splitlines():
            c = json.loads(line)
            cache[c["key"]] = c["f"]
    # v3: the seven statistics of training.lmfeatures
    tag = f"v3|{max_length}" + (f"|skip{skip_tokens}" if skip_tokens else "")
    keys = [hashlib.sha1(f"{tag}|{t}".encode()).hexdigest() for t in texts]
    todo = sorted({k: i for i, k in enumerate(keys) if k not in cache}.values())
    if todo:
        import torch

        from training.weights import smollm2_path
        from training.zeroshot import load_causal_lm

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        lm, tok = load_causal_lm(str(smollm2_path()), dtype="float32", device="cpu")
        f = token_features(lm, tok, [texts[i] for i in todo], max_length, batch, skip_tokens)
        for j, i in enumerate(todo):
            cache[keys[i]] = f[j].tolist()
        if cache_path:
            with cache_path.open("a") as fh:
                for j, i in enumerate(todo):
                    fh.write(json.dumps({"key": keys[i], "f": f[j].tolist()}) + "\n")
    return np.asarray([cache[k] for k in keys], dtype=float)


def fit_logreg(x: np.ndarray, y: np.ndarray, l2: float = 1.0, sample_weight: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``training.lmfeatures.fit_logistic`` on standardised features, as the detector fits its head (its
    default penalty ``l2`` = 1.0 is ``model.l2``'s; ``sample_weight`` None weighs every text alike)."""
    from training.lmfeatures import fit_logistic

    return fit_logistic(x, y, l2, sample_weight=sample_weight)


def predict(model: tuple[np.ndarray, np.ndarray, np.ndarray, float], x: np.ndarray) -> np.ndarray:
    mean, std, w, b = model
    return ((x - mean) / std) @ w + b


def _folds(groups: list[str], k: int, seed: int) -> np.ndarray:
    uniq = sorted(set(groups))
    perm = np.random.default_rng(seed).permutation(len(uniq))
    fold_of = {uniq[i]: n % k for n, i in enumerate(perm)}
    return np.asarray([fold_of[g] for g in groups])


def crossfit(x: np.ndarray, y: np.ndarray, groups: list[str], k: int = 5, seed: int = 0, l2: float = 1.0,
             sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold scores, folds grouped by the human text (each fold's head fitted with the weights of the
    texts it is fitted on)."""
    f = _folds(groups, k, seed)
    s = np.zeros(len(y))
    for i in range(k):
        w = None if sample_weight is None else sample_weight[f != i]
        s[f == i] = predict(fit_logreg(x[f != i], y[f != i], l2, w), x[f == i])
    return s


def evaluate(rows: list[dict[str, Any]], feats: np.ndarray, name: str, test_mask: np.ndarray,
             train_mask: np.ndarray | None = None) -> dict[str, Any]:
    """Fit on ``train_mask`` (default: all but the test part), score ``test_mask``."""
    from aigc.metrics import auroc

    y = np.asarray([r["label"] for r in rows], dtype=float)
    tr = ~test_mask if train_mask is None else train_mask
    model = fit_logreg(feats[tr], y[tr])
    s_te = predict(model, feats[test_mask])
    s_tr = crossfit(feats[tr], y[tr], [r["group"] for r, m in zip(rows, tr, strict=True) if m])
    h = np.sort(s_tr[y[tr] == 0])
    thr = float(np.quantile(h, 0.99, method="higher"))
    yt = y[test_mask]
    dom_tr = [r["domain"] for r, m in zip(rows, tr, strict=True) if m]
    thr_w = worst_group_threshold(s_tr[y[tr] == 0], [d for d, lab in zip(dom_tr, y[tr], strict=True) if lab == 0])
    out: dict[str, Any] = {
        "name": name, "n_train": int(tr.sum()), "n_test": int(test_mask.sum()),
        "train_auroc_crossfit": auroc(y[tr], s_tr), "test_auroc": auroc(yt, s_te),
        "threshold": thr, "train_fpr": float(np.mean(s_tr[y[tr] == 0] > thr)),
        "heldout_human_fpr": float(np.mean(s_te[yt == 0] > thr)), "heldout_humans": int((yt == 0).sum()),
        "heldout_tpr": float(np.mean(s_te[yt == 1] > thr)),
        # aigc export --worst-group domain: the highest of the training domains' own 1% thresholds
        "threshold_worst_domain": thr_w, "heldout_human_fpr_worst_domain": float(np.mean(s_te[yt == 0] > thr_w)),
        "heldout_tpr_worst_domain": float(np.mean(s_te[yt == 1] > thr_w)),
    }
    names = FEATURES if feats.shape[1] == len(FEATURES) else tuple(f"f{i}" for i in range(feats.shape[1]))
    out["weights"] = {**dict(zip(names, np.round(model[2], 3).tolist(), strict=True)), "bias": round(model[3], 3)}
    if names == FEATURES:  # single statistics, signed so that higher means machine (a low entropy is machine-like)
        out["single"] = {f: auroc(yt, sign * feats[test_mask, FEATURES.index(f)])
                         for f, sign in (("lp_mean", 1.0), ("entropy", -1.0), ("fast_detectgpt", 1.0))}
    gens = sorted({r["generator"] for r, m in zip(rows, test_mask, strict=True) if m and r["label"] == 1})
    te_rows = [r for r, m in zip(rows, test_mask, strict=True) if m]
    if len(gens) > 1:
        out["by_generator"] = {}
        for g in gens:
            sel = np.asarray([r["label"] == 0 or r["generator"] == g for r in te_rows])
            out["by_generator"][g] = auroc(yt[sel], s_te[sel])
    return out


def newest_generators_split(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(test, train) masks with the newest generators held out: their machine texts, the human texts they
    continue and half of the other human texts (by a hash of the human text) are the test part; nothing that
    shares a human text with the test part is trained on."""
    new = np.asarray([r["generator"] in NEW_GENERATORS for r in rows])
    new_groups = {r["group"] for r, m in zip(rows, new, strict=True) if m}
    test = np.asarray([m or (r["label"] == 0 and (r["group"] in new_groups or int(r["group"], 16) % 2 == 1))
                       for r, m in zip(rows, new, strict=True)])
    test_groups = {r["group"] for r, m in zip(rows, test, strict=True) if m}
    train = np.asarray([not m and r["group"] not in test_groups for r, m in zip(rows, test, strict=True)])
    return test, train


def heldout_results(rows: list[dict[str, Any]], feats: np.ndarray) -> list[dict[str, Any]]:
    """:func:`evaluate` on each leave-one-domain-out split (``lodo-<domain>``), then the newest generators
    held out (``long``)."""
    out = [evaluate(rows, feats, f"lodo-{d}", np.asarray([r["domain"] == d for r in rows])) for d in DOMAINS]
    out.append(evaluate(rows, feats, "long", *newest_generators_split(rows)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-domain-human", type=int, default=160)
    ap.add_argument("--per-cell", type=int, default=25, help="machine texts per (domain, generator)")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--skip-tokens", type=int, default=0, help="burn-in: the first N tokens are context only")
    ap.add_argument("--drop-prefix", action="store_true",
                    help="score every text without the words a machine text shares with its human text (both classes)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="", help="JSONL of per-text features, reused when present")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    if not DATA.is_file():
        print(f"{DATA} not found (../shared/data beside the repository)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rows = sample_rows(args.per_domain_human, args.per_cell, args.seed, args.drop_prefix)
    feats = cached_features([r["text"] for r in rows], args.max_length, args.threads, args.batch,
                            Path(args.cache) if args.cache else None, args.skip_tokens)
    ok = np.isfinite(feats).all(1)
    rows = [r for r, o in zip(rows, ok, strict=True) if o]
    feats = feats[ok]
    feat_s = time.perf_counter() - t0
    from aigc.metrics import auroc

    y = np.asarray([r["label"] for r in rows], dtype=float)
    results = [{"name": "main (5-fold CV)", "n_train": len(rows), "n_test": len(rows),
                "test_auroc": auroc(y, crossfit(feats, y, [r["group"] for r in rows]))}]
    results += heldout_results(rows, feats)
    print(f"\n{len(rows)} texts{' without the shared prefix' if args.drop_prefix else ''}, first {args.max_length} "
          f"tokens, burn-in {args.skip_tokens}; features {feat_s:.0f} s")
    print(f"{'run':<18} {'train':>6} {'test':>5} {'train AUROC (cv)':>17} {'test AUROC':>11} "
          f"{'held-out human FPR @1%':>23} {'worst-domain thr: FPR / TPR':>28}   single statistics on the test part")
    for r in results:
        fpr = f"{100 * r['heldout_human_fpr']:.1f}% of {r['heldout_humans']}" if "heldout_human_fpr" in r else "-"
        worst = (f"{100 * r['heldout_human_fpr_worst_domain']:.1f}% / {100 * r['heldout_tpr_worst_domain']:.0f}%"
                 if "heldout_human_fpr_worst_domain" in r else "-")
        single = ", ".join(f"{k} {v:.3f}" for k, v in r.get("single", {}).items())
        print(f"{r['name']:<18} {r['n_train']:>6} {r['n_test']:>5} {r.get('train_auroc_crossfit', float('nan')):>17.4f} "
              f"{r['test_auroc']:>11.4f} {fpr:>23} {worst:>28}   {single}")
        for g, a in r.get("by_generator", {}).items():
            print(f"{'':<18}   {g:<16} AUROC {a:.4f}")
    print(f"wall time {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "args": vars(args), "n": len(rows)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
