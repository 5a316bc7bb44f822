"""``aigc export RUN_DIR --out BUNDLE``: a trained run folder -> a calibrated, checked bundle.

Calibration data: the run's held-out ``dev`` split (``training.read_split``), or ``--calibration-data``
(JSONL with ``item`` (or ``text``/``path``) and ``label`` (0 human / 1 ai) columns, plus any group
column). Exit codes: 0 written; 1 refused (parity, a variant's accuracy, an unsupported target,
isotonic on too few items, an existing output); 2 bad arguments or an unreadable run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "read_calibration_jsonl", "run"]

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``aigc export``."""
    p.add_argument("run_dir", help="a training run folder (config.yaml, checkpoints/, splits/)")
    p.add_argument("--out", required=True, help="bundle folder to create (or a path ending in .zip)")
    p.add_argument("--variants", default="fp32", help="comma list of fp32,int8,fp16 (fp32 is always made)")
    p.add_argument(
        "--calibration",
        default=None,
        choices=["temperature", "platt", "isotonic", "none"],
        help="calibration method (default: temperature for logit models, platt for score models)",
    )
    p.add_argument("--calibration-data", default=None, help="JSONL of item/label[/group] rows (default: the run's dev split)")
    p.add_argument("--targets", default="0.01,0.05", help="target false-positive rates for named thresholds")
    p.add_argument("--group-column", default=None, help="also choose thresholds per value of this column (e.g. domain)")
    p.add_argument(
        "--worst-group",
        default=None,
        metavar="COLUMN",
        help="set each fpr@X threshold so that the humans of every value of this column (e.g. domain) stay at "
        "or under X, not only all humans pooled",
    )
    p.add_argument("--checkpoint", default="best", help="checkpoint name in RUN_DIR/checkpoints (default best)")
    p.add_argument("--name", default=None, help="bundle name shown by aigc info")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads for calibration scoring")
    p.add_argument("--limit", type=int, default=None, help="use only the first N calibration items")
    p.add_argument("--max-text-tokens", type=int, default=None,
                   help="text: score at most the first N tokens of each text (recorded in the bundle)")
    p.add_argument("--parity-atol", type=float, default=1e-4,
                   help="largest |P_bundle - P_torch| the fp32 parity check accepts (default 1e-4, at most 1e-2); "
                        "recorded with the measured difference in the bundle's metrics.parity. Graphs with two "
                        "LMs drift further in fp32 than one (docs/export.md)")
    p.add_argument("--int8-fp32-modules", default=None, metavar="MODULES",
                   help="comma list of torch module paths whose MatMul/Gemm stay fp32 in the int8 variant (e.g. "
                        "companion: a two-LM graph keeps its small LM exact; recorded in variants_eval)")
    p.add_argument("--external-data", default="auto", choices=("auto", "always", "never"),
                   help="ONNX weights in <graph>.data beside each graph (auto: from 256 MiB of weights; "
                        "graphs over 2 GB need it)")
    p.add_argument("--force", action="store_true", help="ship variants that lose accuracy; isotonic on few items")
    p.add_argument("--drop-refused", action="store_true",
                   help="write the bundle without a variant the AUROC gate refuses (its reason stays in variants_eval) "
                        "instead of failing the whole export")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _resolve_item(item: Any, bases: list[Path]) -> Any:
    if not isinstance(item, str) or "\n" in item or len(item) > 4096:
        return item
    p = Path(item)
    if p.is_absolute() or p.exists():
        return item
    for b in bases:
        if (b / p).exists():
            return str(b / p)
    return item


def read_calibration_jsonl(
    path: str | Path, group_column: str | None = None, modality: str | None = None
) -> tuple[list[Any], list[int], list[Any] | None]:
    """Rows of a calibration JSONL -> (items, labels, groups). ``item`` may be called ``text`` or ``path``;
    ``label`` is 0/1 or ``human``/``ai``. Image paths are resolved against the file's folder.
    Raises ValueError naming the line that is wrong."""
    path = Path(path)
    items: list[Any] = []
    labels: list[int] = []
    groups: list[Any] = []
    with path.open(encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{ln}: not JSON ({e})") from None
            rows = [row] if isinstance(row, dict) else []
            if not rows:
                raise ValueError(f"{path}:{ln}: expected a JSON object")
            key = next((k for k in ("item", "text", "path", "image") if k in row), None)
            if key is None:
                raise ValueError(f"{path}:{ln}: no item column (expected item, text or path)")
            lab = row.get("label")
            lab = {"human": 0, "real": 0, "ai": 1, "fake": 1}.get(lab, lab) if isinstance(lab, str) else lab
            if lab not in (0, 1) or isinstance(lab, bool):
                raise ValueError(f"{path}:{ln}: label {row.get('label')!r}, expected 0 (human) or 1 (ai)")
            items.append(row[key])
            labels.append(int(lab))
            if group_column:
                groups.append(row.get(group_column))
    if modality == "image":
        items = [_resolve_item(it, [path.parent]) for it in items]
    return items, labels, (groups if group_column else None)


def read_column(path: str | Path, column: str) -> list[Any]:
    """The ``column`` value of each non-blank row of a calibration JSONL (None where a row lacks it), in
    the order :func:`read_calibration_jsonl` reads the items."""
    out: list[Any] = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line).get(column))
    return out


