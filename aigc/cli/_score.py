"""``aigc score BUNDLE INPUTS... --out FILE.jsonl|.csv``: stream, score, write atomically, resume."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from .._inputs import InputItem, iter_inputs

FIELDS = ["item", "probability", "label", "threshold_name", "threshold", "out_of_support", "support_reasons", "warnings", "error"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="bundle folder or .zip")
    p.add_argument("inputs", nargs="+", help="files, folders (recursive), a .txt list of image paths, or a JSONL of texts")
    p.add_argument("--out", required=True, help="output file: .jsonl or .csv (written atomically)")
    p.add_argument("--threshold", default=None,
                   help="threshold name in the bundle (fpr@1%%, fpr@5%%, balanced) or a probability "
                        "(default: fpr@1%%, else the bundle's threshold with the lowest target FPR)")
    p.add_argument("--text-field", default="text", help="JSONL field that holds the text (default: text)")
    p.add_argument("--group-field", default=None, help="JSONL field naming the item's group, for per-group thresholds")
    p.add_argument("--batch-size", type=int, default=32, help="items (images) or windows (text) per model call")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: one per core)")
    p.add_argument("--provider", default=None, help="execution provider(s), e.g. cpu, cuda, or cuda,cpu")
    p.add_argument("--allow-fallback", action="store_true", help="fall back to CPU when the asked provider is absent")
    p.add_argument("--variant", default="fp32", help="model variant: fp32, int8 or fp16 (as the bundle offers)")
    p.add_argument("--shard", default=None, help="i/n: score only every n-th item starting at i (0-based), for job arrays")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--resume", action="store_true", help="keep the rows already in the output and score only the rest")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a partial last line from an interrupted run
    return rows


class _Writer:
    def __init__(self, path: Path, fmt: str) -> None:
        self.fh = open(path, "w", newline="", encoding="utf-8")
        self.fmt = fmt
        self.csv = csv.DictWriter(self.fh, fieldnames=FIELDS) if fmt == "csv" else None
        if self.csv:
            self.csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        if self.csv:
            r = dict(row)
            for k in ("support_reasons", "warnings"):
                if isinstance(r.get(k), list):
                    r[k] = "; ".join(r[k])
            self.csv.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in FIELDS})
        else:
            self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()


def _parse_shard(shard: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> (i, n) with 0 <= i < n; None for no sharding; ValueError otherwise."""
    if not shard:
        return None
    try:
        i, n = (int(x) for x in shard.split("/"))
    except ValueError:
        raise ValueError(f"--shard: found {shard!r}, expected i/n with 0 <= i < n") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard: found {shard!r}, expected i/n with 0 <= i < n")
    return i, n


def run(args: argparse.Namespace) -> int:
    import aigc

    out = Path(args.out)
    fmt = "csv" if out.suffix.lower() == ".csv" else "jsonl" if out.suffix.lower() in (".jsonl", ".json") else None
    if fmt is None:
        print(f"aigc score: --out {out}: expected a .jsonl or .csv file", file=sys.stderr)
        return 2
    try:
        shard = _parse_shard(args.shard)
    except ValueError as e:
        print(f"aigc score: {e}", file=sys.stderr)
        return 2
    partial = out.with_name(out.name + ".partial")
    if out.exists() and not (args.overwrite or args.resume):
        print(f"aigc score: {out} exists; pass --resume to continue it or --overwrite to replace it", file=sys.stderr)
        return 2
    try:
        det = aigc.load(args.bundle, providers=args.provider, threads=args.threads, variant=args.variant,
                        allow_fallback=args.allow_fallback, batch_size=args.batch_size)
    except (aigc.BundleError, aigc.ProviderError) as e:
        print(f"aigc score: bad bundle {args.bundle}: {e}", file=sys.stderr)
        return 2
    if args.threshold is None:
        args.threshold = det.default_threshold
        if args.threshold != "fpr@1%":
            print(f"aigc score: this bundle has no fpr@1% threshold; using {args.threshold}", file=sys.stderr)
    try:
        det.resolve_threshold(args.threshold)
    except (KeyError, ValueError) as e:
        print(f"aigc score: --threshold: {e}", file=sys.stderr)
        return 2

    kept: list[dict[str, Any]] = []
    if args.resume:
        seen: set[str] = set()
        for r in _read_rows(out) + _read_rows(partial):
            if r.get("item") not in seen and not r.get("error"):
                seen.add(str(r.get("item")))
                kept.append(r)
    done = {str(r["item"]) for r in kept}

    def items() -> Iterator[InputItem]:
        it = iter_inputs(args.inputs, det.modality, args.text_field, args.group_field)
        if shard is not None:
            it = (x for k, x in enumerate(it) if k % shard[1] == shard[0])
        return (x for x in it if x.id not in done)

    total = sum(1 for _ in items())
    from tqdm import tqdm

    bar = tqdm(total=total, unit="item", desc="scoring", disable=args.no_progress or None, file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = _Writer(partial, fmt)
    for r in kept:
        writer.write(r)
    n_ok = n_fail = n_oos = 0
    errors: Counter[str] = Counter()
    examples: dict[str, str] = {}
    stream = items()
    try:
        while True:
            chunk = list(islice(stream, 256))
            if not chunk:
                break
            good = [x for x in chunk if x.error is None]
            results = iter(det.score([x.payload for x in good], args.threshold, [x.group for x in good],
                                     progress=bar.update) if good else [])
            for x in chunk:
                if x.error is not None:
                    row: dict[str, Any] = {"item": x.id, **_error_row(x.error)}
                    bar.update(1)
                else:
                    row = {"item": x.id, **next(results).to_dict()}
                writer.write(row)
                if row["error"]:
                    n_fail += 1
                    key = _error_kind(row["error"])
                    errors[key] += 1
                    examples.setdefault(key, f"{x.id}: {row['error']}")
                else:
                    n_ok += 1
                    n_oos += bool(row["out_of_support"])
            writer.fh.flush()
    except KeyboardInterrupt:
        writer.close()
        bar.close()
        print(f"\ninterrupted: {n_ok} scored so far are kept in {partial}; rerun with --resume", file=sys.stderr)
        return 130
    writer.close()
    bar.close()
    os.replace(partial, out)
    print(f"scored {n_ok} item(s), {n_fail} failed, {len(kept)} kept from before; "
          f"{n_oos} out of the calibration support -> {out}", file=sys.stderr)
    if n_fail:
        print("failures:", file=sys.stderr)
        for k, c in errors.most_common(10):
            print(f"  {c:6d} x {k}   e.g. {examples[k]}", file=sys.stderr)
    if n_ok == 0 and not kept:
        print("aigc score: nothing could be scored", file=sys.stderr)
        return 1
    return 0


def _error_row(err: str) -> dict[str, Any]:
    return {"probability": None, "label": None, "threshold_name": None, "threshold": None,
            "out_of_support": False, "support_reasons": [], "warnings": [], "error": err, "meta": {}}


def _error_kind(err: str) -> str:
    """Group similar errors for the summary: drop the item-specific tail after the first '(' or ':'."""
    head = err.split(" (")[0]
    if head.startswith("line ") and ": " in head:
        head = head.split(": ", 1)[1]
    return head[:80]
