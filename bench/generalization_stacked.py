"""Stack the fine-tuned MiniLM-L6 score with SmolLM2 likelihood features, per held-out split.

Reads the run folders that ``bench/generalization_text.py --out DIR`` wrote (``lodo-<domain>``, ``long``)
and, for each, fits a logistic regression on the run's **dev** texts (training domains / generators only,
never trained on by the MiniLM) with the inputs

    [MiniLM raw score, the 13 SmolLM2 statistics of bench/generalization_lmfeatures.py]

then scores the run's held-out test texts. Reported beside each other on the same test texts: MiniLM
alone, the likelihood features alone (fitted on the same dev texts) and the stack; AUROC and the
false-positive rate on the held-out human texts at the threshold that gives 1% FPR on the dev humans
(cross-fitted over 5 folds grouped by the human text). Usage::

    .venv/bin/python bench/generalization_stacked.py --runs /tmp/g3/sweep --cache /tmp/lmfeat.jsonl \\
        --max-length 128 --threads 2 --json /tmp/stacked.json
"""

from __future__ import annotations

import argparse
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

import generalization_lmfeatures as lmf  # noqa: E402


def _load(run: Path, split: str) -> list[dict[str, Any]]:
    from training import read_split

    rows = read_split(run, split)
    preds = [json.loads(x) for x in (run / "predictions" / f"{split}.jsonl").read_text().splitlines() if x.strip()]
    for p in preds:
        rows[p["index"]]["score"] = p["score"]
    return [r for r in rows if r.get("score") is not None]


def _assess(name: str, x_dev: np.ndarray, y_dev: np.ndarray, g_dev: list[str], x_te: np.ndarray,
            y_te: np.ndarray) -> dict[str, Any]:
    from aigc.metrics import auroc

    model = lmf.fit_logreg(x_dev, y_dev)
    s_te = lmf.predict(model, x_te)
    s_dev = lmf.crossfit(x_dev, y_dev, g_dev)
    thr = float(np.quantile(np.sort(s_dev[y_dev == 0]), 0.99, method="higher"))
    return {"detector": name, "test_auroc": auroc(y_te, s_te), "dev_auroc_crossfit": auroc(y_dev, s_dev),
            "heldout_human_fpr": float(np.mean(s_te[y_te == 0] > thr)), "scores": s_te}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", required=True, help="the --out folder of bench/generalization_text.py")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default="")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    from aigc.metrics import auroc

    t0 = time.perf_counter()
    root = Path(args.runs)
    names = [n for n in [*(f"lodo-{d}" for d in lmf.DOMAINS), "long"] if (root / n / "predictions").is_dir()]
    if not names:
        print(f"{root}: no lodo-<domain> or long run folders with predictions", file=sys.stderr)
        return 2
    cache = Path(args.cache) if args.cache else None
    results: list[dict[str, Any]] = []
    for n in names:
        dev, test = _load(root / n, "dev"), _load(root / n, "test")
        f_dev = lmf.cached_features([r["item"] for r in dev], args.max_length, args.threads, 8, cache)
        f_te = lmf.cached_features([r["item"] for r in test], args.max_length, args.threads, 8, cache)
        ok_dev, ok_te = np.isfinite(f_dev).all(1), np.isfinite(f_te).all(1)
        dev = [r for r, o in zip(dev, ok_dev, strict=True) if o]
        test = [r for r, o in zip(test, ok_te, strict=True) if o]
        f_dev, f_te = f_dev[ok_dev], f_te[ok_te]
        y_dev = np.asarray([r["label"] for r in dev], float)
        y_te = np.asarray([r["label"] for r in test], float)
        g_dev = [r["group"] for r in dev]
        m_dev = np.asarray([[r["score"]] for r in dev])
        m_te = np.asarray([[r["score"]] for r in test])
        out = {"name": n, "n_dev": len(dev), "n_test": len(test), "detectors": []}
        for name, xd, xt in (("MiniLM-L6 alone", m_dev, m_te), ("SmolLM2 features", f_dev, f_te),
                             ("stack", np.c_[m_dev, f_dev], np.c_[m_te, f_te])):
            r = _assess(name, xd, y_dev, g_dev, xt, y_te)
            gens = sorted({t["generator"] for t in test if t["label"] == 1})
            if len(gens) > 1:
                r["by_generator"] = {}
                for g in gens:
                    sel = np.asarray([t["label"] == 0 or t["generator"] == g for t in test])
                    r["by_generator"][g] = auroc(y_te[sel], r["scores"][sel])
            del r["scores"]
            out["detectors"].append(r)
        results.append(out)
        print(json.dumps(out), flush=True)
    print(f"\n{'held out':<14} {'detector':<18} {'dev AUROC (cv)':>15} {'test AUROC':>11} {'held-out human FPR @1%':>24}")
    for o in results:
        for r in o["detectors"]:
            print(f"{o['name']:<14} {r['detector']:<18} {r['dev_auroc_crossfit']:>15.4f} {r['test_auroc']:>11.4f} "
                  f"{100 * r['heldout_human_fpr']:>22.1f}%")
    print(f"wall time {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "args": vars(args)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
