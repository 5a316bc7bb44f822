"""Data of the pipeline run "the newest generators left out, newer generators in training" (BENCHMARKS.md, session 22).

From ``runs/data/text_cut.jsonl`` (``bench/textsets.py``: every shared opening cut) it writes three files (and
``newest_test_small.jsonl``, 75 machine texts and 75 humans of the first, :func:`small_test`):

- ``newest_test.jsonl``: 50 machine texts of each of fastdetectgpt's newest generators (davinci, gpt-3.5-turbo,
  gpt-4) and the human texts of their pairs, topped up with other fastdetectgpt humans to 150 (300 texts);
- ``fdg_older.jsonl``: every fastdetectgpt text of the older generators (and their humans) whose pair shares no
  human text with the test (``aigc train``'s ``data.train``: dev is split off it, ``max_train`` draws from it);
- ``newer_extra.jsonl``: 300 texts of newer generators for ``data.extra_train`` (every one in training): 130 of
  glimpse's machine texts (claude-3-opus, claude-3-sonnet, gemini-1.5-pro) and 170 of evobench's (2024 generators,
  whole pairs), none of a test pair's group and none whose text shares 30% of its word 8-grams with a test text
  (``evo_overlap``'s rule: evobench and glimpse reuse the older sets' sources).

``--score-run RUN`` reads the finished run instead: its raw torch scores of dev and test (``predictions/``) and its
domain-held-out training scores (``heldout_scores.json``), calibrated and thresholded by export's own code as
``aigc export --worst-group domain --heldout-thresholds`` would on the dev split (platt on dev; each ``fpr@X`` the
higher of the dev split's worst domain and the held-out scores' worst domain), and prints the test part's AUROC by
generator and domain and its FPR / TPR at each threshold. It runs no ONNX export (the export's parity check keeps the
bundle's scores within 1e-3 of these).

Usage::

    .venv/bin/python bench/newest_pipeline_data.py --data runs/data/text_cut.jsonl --out runs/data
    aigc train configs/text_lmfeatures_gemma_qwen15_probe_cut.yaml --out runs/newest-out \
        --set data.train=runs/data/fdg_older.jsonl --set data.test=runs/data/newest_test.jsonl \
        --set "data.extra_train=[runs/data/newer_extra.jsonl]" --set data.max_train=300
    .venv/bin/python bench/newest_pipeline_data.py --score-run runs/newest-out --json out.json

Session 24 stopped that run once its dev predictions were written (each LM pass took 7 s a text) and scored the
smaller test part instead, with the same scoring function::

    .venv/bin/python bench/score_run_texts.py runs/newest-out runs/data/newest_test_small.jsonl \
        --out runs/newest-out/predictions/test.jsonl
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

from e2e_shared import NEW_GENERATORS, write_jsonl  # noqa: E402
from evo_overlap import SHARE, _grams  # noqa: E402

PER_GENERATOR, HUMANS, N_GLIMPSE, N_EVOBENCH = 50, 150, 130, 170


def test_part(fdg: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """``PER_GENERATOR`` texts of each newest generator, their pairs' humans, other humans up to ``HUMANS``."""
    by_gen = collections.defaultdict(list)
    for r in fdg:
        if r["generator"] in NEW_GENERATORS:
            by_gen[r["generator"]].append(r)
    machine = [x for g in sorted(NEW_GENERATORS) for x in rng.sample(by_gen[g], PER_GENERATOR)]
    groups = {r["group"] for r in machine}
    own = [r for r in fdg if r["label"] == 0 and r["group"] in groups]
    other = [r for r in fdg if r["label"] == 0 and r["group"] not in groups]
    return machine + own + rng.sample(other, max(0, HUMANS - len(own)))


