"""``aigc calibrate BUNDLE DATA --out NEW_BUNDLE``: re-threshold a bundle on your own data (torch-free).

Exit codes: 0 new bundle written; 1 the data cannot support what was asked (too few humans for a target,
no AI items for a calibration refit); 2 bad arguments (``--out`` is, holds or lies inside the input bundle
or the data, exists without ``--overwrite``, or exists and is not an earlier bundle), unusable data or bundle.
Console lines show paths, rows and text from the bundle with their control characters escaped
(:func:`aigc._printable.printable`); the new bundle keeps the exact values.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._printable import printable


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``aigc calibrate``."""
    p.add_argument("bundle", help="the bundle to start from (folder or .zip); it is never changed")
    p.add_argument("data", help="your data: a JSONL/CSV/TSV of texts or image paths with labels, or a folder with real/ "
                                "and ai/ images; with --humans-only, rows without a label (or a plain image folder) are human")  # fmt: skip
    p.add_argument("--out", required=True, help="where to write the new bundle (a folder, or a path ending in .zip)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out that is an earlier bundle (never the input bundle, the data, or "
                        "a folder or file that is not a bundle)")  # fmt: skip
    p.add_argument("--humans-only", action="store_true",
                   help="DATA holds only human items: rows without a label count as human; thresholds are refitted, "
                        "the calibration map is kept")  # fmt: skip
    p.add_argument("--targets", default=None, help="target FPRs, e.g. 0.01,0.05 (default: those of the bundle's thresholds)")
    p.add_argument("--method", default=None, choices=("temperature", "platt", "isotonic", "none"),
                   help="calibration method to refit (default: the bundle's own; needs labelled AI items)")  # fmt: skip
    p.add_argument("--prevalence", type=float, default=None, metavar="SHARE",
                   help="share of AI items where the bundle will be used (e.g. 0.02): P(ai) is adjusted by Bayes' rule "
                        "and the thresholds are set on the adjusted P (default: no adjustment)")  # fmt: skip
    p.add_argument("--text-field", default="text", help="JSONL/CSV field holding the text (default: text)")
    p.add_argument("--label-field", default="label", help="field holding the label: 0/1, human/ai, real/fake (default: label)")
    p.add_argument("--path-field", default="path", help="image JSONL/CSV field holding the path (default: path)")
    p.add_argument("--variant", default="fp32", help="model variant to score with: fp32, int8 or fp16 (default: fp32)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--batch-size", type=int, default=32, help="items (images) or windows (text) per model call")
    p.add_argument("--group-field", default=None, metavar="FIELD",
                   help="also set thresholds per value of this field (e.g. language): a group of 20 or more humans gets "
                        "each fpr@X above its humans, never below the global one; score with --group-field FIELD")
    p.add_argument("--groups-only", action="store_true",
                   help="with --group-field: keep the bundle's calibration, global thresholds and support, and only "
                        "add (or replace) the thresholds of the groups in DATA (a language added to a deployed "
                        "bundle; DATA then needs no texts of the languages it already serves)")  # fmt: skip


def _fail(msg: str, code: int) -> int:
    print(printable(f"aigc calibrate: {msg}"), file=sys.stderr)  # quotes paths, rows, bundle errors
    return code


def _parse_targets(text: str | None) -> list[float] | None:
    if text is None:
        return None
    return [float(t) for t in text.split(",") if t.strip()]


