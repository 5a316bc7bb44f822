"""Generalization of the MiniLM-L6 text detector on ../shared/data/text/fastdetectgpt.jsonl (CPU-sized).

Runs ``configs/text_minilm_l6_shared.yaml`` (split by the human text: pair_id, merged across generators)
through ``training.fit`` several times, with subsets sized for a 2-core CPU:

- ``main``: all domains and generators; dev AUROC.
- ``lodo-<domain>``: leave one domain out (train + dev on the other three, test on the fourth); test AUROC,
  and the false-positive rate on the held-out domain's human texts at the threshold that gives 1% FPR on
  the training domains' dev humans.
- ``long``: leave the newest generators out (train on the five open models; test on davinci, gpt-3.5-turbo,
  gpt-4 and the human texts they continue); AUROC per held-out generator, and the same FPR check.

Nothing is tuned on the held-out parts: every run uses the config's hyper-parameters as shipped, with the
command-line sizes below. Usage::

    .venv/bin/python bench/generalization_text.py --train 1200 --dev 400 --test 600 --json /tmp/gen.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = REPO / ".." / "shared" / "data" / "text" / "fastdetectgpt.jsonl"
DOMAINS = ("xsum", "squad", "writing", "pubmed")
NEW_GENERATORS = ("davinci", "gpt-3.5-turbo", "gpt-4")


def drop_shared_prefix(row: dict[str, Any], words: int = 35) -> str:
    """The text without the part a machine text shares with its human text (README of ../shared/data: each
    machine text continues the first words of its human text): pubmed up to and including ``Answer:``
    (its question), the other domains their first ``words`` words (the shared prefix is at most 33 words);
    applied to both classes alike, formatting kept. Used by the LM benches' ``--drop-prefix`` to tell a burn-in's gain from
    the removal of text that both classes share."""
    from training.continuations import cut  # the one cut rule, the bench's and ``aigc continue-humans``'

    text = row["text"]
    if row["domain"] == "pubmed":
        return cut(text, words, "Answer:") if "Answer:" in text else text
    return cut(text, words)


def _preds(run: Path, split: str) -> list[dict[str, Any]]:
    p = run / "predictions" / f"{split}.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.is_file() else []


def _auroc(rows: list[dict[str, Any]]) -> float:
    from aigc.metrics import auroc

    rows = [r for r in rows if r["score"] is not None]
    y = np.asarray([r["label"] for r in rows])
    if len(set(y.tolist())) < 2:
        return float("nan")
    return auroc(y, np.asarray([r["score"] for r in rows]))


def _threshold_1pct(dev: list[dict[str, Any]]) -> float:
    """The score above which at most 1% of the dev human texts fall (flag: score > threshold)."""
    h = np.sort([r["score"] for r in dev if r["label"] == 0 and r["score"] is not None])
    return float(np.quantile(h, 0.99, method="higher"))


def worst_group_threshold(scores: np.ndarray, groups: list[str], min_humans: int = 20) -> float:
    """The highest per-group 1%-FPR threshold (99th percentile of each group's human scores) over groups
    with ``min_humans`` humans or more: ``aigc export --worst-group``'s rule on empirical quantiles.
    ``scores`` and ``groups`` are the human texts'."""
    scores = np.asarray(scores, dtype=float)
    g = np.asarray(groups, dtype=object)
    per = [float(np.quantile(scores[g == v], 0.99, method="higher")) for v in sorted(set(groups))
           if (g == v).sum() >= min_humans]
    return max([float(np.quantile(scores, 0.99, method="higher")), *per])


def _tpr(rows: list[dict[str, Any]], t: float) -> float:
    a = np.asarray([r["score"] for r in rows if r["label"] == 1 and r["score"] is not None])
    return float(np.mean(a > t)) if a.size else float("nan")


def _fpr(rows: list[dict[str, Any]], t: float) -> tuple[float, int]:
    h = np.asarray([r["score"] for r in rows if r["label"] == 0 and r["score"] is not None])
    return (float(np.mean(h > t)) if h.size else float("nan")), int(h.size)


def run_one(name: str, overrides: list[str], out_root: Path, config: Path) -> dict[str, Any]:
    from training import fit, load_config

    cfg = load_config(config, [*overrides, "train.progress=false"])
    cfg.name = name
    t0 = time.perf_counter()
    run = fit(cfg, out_root / name)
    return summarize(name, run, time.perf_counter() - t0)


def summarize(name: str, run: Path, dt: float) -> dict[str, Any]:
    """One run's figures from its saved predictions: dev AUROC; for a held-out test split its AUROC, and the
    held-out human FPR (and TPR) at the dev 1% threshold, pooled and worst-domain."""
    dev, test = _preds(run, "dev"), _preds(run, "test")
    info = json.loads((run / "run.json").read_text())
    res: dict[str, Any] = {"name": name, "seconds": round(dt, 1), "sizes": info["split_sizes"],
                           "dev_auroc": _auroc(dev)}
    if test:
        t = _threshold_1pct(dev)
        fpr, n_h = _fpr(test, t)
        dev_fpr, _ = _fpr(dev, t)
        res.update(test_auroc=_auroc(test), threshold=t, dev_fpr=dev_fpr, heldout_human_fpr=fpr, heldout_humans=n_h,
                   heldout_tpr=_tpr(test, t))
        hum = [r for r in dev if r["label"] == 0 and r["score"] is not None]
        tw = worst_group_threshold(np.asarray([r["score"] for r in hum]), [r["domain"] for r in hum])
        res.update(threshold_worst_domain=tw, heldout_human_fpr_worst_domain=_fpr(test, tw)[0],
                   heldout_tpr_worst_domain=_tpr(test, tw))
        gens = sorted({r["generator"] for r in test if r["label"] == 1})
        if len(gens) > 1:
            res["by_generator"] = {g: _auroc([r for r in test if r["label"] == 0 or r["generator"] == g]) for g in gens}
    return res


def _table(results: list[dict[str, Any]], cpu_wall: float, wall: float) -> None:
    print(f"\n{'run':<14} {'train':>6} {'dev':>5} {'test':>5} {'dev AUROC':>10} {'test AUROC':>11} "
          f"{'dev FPR':>8} {'held-out human FPR @1% thr':>27} {'worst-domain thr: FPR / TPR':>28} {'s':>6}")
    for r in results:
        s = r["sizes"]
        fpr = (f"{100 * r['heldout_human_fpr']:.1f}% (n={r['heldout_humans']})" if "heldout_human_fpr" in r else "-")
        worst = (f"{100 * r['heldout_human_fpr_worst_domain']:.1f}% / {100 * r['heldout_tpr_worst_domain']:.0f}%"
                 if "heldout_human_fpr_worst_domain" in r else "-")
        print(f"{r['name']:<14} {s['train']:>6} {s['dev']:>5} {s['test']:>5} {r['dev_auroc']:>10.4f} "
              f"{r.get('test_auroc', float('nan')):>11.4f} "
              f"{(100 * r['dev_fpr']) if 'dev_fpr' in r else float('nan'):>7.1f}% {fpr:>27} {worst:>28} "
              f"{r['seconds']:>6.0f}")
        for g, a in r.get("by_generator", {}).items():
            print(f"{'':<14}   {g:<16} AUROC {a:.4f}")
    if wall == wall:  # not NaN (--tabulate has no timing)
        print(f"\nwall time {wall:.0f} s (sum over processes {cpu_wall:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(REPO / "configs" / "text_minilm_l6_shared.yaml"))
    ap.add_argument("--train", type=int, default=1200, help="training texts per run")
    ap.add_argument("--dev", type=int, default=400, help="dev texts per run")
    ap.add_argument("--test", type=int, default=600, help="held-out texts per run")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--stride", type=int, default=0, help="window stride (0: the config's)")
    ap.add_argument("--max-windows", type=int, default=0, help="windows scored per text (0: the config's)")
    ap.add_argument("--runs", default="main,lodo,long",
                    help="comma list of main, lodo (all four), lodo-<domain>, long")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per run (0: all cores)")
    ap.add_argument("--merge", nargs="*", default=None, help="print one table from earlier --json files")
    ap.add_argument("--tabulate", default="", help="print the table from the run folders of an earlier --out "
                    "(their saved predictions; nothing is trained)")
    ap.add_argument("--out", default="", help="run folders (default: a temporary folder)")
    ap.add_argument("--json", default="", help="write the results here")
    args = ap.parse_args(argv)
    if not DATA.is_file():
        print(f"{DATA} not found (../shared/data beside the repository)", file=sys.stderr)
        return 2
    if args.merge is not None:
        parts = [json.loads(Path(f).read_text()) for f in args.merge]
        order = ["main", *[f"lodo-{d}" for d in DOMAINS], "long"]
        results = sorted([r for p in parts for r in p["results"]], key=lambda r: order.index(r["name"]))
        _table(results, sum(p["wall_s"] for p in parts), max(p["wall_s"] for p in parts))
        return 0
    if args.tabulate:
        order = ["main", *[f"lodo-{d}" for d in DOMAINS], "long"]
        runs = [Path(args.tabulate) / n for n in order if (Path(args.tabulate) / n / "run.json").is_file()]
        results = [summarize(r.name, r, float("nan")) for r in runs]
        _table(results, float("nan"), float("nan"))
        return 0
    args.threads = args.threads or os.cpu_count() or 1
    out_root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="gen-text-"))
    base = [f"data.train={DATA}", f"data.max_train={args.train}", f"data.max_dev={args.dev}",
            f"data.max_test={args.test}", f"data.max_length={args.max_length}"]
    if args.stride:
        base.append(f"data.stride={args.stride}")
    if args.max_windows:
        base.append(f"data.max_windows={args.max_windows}")
    plan: dict[str, list[str]] = {"main": base}
    for d in DOMAINS:
        plan[f"lodo-{d}"] = [*base, "data.holdout_column=domain", f"data.holdout_values=[{d}]"]
    plan["long"] = [*base, "data.holdout_column=generator", f"data.holdout_values=[{','.join(NEW_GENERATORS)}]"]
    names: list[str] = []
    for r in args.runs.split(","):
        names += [n for n in plan if n.startswith("lodo-")] if r == "lodo" else [r]
    unknown = [n for n in names if n not in plan]
    if unknown:
        print(f"unknown runs {unknown}; known: main, lodo, {', '.join(plan)}", file=sys.stderr)
        return 2
    todo = [(n, [*plan[n], f"train.threads={args.threads}"]) for n in names]
    t0 = time.perf_counter()
    results = []
    for name, ov in todo:
        r = run_one(name, ov, out_root, Path(args.config))
        results.append(r)
        print(json.dumps(r), flush=True)
    wall = time.perf_counter() - t0
    _table(results, wall, wall)
    print(f"run folders in {out_root}")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "wall_s": wall, "args": vars(args)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
