"""int8 weights in -64..64 (what export writes) against -127..127 (what it wrote before), on this CPU.

Builds, beside a bundle exported with ``--variants fp32,int8``, a copy whose int8 graph is quantized from the
same fp32 graph with full-range weights (every other file hard-linked, hashes rewritten, the int8 variant's
calibration left as it is: AUROC and ranks do not depend on it), then scores one labelled JSONL split with
fp32, int8 (-64..64) and int8 (-127..127) through the runtime and prints, per variant, AUROC with its 95%
group-bootstrap interval, Spearman rank agreement with fp32, and the largest raw-score difference from fp32::

    .venv/bin/python bench/int8_range.py BUNDLE SPLIT.jsonl --text-field item --group-field group --threads 2

On an x86 CPU with AVX2 and no VNNI, ONNX Runtime's U8S8 kernel saturates sums of two products at 32,767, so
-127..127 weights can score otherwise there than on a CPU with VNNI; -64..64 cannot overflow. On a VNNI CPU the
two differ only by the one bit of weight precision that -64..64 gives up: this script measures that cost.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def full_range_copy(bundle: Path, out: Path) -> Path:
    """``bundle`` with its int8 graph re-quantized from fp32 into -127..127, written to ``out`` (must not exist)."""
    from aigc._bundle import load_bundle_spec, model_files, write_bundle
    from export.int8_stream import quantize_dynamic_streaming

    spec = load_bundle_spec(bundle, verify_files=False)
    int8_files = set(model_files(spec, "int8"))
    if not int8_files:
        raise SystemExit(f"{bundle}: no int8 variant; export it with --variants fp32,int8")
    out.mkdir(parents=True)
    for p in bundle.iterdir():
        if p.is_file() and p.name != "bundle.json" and p.name not in int8_files:
            try:
                os.link(p, out / p.name)
            except OSError:
                shutil.copy2(p, out / p.name)
    graph = spec["model"]["variants"]["int8"]
    quantize_dynamic_streaming(bundle / spec["model"]["variants"]["fp32"], out / graph, reduce_range=False)
    spec = json.loads(json.dumps(spec))
    spec["model"].setdefault("external_data", {})["int8"] = [p.name for p in out.iterdir()
                                                             if p.name.startswith(graph) and p.name != graph]
    spec.setdefault("variants_eval", {}).setdefault("int8", {})["weight_range"] = 127
    write_bundle(out, spec, overwrite=True)
    return out


def _read_split(path: Path, text_field: str, label_field: str, group_field: str) -> tuple[list[str], np.ndarray, list[Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return ([r[text_field] for r in rows], np.array([int(r[label_field]) for r in rows]),
            [r.get(group_field, i) for i, r in enumerate(rows)])


def score_all(bundles: dict[str, tuple[Path, str]], texts: list[str], threads: int) -> dict[str, tuple[np.ndarray, float]]:
    """Raw scores and seconds of each named (bundle, variant), one loaded at a time (the pair's fp32 is 10 GB)."""
    import aigc

    out = {}
    for name, (path, variant) in bundles.items():
        det = aigc.load(str(path), variant=variant, threads=threads)
        t0 = time.perf_counter()
        raw, errors = det.raw_scores(texts)
        bad = [i for i, e in enumerate(errors) if e]
        if bad:
            raise SystemExit(f"{name}: items {bad[:5]} failed: {errors[bad[0]]}")
        out[name] = (np.asarray(raw, float), time.perf_counter() - t0)
        del det
        print(f"{name}: {len(texts)} texts in {out[name][1]:.0f} s", file=sys.stderr, flush=True)
    return out


def report(scores: dict[str, tuple[np.ndarray, float]], y: np.ndarray, groups: list[Any]) -> dict[str, Any]:
    from aigc._int8_cpu import cpu_flags, has_vnni
    from aigc.metrics import auroc, bootstrap, percentile_ci, w_auroc
    from export.bundle_build import rank_agreement

    flags = cpu_flags() or set()
    ref = scores["fp32"][0]
    rows: dict[str, Any] = {}
    for name, (raw, secs) in scores.items():
        reps = bootstrap(y, lambda W, raw=raw: w_auroc(y, raw, W), n_boot=1000, seed=0, groups=groups)
        rows[name] = {"auroc": auroc(y, raw), "auroc_ci95": percentile_ci(reps), "spearman_vs_fp32": rank_agreement(raw, ref),
                      "max_abs_raw_diff_vs_fp32": float(np.max(np.abs(raw - ref))), "seconds": secs}
    return {"cpu_vnni": has_vnni(flags), "cpu_avx2": "avx2" in flags,
            "n": len(y), "positives": int(y.sum()), "variants": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("split", type=Path)
    ap.add_argument("--text-field", default="text")
    ap.add_argument("--label-field", default="label")
    ap.add_argument("--group-field", default="group")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--copy", type=Path, default=None, help="where the -127..127 copy goes (default: BUNDLE-int8full)")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    copy = args.copy or args.bundle.with_name(args.bundle.name + "-int8full")
    if not copy.exists():
        full_range_copy(args.bundle, copy)
    texts, y, groups = _read_split(args.split, args.text_field, args.label_field, args.group_field)
    scores = score_all({"fp32": (args.bundle, "fp32"), "int8 -64..64": (args.bundle, "int8"),
                        "int8 -127..127": (copy, "int8")}, texts, args.threads)
    out = report(scores, y, groups)
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
