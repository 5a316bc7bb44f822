"""Round 15: does anchoring each domain's features on a few dozen of its own human texts carry the detector to a
domain it was not trained on? A pre-registered check on the fixed sample (``generalization_combos``).

Registered in session 21, in the commit before any candidate of this round was fitted. Round 13 moved pubmed and
squad left out by putting 40 of the domain's own human texts and small LMs' continuations of them into training
(0.720 -> 0.827, 0.867 -> 0.888 on the confirmation chunks); the humans alone did little (+0.013 / +0.014 on the
development chunks) *as training texts*. An operator who moves into a new domain always has its human texts (the
humans-only calibration asks for 150); generating continuations costs an LM and half an hour. Here the same 40 human
texts per domain are used another way, with no generation: each domain's features are expressed relative to its own
humans, so that what the head learns is "how far from this domain's human writing", not "how far from the training
domains' human writing". For one domain and a linear head, subtracting a vector shifts every score of that domain by
one constant, so the held-out domain's ranking changes only through the head the anchored training part yields;
the threshold, fitted on anchored training humans, meets held-out humans anchored the same way; dividing by the
anchors' spread also rescales each feature per domain, which can change the ranking too.

- anchors: for each fastdetectgpt domain, the human texts of rounds 13 and 14 (``bench/selfgen``: 40 per domain whose
  group is in no row of the fixed sample, cut as every shared text; those under 10 words dropped), with round 10's
  features (the LM passes are committed; this round runs no LM). No anchor is a text of any split;
- reference: round 10's choice (the recommended detector: gemma's and Qwen-1.5B's seven statistics and gemma's
  mid-layer states, ``l2`` by leave-one-domain-out, the domain-held-out threshold), as in rounds 13 and 14;
- candidates, the same detector on anchored features, every text of domain ``d`` (training and test alike) mapped
  before the head: ``centred on 40 domain humans`` (x - mean of d's anchors, per feature) and ``standardised on 40
  domain humans`` ((x - mean) / standard deviation of d's anchors, ddof=1, a zero deviation left at 1);
- columns: the four leave-one-domain-out columns (``lodo-xsum``, ``lodo-squad``, ``lodo-writing``, ``lodo-pubmed``)
  and ``long`` (the newest fastdetectgpt generators left out; all four domains anchored). ``glimpse-new`` and
  ``evo-cross`` are not columns: their test domains have no human texts outside the fixed sample to anchor on;
- choice on chunks 1-54: the candidate with the higher mean AUROC over the five columns among those whose held-out
  human FPR is at most 2% on all five, else the lower highest FPR;
- rule on chunks 55-125: the chosen candidate's mean AUROC over the five columns at least 0.020 above the
  reference's, and its held-out human FPR on each at most the higher of 2% and the reference's plus one point. A yes
  says: build domain anchors into the product (an anchor set of a domain's humans in the bundle, applied to that
  domain's texts). Reported beside the rule, not part of it: TPR, and on lodo-pubmed / lodo-squad the chosen
  candidate with round 13's continuations also in training (whether the two recipes add up).

Usage (seconds: every LM pass is committed)::

    .venv/bin/python bench/domain_anchors.py --chunks 1:54 --json r15_dev.json
    .venv/bin/python bench/domain_anchors.py --chunks 55:125 --chosen "<the choice>" --json r15.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import fixed_sample  # noqa: E402
import generalization_combos as gc  # noqa: E402
import generalization_splits as gs  # noqa: E402
import self_generated as sg  # noqa: E402
import self_generated_all as sga  # noqa: E402
from combo_heads import lodo_l2_head  # noqa: E402
from generalization_text import DOMAINS  # noqa: E402

CANDIDATES = ("centred on 40 domain humans", "standardised on 40 domain humans")
COLUMNS = (*(f"lodo-{d}" for d in DOMAINS), "long")
WITH_OWN = "chosen + round 13's continuations"


def anchors(own: list[dict[str, Any]], x_own: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """domain -> (mean, standard deviation) of its anchor humans' features (a zero deviation set to 1)."""
    out = {}
    for d in DOMAINS:
        h = x_own[np.asarray([r["domain"] == d and r["label"] == 0 for r in own])]
        if len(h) < 2:
            raise SystemExit(f"domain {d!r} has {len(h)} anchor humans in bench/selfgen")
        sd = h.std(axis=0, ddof=1)
        out[d] = (h.mean(axis=0), np.where(sd > 0, sd, 1.0))
    return out


def anchored(rows: list[dict[str, Any]], x: np.ndarray, anc: dict[str, tuple[np.ndarray, np.ndarray]],
             how: str) -> np.ndarray:
    """``x`` with each row mapped by its domain's anchors: ``how`` is a candidate name or the reference's. A row of a
    domain with no anchors (glimpse's and evobench's own domains) is left as it is: it is in none of ``COLUMNS``."""
    if how not in CANDIDATES:
        return x
    out = np.array(x, dtype=float)
    for i, r in enumerate(rows):
        if r["domain"] not in anc:
            continue
        mu, sd = anc[r["domain"]]
        out[i] = (x[i] - mu) / sd if how == CANDIDATES[1] else x[i] - mu
    return out


