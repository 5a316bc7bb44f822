"""Round 14: do small local LMs' continuations of human texts in every training domain stand in for the newer
generators a detector has not seen? A pre-registered check on the fixed sample (``generalization_combos``).

Registered in session 20, in the commit before any round 14 text was generated or any candidate fitted. Round 13
(``bench/self_generated.py``) put 40 of a held-out domain's own human texts and SmolLM2 / Qwen-0.5B continuations of
them into training and moved pubmed and squad left out (0.720 -> 0.827, 0.867 -> 0.888); it never looked at the
columns where the generators are new rather than the domain: the newest fastdetectgpt generators left out
(``long``: davinci, gpt-3.5-turbo, gpt-4; recommended detector 0.778 on the confirmation chunks), glimpse's newer
generators (``glimpse-new``: claude-3-opus, claude-3-sonnet, gemini-1.5-pro; 0.922) and evobench's 2024 generators
(``evo-cross``; 0.976). The training parts of those columns hold GPT-2-era continuations (and, for the last two,
fastdetectgpt's newest); the two small LMs are 2024 instruction-tuned models, as every held-out generator is. Whether
their continuations teach the head something the held-out generators share is the question.

- texts: round 13's 80 pubmed and squad prompts (``bench/selfgen/round13.jsonl``, unchanged) and 40 xsum and 40
  writing human texts of fastdetectgpt whose group is in no row of the fixed sample (``self_generated.prompt_humans``,
  seed 13), continued by the product's command itself (``training.continuations.continue_humans``: SmolLM2-135M-
  Instruct and Qwen2.5-Coder-0.5B-Instruct in turn, the first 30 words as the prompt, up to 160 new tokens,
  temperature 1.0, top-p 0.95, seed 14, a continuation under 10 words after the cut sampled again up to 2 more times,
  both texts cut at 35 words as every shared fastdetectgpt text is). The continuations go to
  ``bench/selfgen/round14.jsonl`` (no human text is stored: each is rebuilt from ../shared/data by its group), their
  LM passes to ``bench/selfgen/lmcache``. A text under 10 words after the cut is dropped (round 13's rule);
- reference: round 10's choice (the recommended detector), as in round 13;
- candidates, each with its generated texts (humans and continuations, each in its own domain) added to the training
  part of every column: ``+ own continuations, four domains`` (round 13's texts and round 14's) and ``+ own
  continuations, pubmed and squad`` (round 13's texts only: what the texts already made give);
- choice on chunks 1-54: the candidate with the higher mean AUROC over ``long``, ``glimpse-new`` and ``evo-cross``
  among those whose held-out human FPR is at most 2% on all three, else the lower highest FPR;
- rule on chunks 55-125: the chosen candidate's mean AUROC over the three columns at least 0.020 above the
  reference's; its held-out human FPR on each at most the higher of 2% and the reference's plus one point; and the
  six languages' human texts flagged at the ``glimpse-new`` threshold at most the higher of 2% and the reference's
  plus one point. A yes says: tell operators to continue human texts of every domain they train on, not only of a
  new domain. Reported beside the rule, not part of it: each column's TPR, ``long`` by generator, and the
  leave-one-domain-out columns with the same texts added (the held-out domain's own among them, as in round 13).

Usage (generation and LM passes need ``make weights-lm``; texts and passes are committed, so the fits take minutes)::

    .venv/bin/python bench/self_generated_all.py --generate      # 80 continuations (xsum, writing)
    .venv/bin/python bench/self_generated_all.py --lm-passes     # pair + gemma + gemma states over round 14's texts
    .venv/bin/python bench/self_generated_all.py --chunks 1:54 --json r14_dev.json
    .venv/bin/python bench/self_generated_all.py --chunks 55:125 --chosen "<the choice>" --json r14.json
    .venv/bin/python bench/self_generated_all.py --chunks 55:125 --per-domain   # exploratory, after the test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
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
import textsets  # noqa: E402
from combo_heads import lodo_l2_head  # noqa: E402

TEXTS = sg.OUT / "round14.jsonl"
DOMAINS14 = ("xsum", "writing")
LMS = ("smollm2", "qwen2.5-coder-0.5b")
SEED = 14
COLUMNS = ("long", "glimpse-new", "evo-cross")
LANGUAGES = "languages (humans)"
SECONDARY = tuple(f"lodo-{d}" for d in ("xsum", "squad", "writing", "pubmed"))
CANDIDATES = ("+ own continuations, four domains", "+ own continuations, pubmed and squad")


def generate(path: Path = TEXTS) -> list[dict[str, Any]]:
    """Continue each domain's prompt humans with the product's command (``continue_humans``) and append the
    continuations to ``path`` (a domain already there is skipped: resumable by domain). The human texts pass through a
    temporary file outside the repository and are not stored."""
    from training.continuations import continue_humans

    done = {r["domain"] for r in sg.read_texts(path)} if path.is_file() else set()
    path.parent.mkdir(parents=True, exist_ok=True)
    for d in DOMAINS14:
        if d in done:
            continue
        humans = sg.prompt_humans(d)
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / f"{d}.jsonl"
            src.write_text("".join(json.dumps({"text": r["text"], "domain": d, "pair_id": r["pair_id"]},
                                              ensure_ascii=False) + "\n" for r in humans), encoding="utf-8")
            pairs, skipped = continue_humans(src, list(LMS), seed=SEED)
        for s in skipped:
            print(f"{d}: {s}", file=sys.stderr)
        out = [{**r, "set": "selfgen", "family": "selfgen"} for r in pairs]
        for r in out:
            if r["label"] == 0:
                r.pop("text")  # rebuilt from the shared data on reading
        tmp_path = path.with_suffix(".tmp")
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        tmp_path.write_text(old + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), encoding="utf-8")
        os.replace(tmp_path, path)
        print(f"{d}: {len(out) // 2} pairs of {len(humans)} prompts", flush=True)
    return sg.read_texts(path)


def own_texts() -> tuple[list[dict[str, Any]], np.ndarray]:
    """Round 13's and round 14's generated rows that every LM read and that keep 10 words, with round 10's features."""
    rows13, x13 = sg.own_texts()
    rows14, x14 = sg.own_texts(TEXTS)
    return rows13 + rows14, np.vstack([x13, x14])


