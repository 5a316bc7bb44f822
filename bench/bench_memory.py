"""Resident memory while `aigc score` streams 100,000 texts from disk: it must stay flat.

    .venv/bin/python bench/bench_memory.py [--n 100000]

Writes a JSONL of N short texts, scores it with a small text bundle (built here with onnx.helper, as the
tests do) in a child process, samples the child's RSS from /proc every 0.2 s, and prints RSS at 10 %,
50 % and 100 % of the run with the growth from the first to the last sample.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args(argv)
    from _bundles import WORDS, build_bundle

    tmp = Path(tempfile.mkdtemp(prefix="aigc-mem-"))
    bundle = build_bundle(tmp / "bundle", "text")
    src = tmp / "texts.jsonl"
    with open(src, "w") as f:
        for i in range(args.n):
            words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(20 + i % 60)]
            f.write(json.dumps({"text": " ".join(words)}) + "\n")
    out = tmp / "scores.jsonl"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "aigc", "score", str(bundle), str(src), "--out", str(out), "--no-progress"])
    samples: list[tuple[float, float]] = []
    while proc.poll() is None:
        r = rss_mb(proc.pid)
        if r is not None:
            samples.append((time.perf_counter() - t0, r))
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.returncode
    n_rows = sum(1 for _ in open(out))
    assert n_rows == args.n, n_rows
    # skip start-up (imports, session): compare from 10 % of the run to the end
    def at(frac: float) -> float:
        return samples[min(len(samples) - 1, int(frac * len(samples)))][1]

    print(f"scored {n_rows} texts in {wall:.1f} s ({n_rows / wall:.0f} texts/s); {len(samples)} RSS samples")
    print(f"RSS at 10%: {at(0.1):.1f} MB, 50%: {at(0.5):.1f} MB, end: {samples[-1][1]:.1f} MB, peak: {max(s for _, s in samples):.1f} MB")
    print(f"growth from 10% to end: {samples[-1][1] - at(0.1):+.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