def newer_part(rows: list[dict[str, Any]], test: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """glimpse machine texts and whole evobench pairs that share neither a group nor 30% of 8-grams with ``test``."""
    groups = {r["group"] for r in test}
    grams = set().union(*(_grams(r["text"]) for r in test))

    def shares(r: dict[str, Any]) -> bool:
        g = _grams(r["text"])
        return bool(g) and len(g & grams) / len(g) >= SHARE

    evo_shared = {r["group"] for r in rows if r["set"] == "evobench" and r["label"] == 0 and shares(r)}
    glimpse = [r for r in rows if r["set"] == "glimpse" and r["label"] == 1 and r["group"] not in groups
               and not shares(r)]
    evo = [r for r in rows if r["set"] == "evobench" and r["group"] not in evo_shared and r["group"] not in groups]
    picked = rng.sample(glimpse, N_GLIMPSE)
    evo_groups = sorted({r["group"] for r in evo})
    rng.shuffle(evo_groups)
    pairs: list[dict[str, Any]] = []
    for g in evo_groups:
        grp = [r for r in evo if r["group"] == g]
        if len(pairs) + len(grp) <= N_EVOBENCH:
            pairs += grp
    return picked + pairs


def small_test(test: list[dict[str, Any]], per_generator: int = 25, humans: int = 75, seed: int = 2
               ) -> list[dict[str, Any]]:
    """A smaller test part drawn from ``test`` (``test_part``'s): ``per_generator`` machine texts of each newest
    generator, their pairs' humans and other humans up to ``humans`` (session 24's run scored this part with
    ``bench/score_run_texts.py``, its LM passes running at 7 s a text)."""
    rng = random.Random(seed)
    by_gen: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in test:
        if r["label"] == 1:
            by_gen[r["generator"]].append(r)
    machine = [x for g in sorted(by_gen) for x in rng.sample(by_gen[g], per_generator)]
    groups = {r["group"] for r in machine}
    own = [r for r in test if r["label"] == 0 and r["group"] in groups][:humans]
    other = [r for r in test if r["label"] == 0 and r["group"] not in groups]
    return machine + own + rng.sample(other, max(0, humans - len(own)))


def _predictions(path: Path) -> tuple[np.ndarray, np.ndarray, list[str], list[str], list[str]]:
    """Raw scores, labels, domains, generators and groups of a run's predictions file (unscored texts left out)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["score"] is not None]
    return (np.asarray([r["score"] for r in rows]), np.asarray([r["label"] for r in rows]),
            [r["domain"] for r in rows], [r["generator"] for r in rows], [str(r["group"]) for r in rows])


def score_run(run: Path, targets: tuple[float, ...] = (0.01, 0.05), extra: Path | None = None) -> dict[str, Any]:
    """The test part's AUROC (overall, by generator, by domain) and, at each threshold export would set, its FPR
    and TPR (module docstring). ``extra``: more predictions of the run (``bench/score_run_texts.py``), whose
    language texts join the test part's (their machine texts give each language's TPR)."""
    import generalization_splits as gs

    from aigc import _calibration
    from export.build_options import BuildOptions
    from export.split_scores import Scored
    from export.threshold_fit import fit_thresholds

    s_dev, y_dev, d_dev, _, _ = _predictions(run / "predictions" / "dev.jsonl")
    s_te, y_te, d_te, g_te, grp_te = _predictions(run / "predictions" / "test.jsonl")
    doc = json.loads((run / "heldout_scores.json").read_text(encoding="utf-8"))
    held = (np.asarray([r["score"] for r in doc["rows"]]), np.asarray([r["label"] for r in doc["rows"]]),
            [r["domain"] for r in doc["rows"]])
    cal = _calibration.fit_calibration(s_dev, y_dev, "platt")
    p_dev, p_te = _calibration.apply_calibration(s_dev, cal), _calibration.apply_calibration(s_te, cal)
    opt = BuildOptions(targets=targets, worst_group_column="domain", heldout_scores=held, force=True)
    scored = Scored(s_dev, np.ones(len(s_dev), bool), [{}] * len(s_dev), 0)  # export's step 3 on the torch scores
    thr = fit_thresholds(p_dev, y_dev, scored, opt, d_dev, cal)
    lang = np.asarray([language_of(d) for d in d_te])
    p_lang, lang_codes, y_lang = p_te[lang != ""], lang[lang != ""], y_te[lang != ""]
    if extra is not None:
        s_x, y_x, d_x, _, _ = _predictions(extra)
        l_x = np.asarray([language_of(d) for d in d_x])
        p_x = _calibration.apply_calibration(s_x, cal)
        p_lang, lang_codes = np.r_[p_lang, p_x[l_x != ""]], np.r_[lang_codes, l_x[l_x != ""]]
        y_lang = np.r_[y_lang, y_x[l_x != ""]]
    eng = lang == ""
    s_te, y_te, p_te = s_te[eng], y_te[eng], p_te[eng]
    gen, dom, grp = np.asarray(g_te)[eng], np.asarray(d_te)[eng], np.asarray(grp_te)[eng]

    def auroc(b: np.ndarray) -> dict[str, Any]:
        c = gs._cell(y_te[b], s_te[b], float("inf"), list(grp[b]))
        return {"auroc": c["auroc"], "auroc_ci": c["auroc_ci"], "humans": c["humans"], "machine": c["machine"]}

    out: dict[str, Any] = {"test": auroc(np.ones(len(y_te), bool)), "by_generator": {}, "by_domain": {},
                           "thresholds": {}}
    for g in sorted(set(gen[y_te == 1])):
        out["by_generator"][g] = auroc((y_te == 0) | (gen == g))
    for d in sorted(set(dom.tolist())):
        out["by_domain"][d] = auroc(dom == d)
    for name, t in thr.items():
        if not name.startswith("fpr@"):
            continue
        flag = p_te >= t["value"]
        out["thresholds"][name] = {
            "value": t["value"], "set_by": t["heldout"]["set_by"], "forced": bool(t["heldout"].get("forced")),
            "dev_value": t["heldout"]["calibration_split_value"], "heldout_value": t["heldout"]["value"],
            "test_humans_flagged": int(flag[y_te == 0].sum()), "test_humans": int((y_te == 0).sum()),
            "test_tpr": float(flag[y_te == 1].mean()),
            "tpr_by_generator": {g: float(flag[gen == g].mean()) for g in sorted(set(gen[y_te == 1]))}}
    if lang_codes.size:
        h = y_lang == 0
        out["languages"] = language_part(p_lang[h], lang_codes[h], thr, p_lang[~h], lang_codes[~h])
    return out


def language_of(domain: str) -> str:
    """glimpse's language humans carry their language in the domain (``m4-chinese``); "" for any other text."""
    return domain[3:] if domain.startswith("m4-") else ""