def _rows_to_data(rows: list[dict[str, Any]], group_column: str | None, run_dir: Path, modality: str) -> tuple[list[Any], list[int], list[Any] | None]:
    items = [r["item"] for r in rows]
    if modality == "image":
        items = [_resolve_item(it, [run_dir, run_dir / "splits"]) for it in items]
    labels = [int(r["label"]) for r in rows]
    groups = [r.get(group_column) for r in rows] if group_column else None
    return items, labels, groups


def _load_run(run_dir: Path, checkpoint: str) -> Any:
    # training.run, not the package: an editable install made before training/__init__.py existed
    # resolves ``training`` as a namespace package, whose submodules still import
    try:
        from training.run import load_run
    except ImportError as e:
        raise RuntimeError(f"training.load_run is not available ({e}); is the training package installed?") from None
    return load_run(run_dir, checkpoint=checkpoint)


def _read_split(run_dir: Path, name: str) -> list[dict[str, Any]]:
    from training.run import read_split

    return list(read_split(run_dir, name))


def _run_dev_scores(run_dir: Path, rows: list[dict[str, Any]], checkpoint: str) -> list[float] | None:
    """The best checkpoint's dev scores from ``predictions/dev.jsonl`` (NaN where it has none), when that
    file matches the dev split row by row (same count, same labels); None otherwise. Export reuses them
    for calibration only after the bundle reproduces them on the parity sample (``build_bundle``)."""
    p = run_dir / "predictions" / "dev.jsonl"
    if checkpoint != "best" or not p.is_file():
        return None
    try:
        preds = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError):
        return None
    if len(preds) != len(rows) or any(int(q["label"]) != int(r["label"]) for q, r in zip(preds, rows, strict=True)):
        return None
    return [float("nan") if q.get("score") is None else float(q["score"]) for q in preds]


def _fingerprint(items: list[Any], labels: list[int]) -> str:
    h = hashlib.sha256()
    for it, lab in zip(items, labels, strict=True):
        h.update(str(it).encode("utf-8", "replace"))
        h.update(b"\x00" + str(lab).encode() + b"\x01")
    return h.hexdigest()[:16]


def _parity_atol(v: float) -> float:
    if not 0 < v <= 1e-2:
        raise SystemExit(f"aigc export: --parity-atol {v}: expected a probability difference in (0, 0.01]")
    return float(v)


