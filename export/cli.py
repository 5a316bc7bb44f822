"""``aigc export RUN_DIR --out BUNDLE``: a trained run folder -> a calibrated, checked bundle.

Calibration data: the run's held-out ``dev`` split (``training.read_split``), or ``--calibration-data``
(JSONL with one item column, ``--item-column`` or the one of ``item``/``text``/``path``/``image`` the first row
has, a ``label`` (0 human / 1 ai) column, plus any group column). Exit codes: 0 written; 1 refused (parity, a
variant's accuracy, an unsupported target, isotonic on too few items, calibration items that are training
items, a human without a worst group, an existing output, a bundle spec that validation refuses); 2 bad arguments
(a ``--name`` with control characters among them), bad calibration rows (named by ``file:line``) or an
unreadable run. Console lines show paths, column names and data values with their control characters escaped
(:func:`aigc._printable.printable`); the bundle keeps the exact values.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from aigc._printable import printable

from .calibration_data import CalibrationData, read_calibration_data, read_calibration_jsonl, resolve_item

__all__ = ["CalibrationData", "add_arguments", "read_calibration_data", "read_calibration_jsonl", "run"]

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
    p.add_argument("--item-column", default=None, metavar="COLUMN",
                   help="the --calibration-data column holding the text or image path (default: the one of item, "
                        "text, path, image that the first row has; needed when rows have several)")
    p.add_argument("--targets", default="0.01,0.05", help="target false-positive rates for named thresholds")
    p.add_argument("--group-column", default=None, help="also choose thresholds per value of this column (e.g. domain)")
    p.add_argument(
        "--worst-group",
        default=None,
        metavar="COLUMN",
        help="set each fpr@X threshold so that the humans of every value of this column (e.g. domain) stay at "
        "or under X, not only all humans pooled",
    )
    p.add_argument("--heldout-thresholds", action="store_true",
                   help="with --worst-group: also hold each fpr@X on every domain's humans of the run's training "
                        "split, each scored by a head fitted without its domain (RUN_DIR/heldout_scores.json, "
                        "written by zeroshot:features runs); each threshold is the higher of the two, and its "
                        "record says which (thresholds.fpr@X.heldout)")
    p.add_argument("--heldout-skip-domain", action="append", default=[], metavar="DOMAIN",
                   help="with --heldout-thresholds: leave this domain's rows out of the held-out scores (repeatable), "
                        "e.g. a domain the run also trained on through its own pairs (data.extra_train), whose "
                        "thresholds you set on its own humans (aigc calibrate --humans-only); recorded in "
                        "thresholds.fpr@X.heldout.left_out_domains")
    p.add_argument("--checkpoint", default="best", help="checkpoint name in RUN_DIR/checkpoints (default best)")
    p.add_argument("--name", default=None, help="bundle name shown by aigc info")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads for calibration scoring")
    p.add_argument("--limit", type=int, default=None, help="use only the first N calibration items (N >= 1)")
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
    p.add_argument("--force", action="store_true", help="ship variants that lose accuracy; isotonic on few items; "
                   "a --heldout-thresholds threshold that flags no ai calibration item (recorded as heldout.forced)")
    p.add_argument("--allow-calibration-overlap", action="store_true",
                   help="export even when 5%% or more of the calibration items (or of its humans) are training items "
                        "(the count is recorded in data_hashes.calibration_in_training)")
    p.add_argument("--drop-refused", action="store_true",
                   help="write the bundle without a variant the AUROC gate refuses (its reason stays in variants_eval) "
                        "instead of failing the whole export")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _rows_to_data(rows: list[dict[str, Any]], group_column: str | None, run_dir: Path, modality: str) -> tuple[list[Any], list[int], list[Any] | None]:
    items = [r["item"] for r in rows]
    if modality == "image":
        items = [resolve_item(it, [run_dir, run_dir / "splits"]) for it in items]
    labels = [int(r["label"]) for r in rows]
    groups = [r.get(group_column) for r in rows] if group_column else None
    return items, labels, groups


def _split_data(rows: list[dict[str, Any]], run_dir: Path, modality: str) -> CalibrationData:
    """The run's dev split as calibration data (items in ``item``)."""
    items, labels, _ = _rows_to_data(rows, None, run_dir, modality)
    where = [f"{run_dir / 'splits' / 'dev.jsonl'} row {i}" for i in range(1, len(rows) + 1)]
    return CalibrationData(items, labels, rows, where, "item")


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