def run(args: argparse.Namespace) -> int:
    """Run ``aigc calibrate``; returns the exit code."""
    from .._bundle import BundleError, open_bundle
    from .._recalibrate import CalibrateOptions, RecalibrationError, check_out_path, recalibrate
    from .._session import ProviderError
    from ..report.data import load_data

    try:
        targets = _parse_targets(args.targets)
    except ValueError:
        return _fail(f"--targets {args.targets!r}: expected numbers such as 0.01,0.05", 2)
    if args.prevalence is not None and not 0.0 < args.prevalence < 1.0:
        return _fail(f"--prevalence: found {args.prevalence}, expected a share in (0, 1), e.g. 0.02", 2)
    if args.batch_size < 1 or (args.threads is not None and args.threads < 1):
        return _fail("--batch-size and --threads must be 1 or more", 2)
    if args.groups_only and not args.group_field:
        return _fail("--groups-only sets per-group thresholds: give the field that names each item's group "
                     "(--group-field, e.g. language)", 2)
    if args.groups_only and (args.targets is not None or args.method is not None or args.prevalence is not None):
        return _fail("--groups-only keeps the bundle's calibration and thresholds: drop --targets, --method and "
                     "--prevalence (or drop --groups-only to refit them)", 2)
    try:
        check_out_path(Path(args.bundle), Path(args.out), args.overwrite, [Path(args.data)])
    except (RecalibrationError, FileExistsError) as e:
        return _fail(str(e), 2)
    try:
        spec = open_bundle(args.bundle).spec
    except BundleError as e:
        return _fail(f"bad bundle {args.bundle}: {e}", 2)
    try:
        data = load_data(args.data, spec["modality"], args.text_field, args.label_field, args.path_field,
                         tuple(spec["labels"]), default_label=0 if args.humans_only else None)  # type: ignore[arg-type]
    except (ValueError, OSError) as e:
        return _fail(str(e), 2)
    if len(data) == 0:
        ex = "; ".join(f"{i}: {e}" for i, e in data.problems[:3])
        hint = "" if args.humans_only else " (human items without labels: pass --humans-only)"
        return _fail(f"{args.data}: no usable item ({len(data.problems)} unusable rows{': ' + ex if ex else ''}){hint}", 2)
    if args.humans_only and (data.y == 1).any():
        return _fail(f"--humans-only, but {int((data.y == 1).sum())} rows of {args.data} are labelled AI", 2)
    groups = None
    if args.group_field:
        if args.group_field not in data.fields:
            return _fail(f"--group-field {args.group_field!r}: no row of {args.data} has it (fields: "
                         f"{sorted(data.fields)[:10]})", 2)
        groups = data.fields[args.group_field]
    if data.problems:
        first = printable(f"{data.problems[0][0]}: {data.problems[0][1]}")  # file:line and what it holds
        print(f"aigc calibrate: skipped {len(data.problems)} unusable rows (first: {first})", file=sys.stderr)
    opts = CalibrateOptions(targets=targets, method=args.method, prevalence=args.prevalence, variant=args.variant,
                            overwrite=args.overwrite, threads=args.threads, batch_size=args.batch_size,
                            source=str(Path(args.data)), group_field=args.group_field or "group")  # fmt: skip
    try:
        if args.groups_only:
            from .._group_calibrate import add_group_thresholds

            assert groups is not None
            path, rec = add_group_thresholds(args.bundle, data.items, data.y, groups, args.out, opts)
            return _report_groups(path, rec)
        path, rec = recalibrate(args.bundle, data.items, data.y, args.out, opts, groups)
    except RecalibrationError as e:
        return _fail(str(e), 1)
    except (BundleError, ProviderError, OSError) as e:  # FileExistsError: --out appeared, or changed, meanwhile
        return _fail(str(e), 2)
    new = open_bundle(path).spec
    d = rec["data"]
    print(f"wrote {printable(path)}: calibration {rec['calibration']} on {d['n']} items ({d['n_human']} human, {d['n_ai']} AI, "
          f"{d['n_failed']} failed)")  # fmt: skip
    if rec.get("prevalence"):
        pv = rec["prevalence"]
        print(f"P(ai) adjusted from an AI share of {pv['base']:g} ({pv['base_from']}) to {pv['target']:g}")
    for name, t in new["thresholds"].items():
        fpr = "-" if t.get("achieved_fpr") is None else f"{t['achieved_fpr']:.4f}"
        print(f"  {name}: P(ai) >= {t['value']:.4f}  (FPR {fpr} on {t.get('n_human')} humans"
              + (f", 95% upper {t['fpr_upper_95']:.4f}" if t.get("fpr_upper_95") is not None else "")
              + (f"; {t['note']}" if t.get("note") else "") + ")")  # fmt: skip
    if rec.get("dropped"):
        print(f"  dropped: {rec['dropped']}")
    gt: dict[str, Any] = (new.get("group_thresholds") or {}) if groups is not None else {}
    for g, ts in gt.get("groups", {}).items():
        print(printable(f"  {gt['column']}={g}: " + "; ".join(f"{n} {t['value']:.4f} ({t.get('rule', '')}, FPR "
                                                               f"{t['achieved_fpr']:.4f} on {t['n_human']} humans)"
                                                               for n, t in ts.items())))
    for v, a in (rec.get("also_recalibrated") or {}).items():
        print(f"  {printable(v)}: its own calibration {a['calibration']} and thresholds refitted too, on {a['n']} items "
              f"({a['n_failed']} failed): every variant carries the same threshold names")
    return 0


def _report_groups(path: Path, rec: dict[str, Any]) -> int:
    """What ``--groups-only`` wrote: each group's thresholds, what was kept, and the items out of support."""
    from .._bundle import open_bundle

    d, g = rec["data"], rec["group_thresholds"]
    print(f"wrote {printable(path)}: calibration, global thresholds and support kept; group thresholds by "
          f"{printable(g['column'])} set on {d['n']} items ({d['n_human']} human, {d['n_ai']} AI, {d['n_failed']} failed)")
    new = open_bundle(path).spec
    gt = (new.get("variant_calibration") or {}).get(rec["variant"], new).get("group_thresholds") or {}
    for name in [*g["added"], *g["replaced"]]:
        ts = gt["groups"][name]
        how = "replaced" if name in g["replaced"] else "added"
        print(printable(f"  {g['column']}={name} ({how}): " + "; ".join(
            f"{n} {t['value']:.4f} ({t.get('rule', '')}, FPR {t['achieved_fpr']:.4f} on {t['n_human']} humans)"
            for n, t in ts.items())))
    if g["kept"]:
        print(printable(f"  kept from the bundle: {', '.join(g['kept'])}"))
    if g["global_only"]:
        print(printable(f"  too few humans for their own thresholds (the global ones apply): {', '.join(g['global_only'])}"))
    for name, n in sorted(rec["out_of_support"].items()):
        print(printable(f"  {g['column']}={name}: {n} items lie outside the bundle's calibration support and stay "
                        "marked out_of_support when scored"))
    return 0
