"""Sample a running process's resident memory, anonymous and file-backed apart (Linux ``/proc``).

    python bench/rss_sampler.py --match "aigc export" --out rss.csv     # waits for the process, samples until it exits

``VmHWM`` (what ``/usr/bin/time -v`` reports as "Maximum resident set size") counts file-backed pages too:
weights that safetensors maps from disk and external data that ONNX writes and maps back. Those pages
are clean and the kernel can drop them under pressure, so they overstate what a job needs beside others;
``RssAnon`` is what cannot be dropped. Writes one CSV row a sample (seconds, anon GB, file GB, total GB)
and prints the peaks.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path


def _find(match: str, skip: int) -> int | None:
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == skip:
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if match in cmd and "rss_sampler" not in cmd:
            return int(p.name)
    return None


def _status(pid: int) -> dict[str, float] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k in ("RssAnon", "RssFile", "VmRSS"):
            out[k] = int(v.split()[0]) * 1024 / 1e9
    return out


def main(argv: list[str] | None = None) -> int:
    import os

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--match", required=True, help="a substring of the process's command line")
    ap.add_argument("--out", required=True, help="CSV of the samples")
    ap.add_argument("--every", type=float, default=1.0, help="seconds between samples")
    ap.add_argument("--wait", type=float, default=7200.0, help="seconds to wait for the process to start")
    a = ap.parse_args(argv)
    t0 = time.time()
    pid = None
    while pid is None and time.time() - t0 < a.wait:
        pid = _find(a.match, os.getpid())
        if pid is None:
            time.sleep(a.every)
    if pid is None:
        print(f"no process matched {a.match!r} within {a.wait:.0f} s")
        return 1
    peak = {"RssAnon": 0.0, "RssFile": 0.0, "VmRSS": 0.0}
    start = time.time()
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seconds", "anon_gb", "file_gb", "rss_gb"])
        while (s := _status(pid)) is not None and "RssAnon" in s:  # a zombie's status has no RssAnon
            w.writerow([round(time.time() - start, 1), round(s["RssAnon"], 3), round(s["RssFile"], 3), round(s["VmRSS"], 3)])
            f.flush()
            peak = {k: max(peak[k], s[k]) for k in peak}
            time.sleep(a.every)
    print(f"pid {pid}: peak anon {peak['RssAnon']:.2f} GB, file {peak['RssFile']:.2f} GB, "
          f"rss {peak['VmRSS']:.2f} GB over {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
