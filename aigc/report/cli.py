"""``aigc eval BUNDLE [BUNDLE ...] DATA --report DIR``: evaluate one bundle, or compare several on the same items.

Exit codes: 0 report written; 1 report written but no bundle could be evaluated (every item failed, or a
class is missing among the scored items); 2 bad arguments, unusable data or an unusable bundle.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import sys
from pathlib import Path

import numpy as np

from .._printable import printable

__all__ = ["add_arguments", "run"]

log = logging.getLogger("aigc.report")

# slice fields that aigc eval derives from the items themselves (report.evaluate._item_meta)
_DERIVED = {"text": ("length",), "image": ("resolution", "format")}


def _csv_list(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    out: list[str] = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``aigc eval``."""
    p.add_argument("paths", nargs="+", metavar="BUNDLE [BUNDLE ...] DATA",
                   help="one or more bundles (folders or .zip), then the labelled data: a JSONL/CSV/TSV of texts or image "
                        "paths, or a folder with real/ and ai/ images; the first bundle is the baseline of comparisons")  # fmt: skip
    p.add_argument("--report", required=True, metavar="DIR", help="folder to write report.html, metrics.json, summary.md and scores.jsonl (each item's probability and flags per bundle) into")
    p.add_argument("--text-field", default="text", help="JSONL field holding the text (default: text)")
    p.add_argument("--label-field", default="label", help="field holding the label: 0/1, human/ai, real/fake (default: label)")
    p.add_argument("--path-field", default="path", help="image JSONL/CSV field holding the path (default: path)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate a seeded sample of N items, keeping the class shares")
    p.add_argument("--seed", type=int, default=0, help="seed of --limit, the bootstrap and the perturbations (default: 0)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap replicates for intervals; 0: none (default: 1000)")
    p.add_argument("--bootstrap-cluster", default=None, metavar="FIELD",
                   help="resample items that share this field's value together (a human text and the machine texts "
                        "continuing it, one prompt's answers, one photographer's photos): intervals that treat such "
                        "items as independent are too narrow")  # fmt: skip
    p.add_argument("--ci", type=float, default=0.95, help="interval level (default: 0.95)")
    p.add_argument("--perturbations", action="append", default=None, metavar="NAMES",
                   help="comma-separated perturbations to run (default: all of the modality; see aigc.perturb)")  # fmt: skip
    p.add_argument("--no-robustness", action="store_true", help="skip the perturbation passes")
    p.add_argument("--robustness-limit", type=int, default=1000, metavar="N",
                   help="perturb a stratified sample of at most N items (default: 1000; 0: all)")  # fmt: skip
    p.add_argument("--slice-by", action="append", default=None, metavar="FIELDS",
                   help="fields to slice by (default: every field with at most 50 values, plus length or resolution and format)")  # fmt: skip
    p.add_argument("--fairness-by", action="append", default=None, metavar="FIELDS",
                   help="fields grouping the human items for false-positive rates (default: the slice fields except generator)")  # fmt: skip
    p.add_argument("--min-slice", type=int, default=30, metavar="N", help="figures from fewer items of a needed class are marked small (default: 30)")
    p.add_argument("--threshold", default=None, help="named threshold shown in the charts (default: fpr@1%%, else the first)")
    p.add_argument("--batch-size", type=int, default=32, help="items (images) or windows (text) per model call")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--provider", default=None, help="execution provider(s), e.g. cpu, cuda, or cuda,cpu")
    p.add_argument("--allow-fallback", action="store_true", help="fall back to CPU when the asked provider is absent")
    p.add_argument("--variant", default="fp32", help="model variant of every bundle: fp32, int8 or fp16")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-provenance", action="store_true", help="images: do not count items by provenance verdict")
    p.add_argument("--overwrite", action="store_true", help="replace the report files in an existing --report folder")
    p.add_argument("--shadow-log", default=None, metavar="LOG",
                   help="compare the primary and shadow detectors of an `aigc serve --score-log` LOG; DATA is then a JSONL of item_sha256 and label")  # fmt: skip


