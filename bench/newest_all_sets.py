"""The newest generators left out, with the other sets in training: does the recommended detector, trained as the
product trains it (fastdetectgpt's older generators *and* glimpse's and evobench's newer ones), catch fastdetectgpt's
newest generators (davinci, gpt-3.5-turbo, gpt-4) that it never saw?

The ``long`` column of every round (``generalization_splits.split_masks``) trains on fastdetectgpt's older
generators only (gpt-2, gpt-neo, gpt-j, gpt-neox, opt: 2019-2022 models), while the recommended config trains on
every set ``bench/textsets.py`` writes, 2024 generators included. This is a measurement, not a round: nothing is
chosen. Same test part as ``long`` (the newest generators' texts, the humans they continue and half of the other
fastdetectgpt humans); same detector as rounds 11-15's reference (round 10's features, ``l2`` by leave-one-domain-out,
the domain-held-out worst-domain 1% threshold of its training part). Training parts:

- ``fastdetectgpt older generators`` (the ``long`` column as every round measured it);
- ``+ glimpse``: glimpse's English texts (claude-3-opus, claude-3-sonnet, gemini-1.5-pro and their humans);
- ``+ glimpse + evobench``: and evobench's texts (18 generators of 2024, five families);
- ``+ glimpse + evobench, no openai model``: without evobench's OpenAI family (gpt-4o*, chatgpt-4o), so that no
  model of the held-out generators' vendor is in training;
- the same for ``glimpse-new`` (claude-3-opus, claude-3-sonnet, gemini-1.5-pro held out): ``+ evobench`` and
  ``+ evobench, no claude or gemini model``;
- and each ``lodo-<domain>`` column with glimpse and evobench added, less the held-out domain and its evobench kin
  (xsum: news from XSum; writing: WritingPrompts; pubmed: PubMedQA's biomedical QA).

Nothing added shares a human text with the test part: glimpse rows of a test pair's group are left out, and so are
evobench pairs whose human text shares 30% of its 8-grams with an older-set text (``evo_overlap.shared_groups``).
glimpse's six languages' human texts stay out of every training part. Usage (seconds; every LM pass is committed)::

    .venv/bin/python bench/newest_all_sets.py --chunks 1:125 --json out.json
    .venv/bin/python bench/newest_all_sets.py --chunks 1:125 --dose --json dose.json   # how many added texts it takes
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
from generalization_text import DOMAINS  # noqa: E402

COLUMNS = ("long", "glimpse-new", *(f"lodo-{d}" for d in DOMAINS))
# evobench's domain drawn from the same source as a fastdetectgpt domain: left out with it
KIN = {"xsum": "news", "writing": "writing", "pubmed": "biomed-qa", "squad": None}
# the held-out generators' vendors: a further training part leaves their evobench models out too
VENDORS = {"long": ("openai",), "glimpse-new": ("claude", "gemini")}


def added_masks(rows: list[dict[str, Any]], column: str, te: np.ndarray, shared: set[str] | None = None
                ) -> dict[str, np.ndarray]:
    """Training part name -> the rows added to ``column``'s training part: none shares a human text with ``te``
    (glimpse rows of a test pair's group, evobench pairs that share 30% of their 8-grams with an older-set text),
    and for ``lodo-<d>`` none is of ``d`` or of its evobench kin (``KIN``). glimpse is not added to
    ``glimpse-new`` (it is that column's test part); ``VENDORS`` adds a part without those families' models.
    ``shared``: ``evo_overlap.shared_groups(rows)`` when the caller has it (computed here otherwise)."""
    test_groups = {r["group"] for r, m in zip(rows, te, strict=True) if m}
    out_dom = {column[5:], KIN[column[5:]]} if column.startswith("lodo-") else set()
    if shared is None:  # evobench groups reusing an older-set source: the same for every column of ``rows``
        shared = evo_overlap.shared_groups(rows)
    ok = np.asarray([r["group"] not in test_groups and r["domain"] not in out_dom for r in rows])
    glimpse = ok & np.asarray([r["set"] == "glimpse" and not r["domain"].startswith("m4-") for r in rows])
    evo = ok & np.asarray([r["set"] == "evobench" and r["group"] not in shared for r in rows])
    if column == "glimpse-new":
        glimpse[:] = False
    parts = {"fastdetectgpt only": np.zeros(len(rows), bool)}
    if glimpse.any():
        parts["+ glimpse"] = glimpse
    plus = "+ glimpse + evobench" if glimpse.any() else "+ evobench"
    parts[plus] = glimpse | evo
    if column in VENDORS:
        keep = np.asarray([r["family"] not in VENDORS[column] for r in rows])
        parts[f"{plus}, no {' or '.join(VENDORS[column])} model"] = glimpse | (evo & keep)
    return parts


def evaluate(rows: list[dict[str, Any]], x: np.ndarray) -> dict[str, dict[str, dict[str, Any]]]:
    """Column -> training part name -> the column's held-out cell (by generator too) and what was added."""
    masks, head = gs.split_masks(rows), lodo_l2_head(False)
    shared = evo_overlap.shared_groups(rows)
    y = np.asarray([r["label"] for r in rows])
    gen = np.asarray([r["generator"] for r in rows])
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for col in COLUMNS:
        tr, te = masks[col]
        grp = [r["group"] for r, m in zip(rows, te, strict=True) if m]
        table[col] = {}
        lang = language_humans(rows) if col in VENDORS else np.zeros(len(rows), bool)
        for name, add in added_masks(rows, col, te, shared).items():
            s_all, thr = sg.fit_with_added(rows, x, tr | add, te | lang, head)  # the fit reads only tr | add
            s = s_all[te[te | lang]]
            cell = gs._cell(y[te], s, thr, grp)
            if lang.any():  # glimpse's six languages' human texts, in no training part: flagged at the threshold
                flagged = s_all[lang[te | lang]] > thr
                cell["languages_flagged"] = [int(flagged.sum()), int(lang.sum())]
                ld = np.asarray([r["domain"][3:] for r, m in zip(rows, lang, strict=True) if m])
                cell["languages_flagged_by_language"] = {d: [int(flagged[ld == d].sum()), int((ld == d).sum())]
                                                         for d in sorted(set(ld))}
            cell["by_generator"] = gs.by_generator_cells(y[te], gen[te], s, thr, grp)
            cell["added"] = {"humans": int((add & (y == 0)).sum()), "machine": int((add & (y == 1)).sum()),
                             "generators": sorted(set(gen[add & (y == 1)].tolist()))}
            table[col][name] = cell
    return table


DOSES = (65, 130, 260, 520)


def language_humans(rows: list[dict[str, Any]]) -> np.ndarray:
    """Mask of glimpse's six languages' human texts (``m4-*`` domains)."""
    return np.asarray([r["domain"].startswith("m4-") for r in rows])


def dose(rows: list[dict[str, Any]], x: np.ndarray, seeds: tuple[int, ...] = (0, 1, 2)) -> dict[str, Any]:
    """``long`` with ``k`` of the ``+ glimpse + evobench`` texts drawn at random (rows, as ``data.max_train`` draws)
    for each ``k`` in ``DOSES`` and each seed: k -> the cells of the seeds. 65 is about what the recommended
    config's random draw of 600 training texts holds (glimpse and evobench are 17% of ``text_cut.jsonl``'s rows,
    most of glimpse's humans being its six languages)."""
    masks, head = gs.split_masks(rows), lodo_l2_head(False)
    tr, te = masks["long"]
    pool = np.flatnonzero(added_masks(rows, "long", te)["+ glimpse + evobench"])
    y = np.asarray([r["label"] for r in rows])
    gen = np.asarray([r["generator"] for r in rows])
    grp = [r["group"] for r, m in zip(rows, te, strict=True) if m]
    out: dict[str, Any] = {}
    for k in DOSES:
        cells = []
        for seed in seeds:
            add = np.zeros(len(rows), bool)
            add[np.random.default_rng(seed).choice(pool, size=min(k, pool.size), replace=False)] = True
            s, thr = sg.fit_with_added(rows, x, tr | add, te, head)
            cell = gs._cell(y[te], s, thr, grp)
            cell["by_generator"] = gs.by_generator_cells(y[te], gen[te], s, thr, grp)
            cells.append(cell)
        out[str(k)] = cells
        print(f"long with {k} of {pool.size} added texts: AUROC " + ", ".join(f"{c['auroc']:.3f}" for c in cells)
              + "  FPR " + ", ".join(f"{100 * c['fpr']:.1f}%" for c in cells)
              + "  TPR " + ", ".join(f"{100 * c['tpr']:.0f}%" for c in cells), flush=True)
    return out


def _print(table: dict[str, dict[str, dict[str, Any]]]) -> None:
    for col, parts in table.items():
        print(col)
        for name, v in parts.items():
            gens = "  ".join(f"{g} {w['auroc']:.3f}" for g, w in v["by_generator"].items())
            lang = (f"  languages {v['languages_flagged'][0]}/{v['languages_flagged'][1]} flagged"
                    if "languages_flagged" in v else "")
            print(f"  {name:40s} +{v['added']['humans']:3d} h +{v['added']['machine']:3d} m  {v['auroc']:.3f} "
                  f"[{v['auroc_ci'][0]:.2f}, {v['auroc_ci'][1]:.2f}] FPR {100 * v['fpr']:.1f}% of {v['humans']} "
                  f"TPR {100 * v['tpr']:.0f}% of {v['machine']}{lang}  |  {gens}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", default="1:125", help="first:last chunk of the fixed sample, 1-based and inclusive")
    ap.add_argument("--cache-dir", default=str(REPO / "bench" / "lmcache"))
    ap.add_argument("--json", default="")
    ap.add_argument("--dose", action="store_true", help="only `long`, with 65-520 of the added texts drawn at random")
    args = ap.parse_args(argv)
    part = fixed_sample.load_chunks(args.chunks, args.cache_dir, gc.ROUND_PASSES[10])
    if part is None:
        return 2
    (first, last), rows, arrs = part
    if args.dose:
        table: dict[str, Any] = {"dose": dose(rows, sg.round10_features(arrs))}
    else:
        table = evaluate(rows, sg.round10_features(arrs))
        _print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"chunks": [first, last], "table": table}, indent=1) + "\n",
                                   encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
