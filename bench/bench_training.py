"""Training throughput (samples/s, all processes) of the shipped CPU configs on this machine.

Runs each config through ``training.fit`` for a few optimiser steps on ../shared/data and reads the
step timings from metrics.jsonl: samples/s counts decode + augmentation + forward + backward + AdamW
step, excluding the first step (warm-up) and the evaluation. Usage::

    .venv/bin/python bench/bench_training.py [--steps 6] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CASES = [
    # (label, config, overrides)
    ("timm:efficientnet_lite0 224px (preset weights)", "image_efficientnet_lite0_shared.yaml", ["train.batch_size=16"]),
    ("npr width 32, 224px", "image_npr_shared.yaml", ["train.batch_size=16"]),
    ("hf:preset:minilm-l6, 128 tokens", "text_minilm_l6_shared.yaml",
     ["train.batch_size=16", "data.max_length=128", "data.max_train=400", "data.max_dev=16"]),
    ("hf:preset:minilm-l6, 256 tokens", "text_minilm_l6_shared.yaml",
     ["train.batch_size=16", "data.max_length=256", "data.max_train=400", "data.max_dev=16"]),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    ap.add_argument("--json", default="")
    ap.add_argument("--cases", type=int, nargs="*", default=None, help="indices of CASES to run (default: all)")
    args = ap.parse_args(argv)
    shared = REPO / ".." / "shared" / "data"
    if not shared.is_dir():
        print(f"{shared} not found", file=sys.stderr)
        return 2
    from training import fit, load_config

    threads = args.threads or os.cpu_count() or 1
    os.chdir(REPO)  # the shipped configs name ../shared/data relative to the repository
    out = Path(tempfile.mkdtemp(prefix="bench-train-"))
    results = []
    for i, (label, cfg_name, ov) in enumerate(CASES):
        if args.cases and i not in args.cases:
            continue
        cfg = load_config(REPO / "configs" / cfg_name, [*ov, f"train.max_steps={args.steps}", "train.log_every=1",
                                                        "train.progress=false", f"train.threads={threads}",
                                                        "train.eval_every=0", "data.num_workers=0"])
        t0 = time.perf_counter()
        run = fit(cfg, out / f"case{i}")
        wall = time.perf_counter() - t0
        steps = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        steps = [x for x in steps if x["kind"] == "train"]
        bs = cfg.train.batch_size * cfg.train.grad_accum
        # elapsed_s restarts with each epoch: sum the step-to-step times inside epochs (first step excluded)
        gaps = [b["elapsed_s"] - a["elapsed_s"] for a, b in itertools.pairwise(steps) if b["epoch"] == a["epoch"]]
        sps = bs * len(gaps) / sum(gaps)
        load1 = os.getloadavg()[0]
        r = {"model": label, "config": cfg_name, "batch": bs, "steps": len(steps), "samples_per_s": round(sps, 2),
             "threads": threads, "loadavg_1min": round(load1, 1), "wall_s": round(wall, 1)}
        results.append(r)
        print(json.dumps(r), flush=True)
    print(f"\n{'model':<48} {'batch':>5} {'samples/s':>10} {'load avg':>9}")
    for r in results:
        print(f"{r['model']:<48} {r['batch']:>5} {r['samples_per_s']:>10.2f} {r['loadavg_1min']:>9.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