def run(args: argparse.Namespace) -> int:
    """Run ``aigc export``; returns the exit code."""
    from aigc._calibration import CalibrationError
    from aigc._thresholds import ThresholdError

    from .bundle_build import BuildOptions, build_bundle
    from .onnx_export import ExportError
    from .parity import ParityError

    def fail(msg: str, code: int) -> int:
        print(f"aigc export: {msg}", file=sys.stderr)
        return code

    run_dir = Path(args.run_dir)
    try:
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        targets = [float(t) for t in args.targets.split(",") if t.strip()]
    except ValueError as e:
        return fail(f"bad --targets {args.targets!r} ({e}); expected e.g. 0.01,0.05", 2)
    bad = [v for v in variants if v not in ("fp32", "int8", "fp16")]
    if bad:
        return fail(f"unknown variant {bad[0]!r} in --variants; expected some of fp32,int8,fp16", 2)
    fp32_modules = tuple(m.strip() for m in (args.int8_fp32_modules or "").split(",") if m.strip())
    if fp32_modules and "int8" not in variants:
        return fail("--int8-fp32-modules needs int8 in --variants", 2)
    from .build_options import prepare_out

    out = Path(args.out)
    try:
        prepare_out(out, args.overwrite)
    except FileExistsError as e:
        return fail(str(e), 1)
    if not run_dir.is_dir():
        return fail(f"{run_dir}: no such run folder", 2)
    try:
        loaded = _load_run(run_dir, args.checkpoint)
    except Exception as e:
        return fail(f"cannot load the run {run_dir} ({type(e).__name__}: {e})", 2)
    try:
        run_scores = None
        if args.calibration_data:
            items, labels, groups = read_calibration_jsonl(args.calibration_data, args.group_column, loaded.modality)
            worst = read_column(args.calibration_data, args.worst_group) if args.worst_group else None
            source: dict[str, Any] = {"file": str(args.calibration_data)}
        else:
            rows = _read_split(run_dir, "dev")
            items, labels, groups = _rows_to_data(rows, args.group_column, run_dir, loaded.modality)
            worst = [r.get(args.worst_group) for r in rows] if args.worst_group else None
            source = {"run_split": "dev"}
            run_scores = _run_dev_scores(run_dir, rows, args.checkpoint)
    except (OSError, ValueError, KeyError) as e:
        return fail(f"cannot read the calibration data ({type(e).__name__}: {e})", 2)
    if args.limit:
        items, labels = items[: args.limit], labels[: args.limit]
        groups = groups[: args.limit] if groups is not None else None
        worst = worst[: args.limit] if worst is not None else None
        run_scores = run_scores[: args.limit] if run_scores is not None else None
    if not items:
        return fail("the calibration data is empty", 2)
    source.update({"n": len(items), "fingerprint": _fingerprint(items, labels)})
    if groups is not None:
        source["group_column"] = args.group_column
    if worst is not None:
        if all(v is None for v in worst):
            return fail(f"--worst-group {args.worst_group}: no calibration row has that column", 2)
        source["worst_group_column"] = args.worst_group
    try:  # the training items, hashed into the bundle so that aigc eval can warn about overlap
        training_items: list[Any] | None = _rows_to_data(_read_split(run_dir, "train"), None, run_dir, loaded.modality)[0]
    except (OSError, ValueError, KeyError):
        training_items = None
    opts = BuildOptions(
        training_items=training_items,
        variants=variants,
        calibration=args.calibration,
        targets=targets,
        group_column=args.group_column,
        worst_group_column=args.worst_group,
        force=args.force,
        drop_refused=args.drop_refused,
        overwrite=args.overwrite,
        name=args.name,
        threads=args.threads,
        calibration_source=source,
        external_data=args.external_data,
        max_text_tokens=args.max_text_tokens,
        atol=_parity_atol(args.parity_atol),
        int8_fp32_modules=fp32_modules,
    )
    try:
        path = build_bundle(loaded, out, items, labels, groups, opts, worst_groups=worst, run_scores=run_scores)
    except FileExistsError as e:
        return fail(str(e), 1)
    except (ParityError, ExportError, CalibrationError, ThresholdError) as e:
        return fail(str(e), 1)
    from aigc._bundle import open_bundle

    spec = open_bundle(path).spec
    cal = spec["calibration"]
    print(f"wrote {path}: {spec['modality']} bundle, variants {sorted(spec['model']['variants'])}")
    print(
        f"calibration {cal['method']} on {cal['n']} items: ECE {cal['before']['ece']:.4f} -> {cal['after']['ece']:.4f}, "
        f"NLL {cal['before']['nll']:.4f} -> {cal['after']['nll']:.4f}"
    )
    for name, t in spec["thresholds"].items():
        print(
            f"  {name}: P >= {t['value']:.4f}  achieved FPR {t['achieved_fpr']:.4f} "
            f"(95% upper {t['fpr_upper_95']:.4f}) on {t['n_human']} humans, TPR {t['tpr']:.3f}"
        )
        for g, v in (t.get("groups") or {}).items():
            print(f"    {args.worst_group}={g}: achieved FPR {v['achieved_fpr']:.4f} on {v['n_human']} humans ({v['rule']})")
    if cal.get("note"):
        print(f"note: {cal['note']}")
    for v, ev in spec.get("variants_eval", {}).items():
        if "auroc" in ev:
            rho = f", rank agreement with fp32 {ev['rank_agreement_fp32']:.3f}" if "rank_agreement_fp32" in ev else ""
            note = " (forced)" if ev.get("forced") else " (refused: left out of the bundle)" if ev.get("refused") else ""
            print(f"  {v}: AUROC {ev['auroc']:.4f} ({ev['auroc_delta']:+.4f}){rho}{note}")
        elif ev.get("refused"):
            print(f"  {v}: left out of the bundle: {ev['refused']}")
        else:
            print(f"  {v}: not evaluated (forced)")
    return 0