def _added(name: str, own: list[dict[str, Any]]) -> np.ndarray:
    """Which generated rows a detector's training parts get."""
    if name == CANDIDATES[0]:
        return np.ones(len(own), bool)
    if name == CANDIDATES[1]:
        return np.asarray([r["domain"] in sg.DOMAINS13 for r in own])
    return np.zeros(len(own), bool)


def evaluate(rows: list[dict[str, Any]], x: np.ndarray, own: list[dict[str, Any]], x_own: np.ndarray,
             names: tuple[str, ...], columns: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """name -> column -> cell for the reference and each candidate in ``names``; ``long`` and ``glimpse-new`` also
    by generator."""
    head, masks = lodo_l2_head(False), gs.split_masks(rows)
    y_all = np.asarray([r["label"] for r in rows])
    gen_all = np.asarray([r["generator"] for r in rows])
    out: dict[str, dict[str, Any]] = {gc.reference_name(14): {}, **{n: {} for n in names}}
    for name in out:
        keep = _added(name, own)
        added, x_added = [r for r, k in zip(own, keep, strict=True) if k], x_own[keep]
        for col in columns:
            tr, te = masks[col]
            grp = [r["group"] for r, m in zip(rows, te, strict=True) if m]
            s, thr = sg.fit_with_added(rows, x, tr, te, head, added, x_added)
            cell = {**gs._cell(y_all[te], s, thr, grp), "added": int(keep.sum())}
            if col in ("long", "glimpse-new"):
                cell["by_generator"] = gs.by_generator_cells(y_all[te], gen_all[te], s, thr, grp)
            out[name][col] = cell
    return out


def per_domain(rows: list[dict[str, Any]], x: np.ndarray, own: list[dict[str, Any]], x_own: np.ndarray) -> int:
    """Exploratory (after the test, not registered): one domain's generated texts at a time, to see where ``long``'s
    gain and the non-English humans' false positives come from."""
    for d in (*sg.DOMAINS13, *DOMAINS14):
        keep = np.asarray([r["domain"] == d for r in own])
        own_d = [r for r, k in zip(own, keep, strict=True) if k]
        c = evaluate(rows, x, own_d, x_own[keep], CANDIDATES[:1], (*COLUMNS, LANGUAGES))[CANDIDATES[0]]
        print(f"{d:8s} (+{int(keep.sum())}): " + "  ".join(f"{k} {c[k]['auroc']:.3f}" for k in COLUMNS)
              + f"  languages flagged {100 * c[LANGUAGES]['fpr']:.1f}% of {c[LANGUAGES]['humans']}", flush=True)
    return 0


def choose(table: dict[str, dict[str, Any]]) -> str:
    """The registered choice on the development chunks (module docstring)."""
    return sg.choose_by_mean(table, CANDIDATES, COLUMNS)


def rule(table: dict[str, dict[str, Any]], name: str) -> dict[str, bool]:
    """The registered test on the confirmation chunks (module docstring)."""
    return sg.mean_rule(table, name, gc.reference_name(14), COLUMNS, (*COLUMNS, LANGUAGES),
                        "continuing every domain's humans helps unseen generators")


def _print(table: dict[str, dict[str, Any]]) -> None:
    for name, cells in table.items():
        print(name)
        for c, v in cells.items():
            auc = "" if c == LANGUAGES else f"{v['auroc']:.3f} [{v['auroc_ci'][0]:.2f}, {v['auroc_ci'][1]:.2f}] "
            gens = "  " + " ".join(f"{g} {w['auroc']:.3f}" for g, w in v.get("by_generator", {}).items())
            print(f"  {c:20s} {auc}FPR {100 * v['fpr']:.1f}% of {v['humans']} TPR {100 * v['tpr']:.0f}% "
                  f"(+{v['added']}){gens if 'by_generator' in v else ''}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generate", action="store_true", help="generate round 14's continuations (resumable by domain)")
    ap.add_argument("--lm-passes", action="store_true", help="run the LM passes over round 14's texts")
    ap.add_argument("--chunks", default="1:54", help="first:last chunk of the fixed sample, 1-based and inclusive")
    ap.add_argument("--chosen", default="", help="the candidate chosen on the development chunks")
    ap.add_argument("--cache-dir", default=str(REPO / "bench" / "lmcache"))
    ap.add_argument("--no-secondary", action="store_true", help="skip the leave-one-domain-out columns")
    ap.add_argument("--json", default="")
    ap.add_argument("--per-domain", action="store_true", help="exploratory, after the test: each domain's generated "
                    "texts alone")
    args = ap.parse_args(argv)
    if not textsets.exists():
        print("the shared data folder beside the repository is missing (../shared/data/text)", file=sys.stderr)
        return 2
    if args.generate:
        print(f"{len(generate())} texts in {TEXTS}")
        return 0
    if args.lm_passes:
        sg.lm_passes(TEXTS)
        return 0
    if args.chosen and args.chosen not in CANDIDATES:
        raise SystemExit(f"--chosen {args.chosen!r} is not a candidate: {CANDIDATES}")
    first, last = (int(v) for v in args.chunks.split(":"))
    rows, arrs = fixed_sample.load_part(first, last, Path(args.cache_dir), gc.ROUND_PASSES[10])
    x = sg.round10_features(arrs)
    own, x_own = own_texts()
    if args.per_domain:
        return per_domain(rows, x, own, x_own)
    counts = {d: sum(r["domain"] == d for r in own) for d in sg.DOMAINS13 + DOMAINS14}
    print(f"generated texts: {len(own)} " + str(counts))
    names = (args.chosen,) if args.chosen else CANDIDATES
    columns = (*COLUMNS, LANGUAGES) + (() if args.no_secondary else SECONDARY)
    table = evaluate(rows, x, own, x_own, names, columns)
    _print(table)
    tested = args.chosen or choose(table)
    sg.report(table, tested, rule(table, tested), bool(args.chosen), (first, last), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
