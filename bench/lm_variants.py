"""Texts/s of an LM bundle's variants (fp32, int8, ...) through the runtime, side by side in one process.

Scores the same texts (the shared fastdetectgpt/evobench texts with their openings cut, ``textsets``) with
each variant in turn, ``--repeats`` rounds interleaved so that a busy machine slows every variant alike, and
prints texts/s, tokens/s and the largest probability difference from the first variant::

    .venv/bin/python bench/lm_variants.py BUNDLE --variants fp32,int8 --texts 40 --threads 2

``--max-length N`` scores one window of up to N tokens per text instead of the bundle's own window (the
LM graphs take any length): a measure of cost only, since the head was calibrated on the bundle's windows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def _texts(args: argparse.Namespace, det: Any) -> list[str]:
    """The shared texts to time (openings cut): a mix of evobench and fastdetectgpt, or with
    ``--full-windows`` the first texts (in the same seeded order) whose tokens fill the window."""
    import textsets

    if not args.full_windows:
        rows = textsets.evobench_rows(2, args.texts // 2) + textsets.fdg_rows(3, 1)
        return [r["text"] for r in rows][: args.texts]
    need = args.max_length or det.text_spec.max_length
    # after the opening cut, no fastdetectgpt text and one evobench text reach 256 tokens: glimpse's do
    pool = [r["text"] for r in textsets.fdg_rows(60, 8) + textsets.evobench_rows(10, 120) + textsets.glimpse_rows(30, 50)]
    long = [t for t in pool if len(det.tokenizer.encode(t).ids) >= need]
    if len(long) < args.texts:
        raise SystemExit(f"only {len(long)} shared texts have {need} tokens; ask for fewer --texts")
    return long[: args.texts]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("--variants", default="fp32,int8")
    ap.add_argument("--texts", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=0, help="window length to time (default: the bundle's)")
    ap.add_argument("--full-windows", action="store_true",
                    help="time only texts that fill the window (the texts/s of a window of that length)")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)

    import aigc

    dets = {v: aigc.load(args.bundle, variant=v, threads=args.threads) for v in args.variants.split(",")}
    texts = _texts(args, next(iter(dets.values())))
    if args.max_length:
        import dataclasses

        for det in dets.values():
            det.text_spec = dataclasses.replace(det.text_spec, max_length=args.max_length, stride=args.max_length,
                                                max_windows=1)
    d0 = next(iter(dets.values()))
    n_tokens = sum(min(len(d0.tokenizer.encode(t).ids), d0.text_spec.max_length) for t in texts)
    secs = {v: 0.0 for v in dets}
    probs: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for v, det in dets.items():
            t0 = time.perf_counter()
            probs[v] = det.predict_proba(texts)[:, 1]
            secs[v] += time.perf_counter() - t0
    first = next(iter(dets))
    out = {v: {"texts_per_s": args.repeats * len(texts) / s,
               "tokens_per_s": args.repeats * n_tokens / s,
               "max_prob_diff_vs_" + first: float(np.max(np.abs(probs[v] - probs[first])))}
           for v, s in secs.items()}
    print(json.dumps({"texts": len(texts), "threads": args.threads, "max_length": d0.text_spec.max_length,
                      "tokens": n_tokens, "variants": out}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
