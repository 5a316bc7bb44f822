"""``aigc score BUNDLE INPUTS... --out FILE.jsonl|.csv``: stream, score, write atomically, resume safely.

Inputs are read by :mod:`aigc._inputs`; rows are written by :mod:`aigc._output`, with the run record
``OUT.meta.json`` that ``--resume`` checks (see README, "Input formats and the output contract"): the settings,
and the identity of every input file (``input_files``), since rows are named by a file's line or row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from .._inputs import (
    INPUT_FORMATS,
    STDIN,
    InputError,
    InputItem,
    ReadNotes,
    ReadOptions,
    check_inputs,
    iter_inputs,
)
from .._output import (
    ScoreWriter,
    canonical_row,
    read_run_record,
    read_scores,
    run_record_path,
    write_run_record,
)
from .._printable import printable
from .._readers import identity_change

Records = list[tuple[Path, dict[str, Any]]]

INPUTS_HELP = (
    "files, folders (recursive), or - for standard input. Image bundle: image files; a .txt/.lst/.list file "
    "listing one image path per line (relative paths are resolved from the list's folder; from the working "
    "folder for -). Text bundle: JSONL/NDJSON, .json (an array of objects), CSV, TSV and Parquet files, each "
    "also gzipped (.jsonl.gz, .csv.gz, ...), one item per row; a .txt or .md file is ONE document (the whole "
    "file), also in folders. Extensions are matched in any case."
)


def _int_at_least(lo: int):  # type: ignore[no-untyped-def]
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"found {s!r}, expected an integer >= {lo}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"found {v}, expected an integer >= {lo}")
        return v

    parse.__name__ = f"integer >= {lo}"
    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="bundle folder or .zip")
    p.add_argument("inputs", nargs="+", help=INPUTS_HELP)
    p.add_argument("--out", required=True, help="output file: .jsonl or .csv (written atomically; "
                   "OUT.meta.json beside it records the bundle and settings that produced it)")
    p.add_argument("--threshold", default=None,
                   help="threshold name in the bundle (fpr@1%%, fpr@5%%, balanced) or a probability "
                        "(default: fpr@1%%, else the bundle's threshold with the lowest target FPR)")
    p.add_argument("--input-format", choices=INPUT_FORMATS, default=None,
                   help="read every file named directly (and -) as this format, whatever its extension "
                        "(folders are still walked by extension); 'list' = a list of image paths")
    p.add_argument("--text-field", default="text", help="field or column that holds the text (default: text)")
    p.add_argument("--id-field", default=None,
                   help="field or column whose value names each row in the output (default: FILE:LINE, or FILE:ROW "
                        "for Parquet and JSON arrays); values must be unique")
    p.add_argument("--keep-fields", default=None,
                   help="comma-separated input fields or columns to carry into each output row "
                        "(JSONL: under 'input'; CSV: input.<name> columns)")
    p.add_argument("--group-field", default=None, help="field naming the item's group, for per-group thresholds")
    p.add_argument("--weak-groups", choices=("warn", "refuse"), default="warn",
                   help="an item of a group the bundle marks weak (detection AUROC under 0.75 on its calibration "
                        "items): warn (label it, with a warning; default) or refuse (no label, an error saying why)")
    p.add_argument("--batch-size", type=_int_at_least(1), default=32, help="items (images) or windows (text) per model call")
    p.add_argument("--threads", type=_int_at_least(1), default=None, help="ONNX Runtime intra-op threads (default: one per core)")
    p.add_argument("--provider", default=None, help="execution provider(s), e.g. cpu, cuda, or cuda,cpu")
    p.add_argument("--allow-fallback", action="store_true", help="fall back to CPU when the asked provider is absent")
    p.add_argument("--variant", default="fp32", help="model variant: fp32, int8 or fp16 (as the bundle offers)")
    p.add_argument("--shard", default=None, help="i/n: score only every n-th item starting at i (0-based), for job arrays")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    again.add_argument("--resume", action="store_true",
                       help="keep the rows already in the output and score only the rest; refused when the "
                            "output was made with another bundle, variant, threshold or input setting")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-provenance", action="store_true", help="do not read C2PA/XMP/EXIF/PNG provenance (read by default for images)")
    p.add_argument("--provenance-policy", default=None, help="how provenance and score make the final label (default: the "
                   "bundle's provenance_policy, else declared_ai_first; see README, Provenance)")
    p.add_argument("--trust-anchors", default=None, help="PEM file of C2PA trust anchors (default: $AIGC_C2PA_TRUST_ANCHORS)")


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


def _fail(msg: str) -> int:
    print(printable(f"aigc score: {msg}"), file=sys.stderr)
    return 2


def _read_options(args: argparse.Namespace) -> ReadOptions:
    keep = tuple(k.strip() for k in (args.keep_fields or "").split(",") if k.strip())
    return ReadOptions(args.text_field, args.group_field, args.id_field, keep, args.input_format)


def _load_detector(args: argparse.Namespace) -> Any:
    """The Detector, or a message (str) saying which argument or which part of the bundle is wrong."""
    import aigc
    from aigc._bundle import open_bundle, refused_note

    try:
        bundle = open_bundle(args.bundle)
    except aigc.BundleError as e:
        return f"bad bundle {args.bundle}: {e}"
    variants = bundle.spec["model"]["variants"]
    if args.variant not in variants:
        return (f"--variant: this bundle has no {args.variant!r} variant (it has {', '.join(sorted(variants))})"
                f"{refused_note(bundle.spec, args.variant)}")
    try:
        return aigc.Detector(bundle, args.provider, args.threads, args.variant, args.allow_fallback, args.batch_size)
    except aigc.ProviderError as e:
        return f"--provider: {e}"
    except aigc.BundleError as e:
        return f"bad bundle {args.bundle}: {e}"


def _settings(det: Any, args: argparse.Namespace, opts: ReadOptions, thr: tuple[str, float]) -> dict[str, Any]:
    """Everything that changes a score or a row: --resume refuses when any of it differs."""

    text = det.modality == "text"
    return {
        "bundle_name": det.spec.get("name"),
        "bundle_sha256": det.bundle.json_sha256,
        "modality": det.modality,
        "variant": det.variant,
        "threshold_name": thr[0],
        "threshold_value": thr[1],
        "group_field": opts.group_field,
        "text_field": opts.text_field if text else None,
        "id_field": opts.id_field,
        "keep_fields": list(opts.keep_fields),
        "input_format": opts.input_format,
        "shard": args.shard,
    }


def _resume_rows(out: Path, partial: Path, settings: dict[str, Any]) -> tuple[list[dict[str, Any]], Records] | str:
    """Rows to keep (scored rows of OUT and OUT.partial) and the run records read, or a message saying why
    --resume is refused.

    Each of the two files has its own run record (``OUT.meta.json``, ``OUT.partial.meta.json``), so rows of
    a finished run and of a later, interrupted ``--overwrite`` run with other settings are never mixed."""
    kept: list[dict[str, Any]] = []
    records: Records = []
    seen: set[str] = set()
    for p in (out, partial):
        if not p.exists():
            continue
        try:
            rec = read_run_record(p)
        except ValueError as e:
            return f"--resume: {e}"
        if rec is None:
            return (f"--resume: {run_record_path(p)} is missing, so nothing says what produced {p}; "
                    "write to a new --out, or pass --overwrite to start again")
        old = rec["settings"]
        diffs = [f"{k} {old.get(k)!r} -> {v!r}" for k, v in settings.items() if old.get(k) != v]
        if diffs:
            return (f"--resume: {p} was made with other settings ({'; '.join(diffs)}); rerun with the same "
                    "settings, write to a new --out, or pass --overwrite to start again")
        records.append((p, rec))
        for r in read_scores(p):
            if str(r.get("item")) not in seen and not r.get("error"):
                seen.add(str(r.get("item")))
                kept.append(r)
    return kept, records


def _changed_inputs(records: Records, files: dict[str, dict[str, Any]]) -> str | None:
    """Why --resume is refused because an input file changed since a record was written (None: none did).
    A record without input identities (written before aigc recorded them) gets a warning on stderr."""
    for p, rec in records:
        old = rec.get("input_files")
        if not isinstance(old, dict):
            print(f"aigc score: warning: {printable(run_record_path(p))} records no input file identities (an older aigc wrote "
                  "it), so --resume cannot tell whether an input changed since; rows are matched by item as before. "
                  "If an input changed, pass --overwrite instead.", file=sys.stderr)
            continue
        for name, now in files.items():
            before = old.get(name)
            change = identity_change(before, now) if isinstance(before, dict) else None
            if change:
                return (f"--resume: the input {name} changed since {p} was written ({change}); rows are named by "
                        "file and line (or row, or path), so kept rows could carry the score of other content. "
                        "Pass --overwrite to score everything again, or write to a new --out")
    return None


def _merged_files(records: Records, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The identities to record: those of the earlier records (inputs not read this time), then this run's."""
    merged: dict[str, Any] = {}
    for _, rec in records:
        if isinstance(rec.get("input_files"), dict):
            merged.update(rec["input_files"])
    merged.update(files)
    return merged


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(args: argparse.Namespace) -> int:
    import aigc

    out = Path(args.out)
    fmt = "csv" if out.suffix.lower() == ".csv" else "jsonl" if out.suffix.lower() in (".jsonl", ".json") else None
    if fmt is None:
        return _fail(f"--out {out}: expected a .jsonl or .csv file")
    try:
        shard = _parse_shard(args.shard)
    except ValueError as e:
        return _fail(str(e))
    partial = out.with_name(out.name + ".partial")
    if not (args.overwrite or args.resume):
        for p in (out, partial):
            if p.exists():
                return _fail(f"{p} exists; pass --resume to continue it or --overwrite to replace it")
    if args.inputs.count(STDIN) > 1:
        return _fail("- (standard input) can be given once")
    opts = _read_options(args)
    det = _load_detector(args)
    if isinstance(det, str):
        return _fail(det)
    if det.modality == "image" and (opts.id_field or opts.keep_fields):
        return _fail("--id-field and --keep-fields read record files of texts; this is an image bundle")
    try:
        check_inputs(args.inputs, det.modality, opts, [out, partial, run_record_path(out), run_record_path(partial)])
    except InputError as e:
        return _fail(str(e))
    if STDIN in args.inputs:
        from .._readers import spool_stdin

        opts.stdin = spool_stdin()
    if args.threshold is None:
        args.threshold = det.default_threshold
        if args.threshold != "fpr@1%":
            print(f"aigc score: this bundle has no fpr@1% threshold; using {printable(args.threshold)}", file=sys.stderr)
    try:
        thr = det.resolve_threshold(args.threshold)
    except (KeyError, ValueError) as e:
        return _fail(f"--threshold: {e.args[0]}")
    try:
        prov = _provenance_options(args, det)
    except ValueError as e:
        return _fail(str(e))
    settings = _settings(det, args, opts, thr)
    if prov:  # rows gain a provenance part; --resume must not mix runs with and without it
        settings["provenance"] = prov.policy or det.spec.get("provenance_policy") or "declared_ai_first"
    resumed = _resume_rows(out, partial, settings) if args.resume else ([], [])
    if isinstance(resumed, str):
        return _fail(resumed)
    kept, records = resumed
    done = {str(r["item"]) for r in kept}

    def items(notes: ReadNotes | None = None) -> Iterator[InputItem]:
        it = iter_inputs(args.inputs, det.modality, opts, notes)
        if shard is not None:
            it = (x for k, x in enumerate(it) if k % shard[1] == shard[0])
        return (x for x in it if x.id not in done)

    notes = ReadNotes()
    try:
        total = sum(1 for _ in items(notes))  # also surfaces header problems before any output exists
    except InputError as e:
        return _fail(str(e))
    changed = _changed_inputs(records, notes.files)
    if changed:
        return _fail(changed)
    record: dict[str, Any] = {
        "format": "aigc-score-run", "version": 1, "output": out.name, "complete": False, "settings": settings,
        "input_files": _merged_files(records, notes.files),
        "info": {"aigc_version": aigc.__version__, "bundle_path": str(args.bundle), "providers": det.providers,
                 "inputs": [str(x) for x in args.inputs], "started": _now()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    write_run_record(partial, record)
    done_run = _score_all(det, args, opts, items(), total, kept, partial, fmt, args.threshold, prov)
    if done_run is None:
        return 130
    counts, failures = done_run
    record["complete"] = True
    record["info"].update(finished=_now(), counts=counts)
    write_run_record(partial, record)
    os.replace(partial, out)  # rows first, then their record: a crash between the two makes --resume refuse
    os.replace(run_record_path(partial), run_record_path(out))
    print(f"scored {counts['scored']} item(s), {counts['failed']} failed, {len(kept)} kept from before; "
          f"{counts['out_of_support']} out of the calibration support -> {printable(out)}", file=sys.stderr)
    if failures:  # each line escaped: item ids and error texts come from the inputs
        print("failures:\n" + "\n".join(failures), file=sys.stderr)
    _print_notes(notes)
    if counts["scored"] == 0 and not kept:
        print("aigc score: nothing could be scored", file=sys.stderr)
        return 1
    return 0


def _score_all(det: Any, args: argparse.Namespace, opts: ReadOptions, stream: Iterator[InputItem], total: int,
               kept: list[dict[str, Any]], partial: Path, fmt: str, threshold: str | float, prov: Any = False,
               ) -> tuple[dict[str, int], list[str]] | None:
    """Score the stream into ``partial``: the counts and a summary of failures, or None when interrupted
    (the partial file is kept)."""
    from tqdm import tqdm

    bar = tqdm(total=total, unit="item", desc="scoring", disable=args.no_progress or None, file=sys.stderr)
    writer = ScoreWriter(partial, fmt, det.modality, opts.keep_fields, provenance=bool(prov))
    for r in kept:
        writer.write(r)
    n_ok = n_fail = n_oos = 0
    errors: Counter[str] = Counter()
    examples: dict[str, str] = {}
    try:
        while True:
            chunk = list(islice(stream, 256))
            if not chunk:
                break
            good = [x for x in chunk if x.error is None]
            results = iter(det.score([x.payload for x in good], threshold, [x.group for x in good],
                                     progress=bar.update, provenance=prov, weak_groups=args.weak_groups)
                           if good else [])
            for x in chunk:
                if x.error is not None:
                    res = _error_row(x.error)
                    bar.update(1)
                else:
                    res = next(results).to_dict()
                row = canonical_row(x.id, res, det.modality, x.fields)
                writer.write(row)
                if row["error"]:
                    n_fail += 1
                    key = _error_kind(row["error"], x.id)
                    errors[key] += 1
                    err = row["error"]
                    examples.setdefault(key, err if err.startswith(f"{x.id}:") else f"{x.id}: {err}")
                else:
                    n_ok += 1
                    n_oos += bool(row["out_of_support"])
            writer.flush()
    except KeyboardInterrupt:
        writer.close()
        bar.close()
        print(f"\ninterrupted: {n_ok} scored so far are kept in {printable(partial)}; rerun with --resume", file=sys.stderr)
        return None
    writer.close()
    bar.close()
    failures = [f"  {c:6d} x {printable(k)}   e.g. {printable(examples[k])}" for k, c in errors.most_common(10)]
    return {"scored": n_ok, "failed": n_fail, "out_of_support": n_oos, "kept": len(kept)}, failures


def _provenance_options(args: argparse.Namespace, det: Any) -> Any:
    """ProvenanceOptions for image bundles unless --no-provenance (False then); ValueError names a bad setting."""
    if args.no_provenance or det.modality != "image":
        return False
    from ..provenance import ProvenanceOptions, check_policy

    check_policy(args.provenance_policy or det.spec.get("provenance_policy"), "--provenance-policy")
    if args.trust_anchors is None:
        return ProvenanceOptions(policy=args.provenance_policy)
    return ProvenanceOptions(trust_anchors=args.trust_anchors, policy=args.provenance_policy)


def _error_row(err: str) -> dict[str, Any]:
    return {"probability": None, "label": None, "threshold_name": None, "threshold": None,
            "out_of_support": False, "support_reasons": [], "warnings": [], "error": err, "meta": {}}


def _error_kind(err: str, item: str = "") -> str:
    """Group similar errors for the summary: drop the location ('FILE line N: ', or the item's own name) and
    the tail after '('."""
    import re

    if item and err.startswith(f"{item}: "):
        err = err[len(item) + 2 :]
    head = re.sub(r"^.* (?:line|row) \d+: ", "", err.split(" (")[0], count=1)
    return head[:80]


def _print_notes(notes: ReadNotes, most: int = 20) -> None:
    """What the read passed over without a row: notes naming files (at most ``most``), skipped files."""
    for m in notes.messages[:most]:
        print(printable(m if m.startswith("warning:") else f"note: {m}"), file=sys.stderr)
    if len(notes.messages) > most:
        print(f"note: ... and {len(notes.messages) - most} more notes like these", file=sys.stderr)
    line = notes.skipped_line()
    if line:
        print(printable(f"note: {line}"), file=sys.stderr)
