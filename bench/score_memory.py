"""Peak resident memory and speed of scoring texts with an LM bundle: LM batches sized by
tokens x logits per token (the runtime's default) against the plain token budget (16,384 tokens).

    python bench/score_memory.py BUNDLE --texts 64 --words 200 --limit-gb 8

Each mode runs in its own process (``--mode``), so that each peak (``VmHWM``) is its own; a watchdog
stops a mode whose resident size passes ``--limit-gb`` and reports it as stopped. Prints one JSON
object: peak GB, texts/s, tokens per batch, and the largest score difference between the modes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORDS = ("the model writes a long text about the history of science and people read it slowly while "
         "several researchers argue that careful measurement matters more than any single clever idea").split()


def _hwm_gb(key: str = "VmHWM") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024 / 1e9
    return float("nan")


def _child(args: argparse.Namespace) -> int:
    from aigc import load

    def watch() -> None:
        while True:
            if _hwm_gb("VmRSS") > args.limit_gb:
                print(json.dumps({"mode": args.mode, "stopped_at_gb": args.limit_gb}), flush=True)
                os._exit(3)
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, args.words)) for _ in range(args.texts)]
    det = load(args.bundle, providers="cpu", threads=args.threads)
    if args.mode == "unbounded":
        det._batch_tokens = det.max_tokens  # the token budget alone, as before logits_per_token
    t0 = time.perf_counter()
    raw, _ = det.raw_scores(texts)
    dt = time.perf_counter() - t0
    np.save(args.scores, raw)
    print(json.dumps({"mode": args.mode, "peak_gb": round(_hwm_gb(), 2), "texts_per_s": round(len(texts) / dt, 2),
                      "batch_tokens": det._batch_tokens,
                      "logits_per_token": det.spec["model"].get("logits_per_token")}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("bundle")
    p.add_argument("--texts", type=int, default=64)
    p.add_argument("--words", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit-gb", type=float, default=8.0)
    p.add_argument("--modes", default="bounded,unbounded")
    p.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    p.add_argument("--scores", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.mode:
        return _child(args)
    out: dict[str, object] = {"bundle": args.bundle, "texts": args.texts, "words": args.words}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            f = Path(tmp) / f"{mode}.npy"
            cmd = [sys.executable, __file__, args.bundle, "--mode", mode, "--scores", str(f), "--texts", str(args.texts),
                   "--words", str(args.words), "--threads", str(args.threads), "--limit-gb", str(args.limit_gb)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            lines = [x for x in res.stdout.splitlines() if x.startswith("{")]
            out[mode] = json.loads(lines[-1]) if lines else {"error": res.stderr[-500:]}
        got = {m: np.load(Path(tmp) / f"{m}.npy") for m in args.modes.split(",") if (Path(tmp) / f"{m}.npy").is_file()}
        if len(got) == 2:
            a, b = got.values()
            out["max_abs_score_diff"] = float(np.max(np.abs(a - b)))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
