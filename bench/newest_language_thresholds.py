"""Thresholds that hold on every language served: what they cost when the newer sets are in training.

``bench/newest_all_sets.py`` found that putting glimpse's and evobench's newer generators into training lifts the
newest generators left out from 0.80 to 0.94 AUROC, but flags 30 of glimpse's 300 non-English human texts at the
worst-domain 1% threshold (11 with the older generators only; 155 without Claude/Gemini models in ``glimpse-new``).
A service that scores several languages would set its threshold on human texts of each of them. This bench
measures the two ways the product offers, on the same columns (``long``, ``glimpse-new``) and training parts:

- ``raised``: one threshold for all texts, the worst group's over the training domains and the languages
  (``aigc export --worst-group COLUMN`` with calibration data whose COLUMN holds the domain of an English text and
  the language of another): the worst-domain threshold raised to each language's own 1% threshold;
- ``per language``: the English texts keep the worst-domain threshold and each language's texts get their own
  (``aigc export --group-column language``, and ``groups=`` at scoring time); the own threshold is never set below
  the worst-domain one.

Each language's 50 human texts are halved at random (by text, 25 and 25): a language's threshold is set on one half
(25 humans are fewer than the 99 a 1% threshold needs, so it is placed just above the half's highest score, the rule
export uses) and the other half is scored. Five random halvings; every figure is their mean with [min, max].
Nothing is chosen.

What a language's own threshold costs in detection is read on glimpse's ChatGPT answers in the same six languages
(``--machine N``: N per language, seeded, none answering a prompt whose human answer is in the fixed sample; whole,
as the humans are: these pairs share a prompt, not an opening). They are in no training part; their LM passes are
committed beside the fixed sample's (``--lm-passes`` runs them, about 4 minutes per 24 texts here). Each way's TPR
on them is given per language, with the language's AUROC (its 50 humans against its machine texts).
Usage (about a minute per training part and column once every LM pass is cached)::

    .venv/bin/python bench/newest_language_thresholds.py --machine 30 --lm-passes   # once, about 30 minutes
    .venv/bin/python bench/newest_language_thresholds.py --chunks 1:125 --machine 30 --json out.json
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
import generalization_pair as gp  # noqa: E402
import generalization_splits as gs  # noqa: E402
import self_generated as sg  # noqa: E402
import textsets  # noqa: E402
from combo_heads import lodo_l2_head  # noqa: E402
from newest_all_sets import VENDORS, added_masks, language_humans  # noqa: E402

from aigc._thresholds import choose_group_thresholds, humans_needed  # noqa: E402

SEEDS = (0, 1, 2, 3, 4)
# "per language, at its top human": the threshold just above the half's highest human of the language (floored),
# against the shipped rule's halfway to the next larger calibration score, or to 1.0 when none is larger
WAYS = ("worst domain", "raised", "per language", "per language, at its top human")
TARGET = 0.01
PASSES = sg.PASSES  # what round 10's features read (the machine texts' passes)
assert humans_needed(0.01) > 25  # a language's half is too few humans for a conformal 1% threshold


def halves(lang: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two boolean masks over ``lang``'s items (each a language code, "" for none): for every language, a random
    half of its items and the rest."""
    rng = np.random.default_rng(seed)
    cal = np.zeros(lang.size, bool)
    for code in sorted(set(lang[lang != ""].tolist())):
        idx = np.flatnonzero(lang == code)
        cal[rng.permutation(idx)[: idx.size // 2]] = True
    return cal, (lang != "") & ~cal


def _logistic(v: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(np.asarray(v, dtype=np.float64) / 2.0))


def shipped_rule(s_lang: np.ndarray, lang: np.ndarray, cal: np.ndarray, thr: float) -> dict[str, float]:
    """Each language's ``fpr@1%`` as export (``--group-column``) and ``aigc calibrate --group-field`` set it:
    :func:`aigc._thresholds.choose_group_thresholds` on the ``cal`` half's humans with the worst-domain threshold
    ``thr`` as the floor (25 humans: just above all of them, never below ``thr``). The head's raw margins (about
    -10..15 here) go through a logistic first, as the bundle's calibration maps them into (0, 1): it keeps their
    order, so the same texts fall on each side; the thresholds come back on the raw scale."""
    p, codes = _logistic(s_lang[cal]), lang[cal]
    gt = choose_group_thresholds(p, np.zeros(p.size, np.int64), codes.tolist(), "language", (TARGET,),
                                 floors={"fpr@1%": float(_logistic(thr))})
    assert all(gt["groups"][c]["fpr@1%"]["rule"].startswith(("above all", "the global")) for c in gt["groups"])
    inv = {c: float(gt["groups"][c]["fpr@1%"]["value"]) for c in gt["groups"]}
    return {c: float(2.0 * np.arctanh(2.0 * v - 1.0)) for c, v in inv.items()}


def machine_rows(per_language: int, seed: int = 0) -> list[dict[str, Any]]:
    """``per_language`` of glimpse's ChatGPT answers in each of its six languages, drawn at random (``seed``) among
    those whose prompt's human answer is not in the fixed sample and that keep the humans' 40-character minimum;
    whole texts, in language order. Their ``domain`` is ``m4-<language>`` as the humans'."""
    sampled = {r["pair_id"] for r in textsets.glimpse_rows(30, 50, seed=0) if r["domain"].startswith("m4-")}
    by_lang: dict[str, list[dict[str, Any]]] = {}
    for r in textsets._read("glimpse.jsonl"):
        if r["domain"].startswith("m4-") and r["label"] == 1 and r["pair_id"] not in sampled and len(r["text"]) >= 40:
            by_lang.setdefault(r["domain"], []).append(r)
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for dom in sorted(by_lang):
        cell = by_lang[dom]
        if len(cell) < per_language:
            raise SystemExit(f"{dom}: only {len(cell)} ChatGPT answers outside the fixed sample, {per_language} asked")
        out += [{**cell[i], "set": "glimpse", "group": f"machine-{cell[i]['pair_id']}"}
                for i in sorted(rng.permutation(len(cell))[:per_language])]
    return out


def machine_features(per_language: int, cache: Path) -> tuple[list[dict[str, Any]], np.ndarray]:
    """:func:`machine_rows` every LM read and their round 10 features; a pass not cached is an error."""
    rows = machine_rows(per_language)
    rows, arrs = sg.cached_passes(rows, cache, f"the {len(rows)} machine texts")
    return rows, sg.round10_features(arrs)


def _language_aurocs(s_lang: np.ndarray, lang: np.ndarray, s_mach: np.ndarray, mlang: np.ndarray
                     ) -> dict[str, float]:
    return {c: gs._auroc(np.r_[np.zeros(int((lang == c).sum())), np.ones(int((mlang == c).sum()))].astype(int),
                         np.r_[s_lang[lang == c], s_mach[mlang == c]]) for c in sorted(set(mlang.tolist()))}


def language_cells(s_te: np.ndarray, y_te: np.ndarray, s_lang: np.ndarray, lang: np.ndarray, thr: float,
                   s_mach: np.ndarray | None = None, mlang: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """For each way of thresholding: the English held-out humans' FPR and machine TPR, and the other halves'
    language humans flagged (overall and by language), as lists over ``SEEDS``. ``s_te``/``y_te``: the column's
    test part; ``s_lang``/``lang``: the language humans' scores and codes; ``s_mach``/``mlang`` (optional): machine
    texts in those languages and their codes, whose share above their language's threshold is ``machine_tpr``."""
    codes = sorted(set(lang.tolist()))
    out: dict[str, dict[str, Any]] = {}
    for way in WAYS:
        out[way] = {"threshold": [], "fpr": [], "tpr": [], "languages_flagged": [],
                    "by_language": {c: [] for c in codes}, "machine_tpr": {c: [] for c in codes}}
    for seed in SEEDS:
        cal, test = halves(lang, seed)
        own = shipped_rule(s_lang, lang, cal, thr)
        top = {c: max(thr, float(np.nextafter(s_lang[cal & (lang == c)].max(), np.inf))) for c in codes}
        ways = {"worst domain": {c: thr for c in codes}, "raised": {c: max(own.values()) for c in codes},
                "per language": own, "per language, at its top human": top}
        for way, t in ways.items():
            english = max(t.values()) if way == "raised" else thr  # per language: English keeps the worst-domain one
            flagged = np.asarray([s_lang[i] > t[lang[i]] for i in range(lang.size)])
            rec = out[way]
            rec["threshold"].append(float(english))
            rec["fpr"].append(float(np.mean(s_te[y_te == 0] > english)))
            rec["tpr"].append(float(np.mean(s_te[y_te == 1] > english)))
            rec["languages_flagged"].append(int((flagged & test).sum()))
            for c in codes:
                rec["by_language"][c].append(int((flagged & test & (lang == c)).sum()))
                if s_mach is not None and mlang is not None and (mlang == c).any():
                    rec["machine_tpr"][c].append(float(np.mean(s_mach[mlang == c] > t[c])))
    for rec in out.values():
        rec["languages_scored"] = int(test.sum())
        rec["machine_tpr"] = {c: v for c, v in rec["machine_tpr"].items() if v}
    return out


def evaluate(rows: list[dict[str, Any]], x: np.ndarray, machine: list[dict[str, Any]] | None = None,
             x_machine: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """Column -> training part -> :func:`language_cells`, with the held-out AUROC beside them (and, given
    ``machine`` rows with their features ``x_machine``, each language's AUROC and machine TPR)."""
    masks, head = gs.split_masks(rows), lodo_l2_head(False)
    shared = evo_overlap.shared_groups(rows)
    y = np.asarray([r["label"] for r in rows])
    lang_mask = language_humans(rows)
    codes = np.asarray([r["domain"][3:] for r, m in zip(rows, lang_mask, strict=True) if m])
    machine = machine or []
    mlang = np.asarray([r["domain"][3:] for r in machine])
    x_all = x if x_machine is None or not machine else np.vstack([x, x_machine])
    pad = np.zeros(len(machine), bool)
    table: dict[str, dict[str, Any]] = {}
    for col in VENDORS:
        tr, te = masks[col]
        table[col] = {}
        for name, add in added_masks(rows, col, te, shared).items():
            scored = np.concatenate([te | lang_mask, ~pad])  # the machine texts are scored, never trained on
            s_all, thr = gs.fit_and_score(rows + machine, x_all, np.concatenate([tr | add, pad]), scored, 100.0,
                                          None, None, head, "domains")
            n = int((te | lang_mask).sum())
            s_te, s_lang, s_mach = s_all[:n][te[te | lang_mask]], s_all[:n][lang_mask[te | lang_mask]], s_all[n:]
            cell = language_cells(s_te, y[te], s_lang, codes, thr, s_mach if machine else None, mlang)
            cell["auroc"] = gs._auroc(y[te], s_te)
            if machine:
                cell["language_auroc"] = _language_aurocs(s_lang, codes, s_mach, mlang)
            table[col][name] = cell
            _print_part(col, name, cell)
    return table


def _span(v: list[float], scale: float = 1.0, fmt: str = ".1f") -> str:
    a = np.asarray(v, float) * scale
    return f"{a.mean():{fmt}} [{a.min():{fmt}}, {a.max():{fmt}}]"


def _print_part(col: str, name: str, cell: dict[str, Any]) -> None:
    print(f"{col} | {name} | AUROC {cell['auroc']:.3f}", flush=True)
    for way in WAYS:
        r = cell[way]
        by = " ".join(f"{c} {_span(v, fmt='.1f')}" for c, v in r["by_language"].items())
        print(f"  {way:13s} English FPR {_span(r['fpr'], 100)}%  TPR {_span(r['tpr'], 100, '.0f')}%  "
              f"languages flagged {_span(r['languages_flagged'])} of {r['languages_scored']}  ({by})", flush=True)
        if r["machine_tpr"]:
            tpr = " ".join(f"{c} {_span(v, 100, '.0f')}" for c, v in r["machine_tpr"].items())
            print(f"  {'':13s} machine texts' TPR by language, %: {tpr}", flush=True)
    if "language_auroc" in cell:
        print("  AUROC by language: " + " ".join(f"{c} {v:.3f}" for c, v in cell["language_auroc"].items()),
              flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", default="1:125", help="first:last chunk of the fixed sample, 1-based and inclusive")
    ap.add_argument("--cache-dir", default=str(REPO / "bench" / "lmcache"))
    ap.add_argument("--json", default="")
    ap.add_argument("--machine", type=int, default=0, help="ChatGPT answers per language to measure TPR on (0: none)")
    ap.add_argument("--lm-passes", action="store_true", help="run (resumably) the LM passes of the --machine texts "
                    "into --cache-dir, then stop; needs make weights-lm")
    args = ap.parse_args(argv)
    if args.lm_passes:
        if not textsets.exists() or args.machine <= 0:
            print("--lm-passes needs the shared data folder and --machine N > 0", file=sys.stderr)
            return 2
        gp.arrays(list(PASSES), [r["text"] for r in machine_rows(args.machine)], 128, 4, Path(args.cache_dir))
        return 0
    part = fixed_sample.load_chunks(args.chunks, args.cache_dir, gc.ROUND_PASSES[10])
    if part is None:
        return 2
    (first, last), rows, arrs = part
    machine, x_machine = machine_features(args.machine, Path(args.cache_dir)) if args.machine else ([], None)
    table = evaluate(rows, sg.round10_features(arrs), machine, x_machine)
    if args.json:
        Path(args.json).write_text(json.dumps({"chunks": [first, last], "seeds": list(SEEDS), "machine": len(machine),
                                               "table": table}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
