"""An unseen domain with both helps at once, an exploratory look (not pre-registered; session 25).

Round 13 (``bench/self_generated.py``) lifted pubmed and squad left out by adding 40 of the domain's own human texts
continued by small local LMs; session 22 (``bench/newest_all_sets.py``) found that glimpse's and evobench's newer
generators in training do not carry to an unseen domain. Neither reached the issue's 0.90. This bench fits the same
detector (round 10's features and head, the domain-held-out 1% threshold) on each ``lodo-<d>`` training part with
neither, either or both added, on the same chunks, and prints each held-out AUROC [95% interval], the held-out
humans' FPR at the threshold and the TPR. Nothing is chosen. Every LM pass is committed::

    .venv/bin/python bench/domain_own_and_newer.py --chunks 1:125 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import evo_overlap  # noqa: E402
import fixed_sample  # noqa: E402
import generalization_combos as gc  # noqa: E402
import generalization_splits as gs  # noqa: E402
import self_generated as sg  # noqa: E402
from combo_heads import lodo_l2_head  # noqa: E402
from newest_all_sets import added_masks  # noqa: E402

PARTS = ("neither", "+ newer sets", "+ own continuations", "+ both")


def evaluate(rows: list[dict[str, Any]], x: np.ndarray, own: list[dict[str, Any]], x_own: np.ndarray
             ) -> dict[str, dict[str, Any]]:
    """``lodo-<d>`` -> training part -> the held-out cell with what was added (``newer``, ``own`` texts)."""
    masks, head = gs.split_masks(rows), lodo_l2_head(False)
    shared = evo_overlap.shared_groups(rows)
    y = np.asarray([r["label"] for r in rows])
    table: dict[str, dict[str, Any]] = {}
    for d in sg.DOMAINS13:
        col = f"lodo-{d}"
        tr, te = masks[col]
        parts = added_masks(rows, col, te, shared)
        newer = parts.get("+ glimpse + evobench", parts.get("+ evobench"))
        assert newer is not None, list(parts)
        keep = np.asarray([r["domain"] == d for r in own])  # the domain's own humans and their continuations
        grp = [r["group"] for r, m in zip(rows, te, strict=True) if m]
        table[col] = {}
        for name in PARTS:
            add_newer, add_own = name in ("+ newer sets", "+ both"), name in ("+ own continuations", "+ both")
            extra = [r for r, k in zip(own, keep, strict=True) if k] if add_own else None
            s, thr = sg.fit_with_added(rows, x, tr | (newer if add_newer else False), te, head, extra,
                                       x_own[keep] if add_own else None)
            cell = {**gs._cell(y[te], s, thr, grp), "newer": int(newer.sum()) if add_newer else 0,
                    "own": int(keep.sum()) if add_own else 0}
            table[col][name] = cell
            print(f"{col:12s} {name:22s} AUROC {cell['auroc']:.3f} [{cell['auroc_ci'][0]:.3f}, {cell['auroc_ci'][1]:.3f}]"
                  f"  FPR {100 * cell['fpr']:.1f}% of {cell['humans']}  TPR {100 * cell['tpr']:.0f}%"
                  f"  (+{cell['newer']} newer, +{cell['own']} own)", flush=True)
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", default="1:125", help="first:last chunk of the fixed sample, 1-based and inclusive")
    ap.add_argument("--cache-dir", default=str(REPO / "bench" / "lmcache"))
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    part = fixed_sample.load_chunks(args.chunks, args.cache_dir, gc.ROUND_PASSES[10])
    if part is None:
        return 2
    (first, last), rows, arrs = part
    own, x_own = sg.own_texts()
    table = evaluate(rows, sg.round10_features(arrs), own, x_own)
    if args.json:
        Path(args.json).write_text(json.dumps({"chunks": [first, last], "table": table}, indent=1) + "\n",
                                   encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
