"""The quick runtime benchmarks, one after the other (what ``make bench`` runs).

    .venv/bin/python bench/run.py [--full] [--only NAME ...] [--list]

Each entry runs its script in a child process with small sizes (``--full``: the script's own defaults,
the sizes BENCHMARKS.md quotes) and prints its output as it comes. The slow, data-bound studies
(``bench_training.py``, ``bench_zeroshot.py``, ``generalization_*.py``, ``e2e_shared.py``) are not part of
it: run them by hand, as BENCHMARKS.md shows.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (script, quick arguments, what it measures)
QUICK: dict[str, tuple[str, list[str], str]] = {
    "runtime": ("bench_runtime.py", ["--mp", "0.3", "2", "--n", "16", "--repeats", "2"],
                "images/s end to end (decode + preprocess + model) against the model alone, per decode policy"),
    "spark": ("bench_spark.py", ["--images", "64", "--texts", "1000", "--repeats", "1"],
              "rows/s through Spark local[2] against aigc score"),
    "bundle-vs-torch": ("bench_bundle_vs_torch.py", ["--batches", "1,8", "--repeats", "3"],
                        "each bundle variant against PyTorch eager on the same weights"),
    "vs-pipeline": ("bench_vs_pipeline.py", ["--n", "64", "--repeats", "2"],
                    "the text bundle against transformers.pipeline on the same model"),
    "memory": ("bench_memory.py", ["--n", "20000"], "resident memory while aigc score streams texts"),
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the scripts' own default sizes")
    ap.add_argument("--only", nargs="*", default=None, choices=sorted(QUICK), help="run only these")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)
    if args.list:
        for name, (script, extra, what) in QUICK.items():
            print(f"{name:16} {script} {' '.join(extra)}  ({what})")
        return 0
    failed = []
    for name in args.only or list(QUICK):
        script, extra, what = QUICK[name]
        cmd = [sys.executable, str(HERE / script), *([] if args.full else extra)]
        print(f"\n== {name}: {what}\n$ {' '.join(cmd)}", flush=True)
        t = time.perf_counter()
        rc = subprocess.call(cmd)
        print(f"== {name}: exit {rc} in {time.perf_counter() - t:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
