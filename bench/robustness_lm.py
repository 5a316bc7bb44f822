"""Does the recommended text detector (gemma-3-270m + Qwen2.5-Coder-1.5B features) hold up when its input is
edited as text is on the internet, or by someone who wants to evade it?

The head and its threshold come from the fixed sample's cached clean passes (``bench/lmcache``), fitted as
``generalization_pair``'s ``evo-cross`` split: on fastdetectgpt + glimpse English (older generators), with
the worst-domain 1% threshold of the training humans (cross-fitted). The test texts are the first ``--n``
evobench texts (2024 generators; every shared opening cut) in the sample's seeded order, a random subset.
Each is edited by ``aigc.perturb.perturb_text`` (seed 0, the text's index), then normalised as the runtime
does before tokenising (``aigc._text.normalize_text``: NFC, zero-width characters removed), and read again by
both LMs (first 128 Qwen tokens; resumable chunks cached in ``--cache-dir``, committed in
``bench/lmcache_robust``). ``clean`` is the same texts through the same passes, unedited.

Cells per edit (AUROC with a 95% group-bootstrap interval):

- ``both edited``: humans and machine texts edited alike (text that went through the same channel);
- ``machine edited``: edited machine texts against the clean humans (an evasion attempt);
- humans' FPR and machine TPR at the threshold; the machine texts' mean change of the head's logit.

Usage (LM passes: about 4 s a text on 2 threads for both LMs; chunks resume)::

    .venv/bin/python bench/robustness_lm.py --n 144 --perturbations homoglyph,typos --json out.json
    .venv/bin/python bench/robustness_lm.py --n 144 --tables-only     # only what is cached
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import generalization_pair as gp  # noqa: E402
import textsets  # noqa: E402
from fixed_sample import load_part  # noqa: E402
from generalization_lmfeatures import fit_logreg, predict  # noqa: E402
from generalization_tokens import base7  # noqa: E402

from aigc._text import normalize_text  # noqa: E402
from aigc.perturb import TEXT_PERTURBATIONS, perturb_text  # noqa: E402

MODELS = ["q15", "gemma"]


def edited(texts: list[str], name: str) -> list[str]:
    """The texts after edit ``name`` ("clean": none) and the runtime's normalisation: bundles exported before
    look-alike folding (``nfc_strip_zw``), or with it for a name ending in ``+fold`` (``nfc_strip_zw_fold_ws``)."""
    edit, _, fold = name.partition("+")
    mode = "nfc_strip_zw_fold_ws" if fold == "fold" else "nfc_strip_zw"
    if edit == "clean":
        return [normalize_text(t, mode) for t in texts]
    return [normalize_text(perturb_text(t, edit, seed=0, index=i), mode) for i, t in enumerate(texts)]


def features(arrs: dict[str, list[np.ndarray | None]]) -> np.ndarray:
    """gemma's seven statistics, then Qwen-1.5B's: the recommended detector's fourteen, in its order."""
    return np.asarray([base7(g) + base7(q) for g, q in zip(arrs["gemma"], arrs["q15"], strict=True)])


def head(rows: list[dict[str, Any]], arrs: dict[str, list[np.ndarray]]) -> tuple[Any, float]:
    """The evo-cross head and threshold from the cached clean passes (Qwen-1.5B = the pair's columns 3..5)."""
    x = np.hstack([np.asarray([base7(a) for a in arrs["gemma"]]),
                   np.asarray([base7(a[:, 3:6]) for a in arrs["pair"]])])
    tr, _ = gp.split_masks(rows)["evo-cross"]
    y = np.asarray([r["label"] for r in rows])
    _, thr = gp.fit_and_score(rows, x, tr, tr, 1.0)
    return fit_logreg(x[tr], y[tr], 1.0), thr


