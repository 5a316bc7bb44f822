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
Nothing is chosen. Usage (about a minute per training part and column; every LM pass is committed)::

    .venv/bin/python bench/newest_language_thresholds.py --chunks 1:125 --json out.json
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
from newest_all_sets import VENDORS, added_masks, language_humans  # noqa: E402

from aigc._thresholds import choose_group_thresholds, humans_needed  # noqa: E402

SEEDS = (0, 1, 2, 3, 4)
TARGET = 0.01
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


def language_cells(s_te: np.ndarray, y_te: np.ndarray, s_lang: np.ndarray, lang: np.ndarray, thr: float
                   ) -> dict[str, dict[str, Any]]:
    """For each way of thresholding: the English held-out humans' FPR and machine TPR, and the other halves'
    language humans flagged (overall and by language), as lists over ``SEEDS``. ``s_te``/``y_te``: the column's
    test part; ``s_lang``/``lang``: the language humans' scores and codes."""
    codes = sorted(set(lang.tolist()))
    out: dict[str, dict[str, Any]] = {}
    for way in ("worst domain", "raised", "per language"):
        out[way] = {"threshold": [], "fpr": [], "tpr": [], "languages_flagged": [],
                    "by_language": {c: [] for c in codes}}
    for seed in SEEDS:
        cal, test = halves(lang, seed)
        own = shipped_rule(s_lang, lang, cal, thr)
        ways = {"worst domain": {c: thr for c in codes}, "raised": {c: max(own.values()) for c in codes},
                "per language": own}
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
    for rec in out.values():
        rec["languages_scored"] = int(test.sum())
    return out


def evaluate(rows: list[dict[str, Any]], x: np.ndarray) -> dict[str, dict[str, Any]]:
    """Column -> training part -> :func:`language_cells`, with the held-out AUROC beside them."""
    masks, head = gs.split_masks(rows), lodo_l2_head(False)
    shared = evo_overlap.shared_groups(rows)
    y = np.asarray([r["label"] for r in rows])
    lang_mask = language_humans(rows)
    table: dict[str, dict[str, Any]] = {}
    for col in VENDORS:
        tr, te = masks[col]
        table[col] = {}
        for name, add in added_masks(rows, col, te, shared).items():
            s_all, thr = sg.fit_with_added(rows, x, tr | add, te | lang_mask, head)
            s_te, s_lang = s_all[te[te | lang_mask]], s_all[lang_mask[te | lang_mask]]
            codes = np.asarray([r["domain"][3:] for r, m in zip(rows, lang_mask, strict=True) if m])
            cell = language_cells(s_te, y[te], s_lang, codes, thr)
            cell["auroc"] = gs._auroc(y[te], s_te)
            table[col][name] = cell
            _print_part(col, name, cell)
    return table


def _span(v: list[float], scale: float = 1.0, fmt: str = ".1f") -> str:
    a = np.asarray(v, float) * scale
    return f"{a.mean():{fmt}} [{a.min():{fmt}}, {a.max():{fmt}}]"


def _print_part(col: str, name: str, cell: dict[str, Any]) -> None:
    print(f"{col} | {name} | AUROC {cell['auroc']:.3f}", flush=True)
    for way in ("worst domain", "raised", "per language"):
        r = cell[way]
        by = " ".join(f"{c} {_span(v, fmt='.1f')}" for c, v in r["by_language"].items())
        print(f"  {way:13s} English FPR {_span(r['fpr'], 100)}%  TPR {_span(r['tpr'], 100, '.0f')}%  "
              f"languages flagged {_span(r['languages_flagged'])} of {r['languages_scored']}  ({by})", flush=True)


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
    table = evaluate(rows, sg.round10_features(arrs))
    if args.json:
        Path(args.json).write_text(json.dumps({"chunks": [first, last], "seeds": list(SEEDS), "table": table},
                                              indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