def language_part(p: np.ndarray, codes: np.ndarray, thr: dict[str, Any], p_ai: np.ndarray | None = None,
                  ai_codes: np.ndarray | None = None) -> dict[str, Any]:
    """The language humans (calibrated scores ``p``, language ``codes``) against each global ``fpr@X``: flagged
    by language at the global threshold (all of them), and, over ``SEEDS`` random halvings of each language,
    the other half flagged at the per-language thresholds that ``aigc calibrate --group-field language`` would
    set on one half (:func:`aigc._thresholds.choose_group_thresholds` floored at the global thresholds). With
    the languages' machine texts (``p_ai``, ``ai_codes``): each language's TPR at both."""
    from newest_language_thresholds import SEEDS, halves

    from aigc._thresholds import choose_group_thresholds, fpr_floors

    fpr = {k: v for k, v in thr.items() if k.startswith("fpr@")}
    floors, targets = fpr_floors(fpr), tuple(float(t["target_fpr"]) for t in fpr.values())
    langs = sorted(set(codes.tolist()))
    out: dict[str, Any] = {"humans": {c: int((codes == c).sum()) for c in langs}, "global": {}, "global_tpr": {},
                           "per_language": {}}
    p_ai = np.zeros(0) if p_ai is None else p_ai
    ai_codes = np.zeros(0, dtype=str) if ai_codes is None else ai_codes
    out["machine"] = {c: int((ai_codes == c).sum()) for c in langs}
    for name, t in fpr.items():
        out["global"][name] = {c: int((p[codes == c] >= t["value"]).sum()) for c in langs}
        out["global_tpr"][name] = {c: float(np.mean(p_ai[ai_codes == c] >= t["value"])) for c in langs
                                   if (ai_codes == c).any()}
        out["per_language"][name] = {"flagged": [], "scored": [], "by_language": {c: [] for c in langs},
                                     "thresholds": {c: [] for c in langs}, "rules": {c: [] for c in langs},
                                     "tpr": {c: [] for c in langs if (ai_codes == c).any()}}
    for seed in SEEDS:
        cal, test = halves(codes, seed)
        gt = choose_group_thresholds(p[cal], np.zeros(int(cal.sum()), np.int64), codes[cal].tolist(), "language",
                                     targets, floors=floors)
        for name, t in fpr.items():
            rec = out["per_language"][name]
            own = {c: gt["groups"].get(c, {}).get(name, {"value": t["value"], "rule": "global"}) for c in langs}
            flag = np.asarray([p[i] >= own[codes[i]]["value"] for i in range(p.size)])
            rec["flagged"].append(int((flag & test).sum()))
            rec["scored"].append(int(test.sum()))
            for c in langs:
                rec["by_language"][c].append(int((flag & test & (codes == c)).sum()))
                rec["thresholds"][c].append(float(own[c]["value"]))
                rec["rules"][c].append(str(own[c]["rule"]))
                if c in rec["tpr"]:
                    rec["tpr"][c].append(float(np.mean(p_ai[ai_codes == c] >= own[c]["value"])))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="runs/data/text_cut.jsonl", help="bench/textsets.py's output")
    ap.add_argument("--out", default="runs/data", help="folder for the three files")
    ap.add_argument("--score-run", default="", help="a finished run of this data: print its test figures")
    ap.add_argument("--json", default="", help="with --score-run: write the figures here")
    ap.add_argument("--extra", default="", help="with --score-run: more predictions of the run (bench/"
                                                "score_run_texts.py), e.g. the languages' machine texts")
    args = ap.parse_args(argv)
    if args.score_run:
        res = score_run(Path(args.score_run), extra=Path(args.extra) if args.extra else None)
        print(json.dumps(res, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
        return 0
    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(0)
    fdg = [r for r in rows if r["set"] == "fdg"]
    test = test_part(fdg, rng)
    groups = {r["group"] for r in test}
    older = [r for r in fdg if r["group"] not in groups and r["generator"] not in NEW_GENERATORS]
    extra = newer_part(rows, test, rng)
    out = Path(args.out)
    for name, part in (("newest_test", test), ("fdg_older", older), ("newer_extra", extra),
                       ("newest_test_small", small_test(test))):
        write_jsonl(out / f"{name}.jsonl", part)
        print(f"{name}: {len(part)} texts " + str(dict(collections.Counter(
            (r["set"], "human" if r["label"] == 0 else "machine") for r in part))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