def _read_heldout(run_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw scores, labels and domains of ``RUN_DIR/heldout_scores.json`` (``training/heldout_scores.py``);
    ValueError naming the file and what is wrong with it."""
    from training.heldout_scores import HELDOUT_FILE

    path = run_dir / HELDOUT_FILE
    if not path.is_file():
        raise ValueError(f"--heldout-thresholds: the run has no {path} (zeroshot:features runs trained with 2 or "
                         "more domains write it; retrain the run, or leave out --heldout-thresholds)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"--heldout-thresholds: {path} is not readable JSON ({e})") from None
    rows = doc.get("rows") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("by") != "domain" or not isinstance(rows, list) or not rows:
        raise ValueError(f"--heldout-thresholds: {path}: expected an object with \"by\": \"domain\" and a "
                         "non-empty \"rows\" list")
    scores, labels, domains = [], [], []
    for i, r in enumerate(rows):
        ok = (isinstance(r, dict) and isinstance(r.get("domain"), str) and r.get("label") in (0, 1)
              and not isinstance(r.get("label"), bool) and isinstance(r.get("score"), (int, float))
              and not isinstance(r.get("score"), bool) and math.isfinite(r["score"]))
        if not ok:
            raise ValueError(f"--heldout-thresholds: {path}: rows[{i}] is {str(r)[:120]}; expected "
                             "{\"domain\": str, \"label\": 0 or 1, \"score\": a finite number}")
        scores.append(float(r["score"]))
        labels.append(int(r["label"]))
        domains.append(r["domain"])
    return np.asarray(scores), np.asarray(labels, dtype=np.int64), domains


def _skip_heldout_domains(held: tuple[np.ndarray, np.ndarray, list[str]], skip: list[str]
                          ) -> tuple[tuple[np.ndarray, np.ndarray, list[str]], dict[str, str]]:
    """The held-out scores without the rows of the ``skip`` domains, and ``{domain: why}`` for each; ValueError
    for a domain the file lacks (naming the ones it has) or when no row would be left."""
    raw, y, dom = held
    have = sorted(set(dom))
    unknown = [d for d in skip if d not in have]
    if unknown:
        raise ValueError(f"--heldout-skip-domain {', '.join(map(printable, unknown))}: the run's held-out scores have "
                         f"no such domain (they have: {', '.join(map(printable, have))})")
    if not skip:
        return held, {}
    keep = np.asarray([d not in skip for d in dom], dtype=bool)
    if not keep.any():
        raise ValueError("--heldout-skip-domain leaves no row of the held-out scores: leave out --heldout-thresholds "
                         "instead")
    n = {d: int(sum(1 for x in dom if x == d)) for d in skip}
    why = {d: f"left out by --heldout-skip-domain ({n[d]} rows)" for d in dict.fromkeys(skip)}
    log.info("held-out scores: %s left out (--heldout-skip-domain)", ", ".join(f"{printable(d)} ({n[d]} rows)" for d in why))
    return (raw[keep], y[keep], [d for d, k in zip(dom, keep, strict=True) if k]), why


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
    from aigc._bundle import BundleError
    from aigc._calibration import CalibrationError
    from aigc._printable import has_controls
    from aigc._thresholds import ThresholdError

    from .bundle_build import BuildOptions, build_bundle
    from .onnx_export import ExportError
    from .parity import ParityError

    def fail(msg: str, code: int) -> int:
        print(printable(f"aigc export: {msg}"), file=sys.stderr)  # quotes paths, column names, data values
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
    if args.name is not None and has_controls(args.name):  # bundle validation would refuse it after the export
        return fail(f"--name {args.name!r}: expected a name without control characters (ANSI escapes, newlines, "
                    "bidi overrides)", 2)
    from .build_options import prepare_out

    out = Path(args.out)
    try:
        prepare_out(out, args.overwrite)
    except FileExistsError as e:
        return fail(str(e), 1)
    if args.limit is not None and args.limit < 1:
        return fail(f"--limit {args.limit}: expected a positive number of calibration items", 2)
    if args.item_column and not args.calibration_data:
        return fail("--item-column names a column of --calibration-data; the run's dev split has its items in 'item'", 2)
    if args.heldout_thresholds and not args.worst_group:
        return fail("--heldout-thresholds raises the --worst-group thresholds: pass it with --worst-group COLUMN", 2)
    if not run_dir.is_dir():
        return fail(f"{run_dir}: no such run folder", 2)
    if args.heldout_skip_domain and not args.heldout_thresholds:
        return fail("--heldout-skip-domain leaves a domain out of the --heldout-thresholds scores: pass it with "
                    "--heldout-thresholds", 2)
    heldout, left_out = None, {}
    if args.heldout_thresholds:
        try:
            heldout, left_out = _skip_heldout_domains(_read_heldout(run_dir), args.heldout_skip_domain)
        except ValueError as e:
            return fail(str(e), 2)
    try:
        loaded = _load_run(run_dir, args.checkpoint)
    except Exception as e:
        return fail(f"cannot load the run {run_dir} ({type(e).__name__}: {e})", 2)
    try:
        run_scores = None
        if args.calibration_data:
            data = read_calibration_data(args.calibration_data, loaded.modality, args.item_column)
            source: dict[str, Any] = {"file": str(args.calibration_data), "item_column": data.item_column}
        else:
            rows = _read_split(run_dir, "dev")
            data = _split_data(rows, run_dir, loaded.modality)
            source = {"run_split": "dev"}
            run_scores = _run_dev_scores(run_dir, rows, args.checkpoint)
    except (OSError, ValueError, KeyError) as e:
        return fail(f"cannot read the calibration data ({type(e).__name__}: {e})", 2)
    if args.limit:
        data = data.head(args.limit)
        run_scores = run_scores[: args.limit] if run_scores is not None else None
    if not data.items:
        return fail("the calibration data is empty", 2)
    try:  # a mistyped column is an error, not a bundle without the groups it was asked for
        groups = data.column(args.group_column, "--group-column") if args.group_column else None
        worst = data.column(args.worst_group, "--worst-group") if args.worst_group else None
    except ValueError as e:
        return fail(str(e), 2)
    items, labels = data.items, data.labels
    source.update({"n": len(items), "fingerprint": _fingerprint(items, labels)})
    if groups is not None:
        source["group_column"] = args.group_column
    if worst is not None:
        source["worst_group_column"] = args.worst_group
    try:  # the training items: checked against the calibration items, and hashed for aigc eval's overlap check
        training_items: list[Any] | None = _rows_to_data(_read_split(run_dir, "train"), None, run_dir, loaded.modality)[0]
    except (OSError, ValueError, KeyError) as e:
        log.warning("cannot read the run's training split (%s: %s): the calibration items are not checked against "
                    "it, and the bundle records no training hashes", type(e).__name__, printable(e))
        training_items = None
    opts = BuildOptions(
        training_items=training_items,
        allow_calibration_overlap=args.allow_calibration_overlap,
        item_sources=data.where,
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
        heldout_scores=heldout,
        heldout_left_out=left_out,
    )
    try:
        path = build_bundle(loaded, out, items, labels, groups, opts, worst_groups=worst, run_scores=run_scores)
    except FileExistsError as e:
        return fail(str(e), 1)
    except (ParityError, ExportError, CalibrationError, ThresholdError, BundleError) as e:
        return fail(str(e), 1)
    _print_summary(path, args.worst_group)
    return 0


def _print_summary(path: Path, worst_group: str | None) -> None:
    """What was written: calibration, thresholds (per worst group), overlap, each variant's AUROC. The path,
    the column and its values come from the user and pass through :func:`aigc._printable.printable`; the
    threshold and variant names are checked by bundle validation."""
    from aigc._bundle import open_bundle

    spec = open_bundle(path).spec
    cal = spec["calibration"]
    print(f"wrote {printable(path)}: {spec['modality']} bundle, variants {sorted(spec['model']['variants'])}")
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
            print(f"    {printable(worst_group)}={printable(g)}: achieved FPR {v['achieved_fpr']:.4f} on {v['n_human']} humans ({v['rule']})")
        if t.get("heldout"):
            h = t["heldout"]
            print(f"    domain-held-out training scores: threshold {h['value']:.4f} (set by {printable(h.get('set_by'))}), "
                  f"achieved FPR {h['achieved_fpr']:.4f} on {h['n_human']} humans at {t['value']:.4f}"
                  + (" (forced: flags no ai calibration item)" if h.get("forced") else ""))
    if cal.get("note"):
        print(f"note: {cal['note']}")
    ov = (spec.get("data_hashes") or {}).get("calibration_in_training")
    if ov and ov.get("n"):
        print(f"warning: {ov['n']} of {ov['n_items']} calibration items ({ov['n_human']} humans) are training items"
              + (" (--allow-calibration-overlap)" if ov.get("allowed") else ""))
    for v, ev in spec.get("variants_eval", {}).items():
        if "auroc" in ev:
            rho = f", rank agreement with fp32 {ev['rank_agreement_fp32']:.3f}" if "rank_agreement_fp32" in ev else ""
            note = " (forced)" if ev.get("forced") else " (refused: left out of the bundle)" if ev.get("refused") else ""
            print(f"  {v}: AUROC {ev['auroc']:.4f} ({ev['auroc_delta']:+.4f}){rho}{note}")
        elif ev.get("refused"):
            print(f"  {v}: left out of the bundle: {ev['refused']}")
        else:
            print(f"  {v}: not evaluated (forced)")
