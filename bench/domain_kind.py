"""Does a little training data of the held-out domain's kind help? An exploratory look, not a pre-registered round.

Leave-one-domain-out in ``generalization_pair`` trains on fastdetectgpt's other three domains only. evobench holds
biomedical QA too (PubMedQA questions answered by 2024 generators, none of the fastdetectgpt generators): this adds
its biomed-qa texts of the same chunks, less the pairs whose human text shares a source with an older-set text
(``evo_overlap``), to lodo-pubmed's training part, and scores the same held-out pubmed texts (davinci, gpt-3.5-turbo
and gpt-4 against their humans) with the fourteen statistics at ``l2`` = 1 and with gemma's mid-layer states beside
them at ``l2`` = 100 (round 9's features and penalty; the threshold is not read here, only AUROC)::

    .venv/bin/python bench/domain_kind.py --chunks 1:54
    .venv/bin/python bench/domain_kind.py --chunks 55:125
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import evo_overlap  # noqa: E402
import fixed_sample  # noqa: E402
import generalization_combos as gc  # noqa: E402
import generalization_splits as gs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", default="1:54", help="first:last chunk, 1-based and inclusive")
    ap.add_argument("--cache-dir", default=str(REPO / "bench" / "lmcache"))
    args = ap.parse_args(argv)
    part = fixed_sample.load_chunks(args.chunks, args.cache_dir, gc.ROUND_PASSES[10])
    if part is None:
        return 2
    (first, last), rows, arrs = part
    sets = gc.candidate_sets(arrs, 10)
    feats = {"statistics, l2 = 1": (sets[gc.reference_name(3)][0], 1.0),
             "statistics + gemma mid-layer, l2 = 100":
                 (sets["recommended + mid-layer, l2 = 100, domain-held-out threshold (round 9)"][0], 100.0)}
    y = np.asarray([r["label"] for r in rows])
    shared = evo_overlap.shared_groups(rows)
    add = np.asarray([r["set"] == "evobench" and r["domain"] == "biomed-qa" and r["group"] not in shared for r in rows])
    tr, te = gs.split_masks(rows)["lodo-pubmed"]
    print(f"chunks {first}..{last}: held-out pubmed {int((y[te] == 0).sum())} humans, {int((y[te] == 1).sum())} machine; "
          f"added evobench biomed-qa {int(add.sum())} texts ({int((add & (y == 0)).sum())} humans)")
    for name, (x, l2) in feats.items():
        base, _ = gs.fit_and_score(rows, x, tr, te, l2)
        more, _ = gs.fit_and_score(rows, x, tr | add, te, l2)
        print(f"  {name:40s} AUROC {gs._auroc(y[te], base):.3f} -> {gs._auroc(y[te], more):.3f} with them")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