def cells(y: np.ndarray, groups: list[str], s_clean: np.ndarray, s_edit: np.ndarray, thr: float) -> dict[str, Any]:
    """Both edited, machine edited against clean humans, FPR/TPR at ``thr``, the machine texts' mean change of
    the head's logit (``s_*``: logits, as ``predict`` gives them)."""
    hum, mac = y == 0, y == 1
    mixed = np.where(mac, s_edit, s_clean)
    both = gp._cell(y, s_edit, thr, groups)
    return {"both_edited": both, "machine_edited": gp._cell(y, mixed, thr, groups),
            "human_fpr": both["fpr"], "human_fpr_upper95": both["fpr_upper95"], "machine_tpr": both["tpr"],
            "machine_logit_change": float(np.mean(s_edit[mac] - s_clean[mac])),  # the head's output is its logit
            "humans_flagged_clean_to_edited": [int((s_clean[hum] > thr).sum()), int((s_edit[hum] > thr).sum())]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=144, help="evobench texts (the first n in the sample's order)")
    ap.add_argument("--perturbations", default="homoglyph,typos,zero_width,newlines,lowercase,whitespace,"
                    "clean+fold,homoglyph+fold,whitespace+fold",
                    help=f"comma-separated, of: {', '.join(TEXT_PERTURBATIONS)}; NAME+fold: under "
                         "look-alike folding (preprocessing.normalize nfc_strip_zw_fold_ws)")
    ap.add_argument("--cache-dir", default=str(REPO / "bench" / "lmcache_robust"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget-min", type=float, default=float("inf"), help="start no new LM chunk after this")
    ap.add_argument("--tables-only", action="store_true", help="no LM pass: report what is cached")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    if not textsets.exists():
        print("the shared data folder beside the repository is missing (../shared/data/text)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    names = ["clean", *[p for p in args.perturbations.split(",") if p]]
    unknown = [p for p in names[1:] if p.removesuffix("+fold") not in (*TEXT_PERTURBATIONS, "clean")]
    if unknown:
        raise SystemExit(f"unknown perturbations {unknown}; known: {list(TEXT_PERTURBATIONS)}")
    rows, clean_arrs = load_part(1, 125, REPO / "bench" / "lmcache", ("pair", "gemma"))
    model, thr = head(rows, clean_arrs)
    test = [r for r in rows if r["set"] == "evobench"][: args.n]
    y = np.asarray([r["label"] for r in test])
    groups = [r["group"] for r in test]
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    budget = 0.0 if args.tables_only else args.budget_min * 60
    scores: dict[str, np.ndarray] = {}
    for name in names:
        arrs = gp.arrays(MODELS, edited([r["text"] for r in test], name), 128, 4, cache, budget_s=budget)
        if any(a is None or len(a) < 2 for m in MODELS for a in arrs[m]):
            print(f"{name}: not all {len(test)} texts are read (cached or short); skipped", flush=True)
            continue
        scores[name] = predict(model, features(arrs))  # type: ignore[arg-type]
    if "clean" not in scores:
        print("the clean pass is not complete: nothing to compare", file=sys.stderr)
        return 1
    table = {name: cells(y, groups, scores["clean"], s, thr) for name, s in scores.items()}
    print(f"{len(test)} evobench texts ({int((y == 0).sum())} human, {int((y == 1).sum())} machine); "
          f"threshold {thr:.4f} (evo-cross training part's worst-domain 1%)")
    print("| edit | AUROC, both edited | AUROC, machine edited vs clean humans | humans flagged | machine flagged "
          "| machine logit change |")
    print("|---|---|---|---|---|---|")
    for name, c in table.items():
        b, m = c["both_edited"], c["machine_edited"]
        print(f"| {name} | {b['auroc']:.3f} [{b['auroc_ci'][0]:.2f}, {b['auroc_ci'][1]:.2f}] | {m['auroc']:.3f} "
              f"[{m['auroc_ci'][0]:.2f}, {m['auroc_ci'][1]:.2f}] | {100 * c['human_fpr']:.1f}% "
              f"(<= {100 * c['human_fpr_upper95']:.1f}%) | {100 * c['machine_tpr']:.1f}% | {c['machine_logit_change']:+.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": len(test), "threshold": thr, "results": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