def _did_you_mean(value: str, known: list[str]) -> str:
    close = difflib.get_close_matches(value, known, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unknown(flag: str, values: list[str] | None, known: list[str], what: str) -> str | None:
    """The message for the first of ``values`` not in ``known``, or None when all are known."""
    for v in values or []:
        if v not in known:
            return f"{flag} {v}: {what} has no such field{_did_you_mean(v, known)} (known: {', '.join(known) or 'none'})"
    return None


def _check_numbers(args: argparse.Namespace) -> str | None:
    """The first bad number among the limits, or None."""
    if args.bootstrap < 0:
        return f"--bootstrap: found {args.bootstrap}, expected 0 or more"
    if not 0.5 <= args.ci < 1:
        return f"--ci: found {args.ci}, expected a level such as 0.95"
    if args.limit is not None and args.limit < 2:
        return f"--limit: found {args.limit}, expected at least 2 (one item of each class)"
    if args.robustness_limit is not None and args.robustness_limit < 0:
        return f"--robustness-limit: found {args.robustness_limit}, expected 0 (all) or more"
    if args.min_slice < 1:
        return f"--min-slice: found {args.min_slice}, expected 1 or more"
    if args.batch_size < 1:
        return f"--batch-size: found {args.batch_size}, expected 1 or more"
    if args.threads is not None and args.threads < 1:
        return f"--threads: found {args.threads}, expected 1 or more"
    return None


def _fail(msg: str) -> int:
    print(printable(f"aigc eval: {msg}"), file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run ``aigc eval``; returns the exit code."""
    import aigc

    from .data import load_data
    from .evaluate import EvalOptions, run_evaluation
    from .plots import ReportDepsMissing, require_report_deps
    from .render import write_report
    from .scoring import SCORES_FILE, scores_jsonl

    if args.shadow_log:
        from .shadow import run_shadow_eval

        return run_shadow_eval(args)
    try:  # before minutes of scoring: the charts need the report extra
        require_report_deps()
    except ReportDepsMissing as e:
        return _fail(str(e))
    if len(args.paths) < 2:
        return _fail("give at least one bundle and the data: aigc eval BUNDLE [BUNDLE ...] DATA --report DIR")
    *bundle_paths, data_path = args.paths
    bad = _check_numbers(args)
    if bad:
        return _fail(bad)
    rep = Path(args.report)
    if rep.exists() and not rep.is_dir():
        return _fail(f"--report {rep}: exists and is not a folder")
    if rep.is_dir() and any(rep.iterdir()) and not args.overwrite:
        return _fail(f"--report {rep}: the folder exists and is not empty; pass --overwrite to replace its report files")
    providers = args.provider.split(",") if args.provider and "," in args.provider else args.provider
    detectors = []
    seen: dict[str, int] = {}
    for bp in bundle_paths:
        try:
            det = aigc.load(bp, providers=providers, threads=args.threads, variant=args.variant,
                            allow_fallback=args.allow_fallback, batch_size=args.batch_size)  # fmt: skip
        except (aigc.BundleError, aigc.ProviderError, OSError, ValueError) as e:
            return _fail(f"{bp}: {e}")
        name = str(det.spec.get("name") or Path(bp).name)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} ({Path(bp).name} #{seen[name]})"
        detectors.append((name, str(bp), det))
    modalities = {d.modality for _, _, d in detectors}
    if len(modalities) > 1:
        return _fail(f"bundles of different modalities cannot be compared: {', '.join(f'{n}={d.modality}' for n, _, d in detectors)}")
    modality = detectors[0][2].modality
    labels = tuple(detectors[0][2].labels)
    try:
        data = load_data(data_path, modality, args.text_field, args.label_field, args.path_field, labels)  # type: ignore[arg-type]
    except (ValueError, OSError) as e:
        return _fail(str(e))
    if len(data) == 0:
        ex = "; ".join(f"{i}: {e}" for i, e in data.problems[:3])
        return _fail(f"{data_path}: no usable labelled item ({len(data.problems)} unusable rows{': ' + ex if ex else ''})")
    names = list(dict.fromkeys(n for _, _, d in detectors for n in d.spec["thresholds"]))
    if args.threshold is not None and args.threshold not in names:
        return _fail(f"--threshold {args.threshold}: no bundle has this threshold{_did_you_mean(args.threshold, names)} "
                     f"(known: {', '.join(names)})")
    known = sorted({*data.fields, *_DERIVED[modality]})
    asked = (("--slice-by", _csv_list(args.slice_by)), ("--fairness-by", _csv_list(args.fairness_by)),
             ("--bootstrap-cluster", [args.bootstrap_cluster] if args.bootstrap_cluster else None))
    for flag, vals in asked:
        msg = _unknown(flag, vals, known, f"the data ({data_path})")
        if msg:
            return _fail(msg)
    opts = EvalOptions(
        n_boot=args.bootstrap,
        seed=args.seed,
        level=args.ci,
        limit=args.limit,
        min_slice=args.min_slice,
        robustness=not args.no_robustness,
        perturbations=_csv_list(args.perturbations),
        robustness_limit=args.robustness_limit or None,
        slice_by=_csv_list(args.slice_by),
        fairness_by=_csv_list(args.fairness_by),
        bootstrap_cluster=args.bootstrap_cluster,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    try:
        metrics, scored, data = run_evaluation(detectors, data, opts)
    except ValueError as e:
        return _fail(str(e))
    if modality == "image" and not args.no_provenance:
        from .provenance import provenance_section

        metrics["provenance"] = provenance_section(data.items, data.y, scored, list(labels))
    curves = []
    for sb in scored:
        ok = np.isfinite(sb.p)
        if (data.y[ok] == 0).any() and (data.y[ok] == 1).any():
            curves.append((sb.name, data.y[ok], sb.p[ok]))
    paths = write_report(args.report, metrics, curves, args.threshold, {SCORES_FILE: scores_jsonl(data, scored)})
    for b in metrics["bundles"]:
        o = b.get("overall")
        fails = b["failures"]["count"]
        if o:
            a = o["auroc"]
            ci = f" [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]" if a.get("ci") and None not in a["ci"] else ""
            print(f"{printable(b['name'])}: AUROC {a['value']:.3f}{ci} on {b['n_scored']} items ({fails} failed)")
        else:
            print(printable(f"{b['name']}: {b.get('error')} ({fails} failed)"))
    probs = metrics["data"]["problems"]
    if probs["count"]:  # the items above are the usable rows only: say how many were not, where, and why
        n_rows = probs["count"] + metrics["data"]["n_read"]
        print(printable(f"{probs['count']} of {n_rows} rows of {data_path} were not usable (see problems in metrics.json); "
                        "first: " + "; ".join(f"{x['id']}: {x['error']}" for x in probs["examples"][:3])), file=sys.stderr)
    from .summary import overlap_lines

    for line in overlap_lines(metrics):
        print(printable(line), file=sys.stderr)  # names bundles: escaped like every line above
    for k in ("report.html", "metrics.json", "summary.md", SCORES_FILE):
        print(f"{k.split('.')[0]}: {printable(paths[k])}")
    return 0 if any(b.get("overall") for b in metrics["bundles"]) else 1