def evaluate(rows: list[dict[str, Any]], x: np.ndarray, own: list[dict[str, Any]], x_own: np.ndarray,
             names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """name -> column -> cell for the reference and each candidate; ``long`` also by generator."""
    head, masks, anc = lodo_l2_head(False), gs.split_masks(rows), anchors(own, x_own)
    y_all = np.asarray([r["label"] for r in rows])
    gen_all = np.asarray([r["generator"] for r in rows])
    out: dict[str, dict[str, Any]] = {gc.reference_name(15): {}, **{n: {} for n in names}}
    for name in out:
        xa = anchored(rows, x, anc, name)
        for col in COLUMNS:
            tr, te = masks[col]
            grp = [r["group"] for r, m in zip(rows, te, strict=True) if m]
            s, thr = sg.fit_with_added(rows, xa, tr, te, head)
            cell = gs._cell(y_all[te], s, thr, grp)
            if col == "long":
                cell["by_generator"] = gs.by_generator_cells(y_all[te], gen_all[te], s, thr, grp)
            out[name][col] = cell
    return out


def with_own(rows: list[dict[str, Any]], x: np.ndarray, own: list[dict[str, Any]], x_own: np.ndarray,
             name: str) -> dict[str, Any]:
    """Beside the rule: ``name`` with round 13's texts of the held-out domain (its humans and their continuations,
    anchored like every text of that domain) in the training part of lodo-pubmed and lodo-squad."""
    head, masks, anc = lodo_l2_head(False), gs.split_masks(rows), anchors(own, x_own)
    y_all = np.asarray([r["label"] for r in rows])
    xa, xo = anchored(rows, x, anc, name), anchored(own, x_own, anc, name)
    out = {}
    for d in sg.DOMAINS13:
        tr, te = masks[f"lodo-{d}"]
        keep = np.asarray([r["domain"] == d for r in own])
        s, thr = sg.fit_with_added(rows, xa, tr, te, head, [r for r, k in zip(own, keep, strict=True) if k], xo[keep])
        out[f"lodo-{d}"] = {**gs._cell(y_all[te], s, thr, [r["group"] for r, m in zip(rows, te, strict=True) if m]),
                            "added": int(keep.sum())}
    return out


def choose(table: dict[str, dict[str, Any]]) -> str:
    """The registered choice on the development chunks (module docstring)."""
    return sg.choose_by_mean(table, CANDIDATES, COLUMNS)


def rule(table: dict[str, dict[str, Any]], name: str) -> dict[str, bool]:
    """The registered test on the confirmation chunks (module docstring)."""
    return sg.mean_rule(table, name, gc.reference_name(15), COLUMNS, COLUMNS,
                        "anchoring on a domain's humans carries the detector to it")


def _print(table: dict[str, dict[str, Any]]) -> None:
    for name, cells in table.items():
        print(f"{name}  (mean {sg.mean_auroc(cells, COLUMNS):.3f})" if all(c in cells for c in COLUMNS) else name)
        for c, v in cells.items():
            gens = " ".join(f"{g} {w['auroc']:.3f}" for g, w in v.get("by_generator", {}).items())
            added = f" (+{v['added']})" if "added" in v else ""
            print(f"  {c:14s} {v['auroc']:.3f} [{v['auroc_ci'][0]:.2f}, {v['auroc_ci'][1]:.2f}] FPR "
                  f"{100 * v['fpr']:.1f}% of {v['humans']} TPR {100 * v['tpr']:.0f}% of {v['machine']}{added}  {gens}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", default="1:54", help="first:last chunk of the fixed sample, 1-based and inclusive")
    ap.add_argument("--chosen", default="", help="the candidate chosen on the development chunks")
    ap.add_argument("--cache-dir", default=str(REPO / "bench" / "lmcache"))
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    if args.chosen and args.chosen not in CANDIDATES:
        raise SystemExit(f"--chosen {args.chosen!r} is not a candidate: {CANDIDATES}")
    part = fixed_sample.load_chunks(args.chunks, args.cache_dir, gc.ROUND_PASSES[10])
    if part is None:
        return 2
    (first, last), rows, arrs = part
    x = sg.round10_features(arrs)
    own, x_own = sga.own_texts()
    print("anchor humans: " + str({d: sum(r["domain"] == d and r["label"] == 0 for r in own) for d in DOMAINS}))
    table = evaluate(rows, x, own, x_own, (args.chosen,) if args.chosen else CANDIDATES)
    tested = args.chosen or choose(table)
    table[WITH_OWN] = with_own(rows, x, own, x_own, tested)
    _print(table)
    verdict = rule({k: v for k, v in table.items() if k != WITH_OWN}, tested)
    sg.report(table, tested, verdict, bool(args.chosen), (first, last), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
