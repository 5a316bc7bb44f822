"""``aigc provenance FILE|FOLDER... [--format table|json|jsonl]``: what image files declare about their origin.

Prints each file's verdict and its findings (C2PA, XMP/IPTC, EXIF, PNG generator chunks), each with the block
and field it came from. No bundle, no model, no network. Exit codes: 0 read (whatever was found); 2 bad
arguments (also: ``--out`` exists without ``--overwrite``, or is one of the inputs); 1 nothing could be read.

``--out`` is written atomically (a temporary file in the same folder, then a rename), never over an input.
In the table every value read from a file is shown with its control characters escaped (a newline in a
metadata field cannot forge a line of the report); JSON and JSONL keep the values exact.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from .._printable import printable as safe

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="image files, folders (recursive) or a .txt list of image paths")
    p.add_argument("--format", choices=("table", "json", "jsonl"), default="table", help="output format (default: table)")
    p.add_argument("--out", default=None, help="write to this file instead of stdout (written atomically; "
                   "never one of the inputs)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--trust-anchors", default=None, help="PEM file of C2PA trust anchors (default: $AIGC_C2PA_TRUST_ANCHORS)")
    p.add_argument("--no-c2pa", action="store_true", help="do not validate C2PA stores (they are still reported present)")


def _table(rows: list[dict[str, Any]], out: TextIO) -> None:
    for r in rows:
        c2 = (r.get("c2pa") or {}).get("state")
        status = r.get("status", "read")
        verdict = f"{r['verdict']}" if status != "not_read" else "not read"
        head = f"{safe(r['item'])}: {safe(verdict)}"
        if r.get("basis"):
            head += f" (from {', '.join(safe(b) for b in r['basis'])})"
        if c2:
            head += f"; C2PA {safe(c2)}"
        if r.get("conflict"):
            head += "; CONFLICT: both AI generation and a capture are declared"
        if status == "partial":
            head += f"; format {safe(str(r.get('format', '')).upper())}: read in part (no C2PA)"
        print(head, file=out)
        for f in r.get("findings", []):
            where = f"{safe(f['source']):8s} {safe(f['block'])}" + (f" / {safe(f['field'])}" if f.get("field") else "")
            what = f"ERROR {safe(f['error'])}" if f.get("error") else f"= {safe(f['value'])}"
            sig = f"  [{safe(f['signal'])}]" if f.get("signal") else ""
            note = f"  ({safe(f['note'])})" if f.get("note") else ""
            print(f"    {where} {what}{sig}{note}", file=out)
        if r.get("error"):
            print(f"    ERROR {safe(r['error'])}", file=out)
        elif not r.get("findings") and status == "read":
            print("    (no provenance metadata; this proves nothing: platforms strip metadata)", file=out)
        elif status != "read" and not r.get("findings"):
            print(f"    (format {safe(str(r.get('format', '?')).upper())}: provenance not read)", file=out)


def _check_out(out: Path, overwrite: bool, inputs: list[str], items: list[Any]) -> str | None:
    """Why ``out`` must not be written (it exists and ``overwrite`` is off; it is an input, a file listed or
    found in one, also through a link), or None."""
    from .._inputs import _file_id

    if not out.exists():
        return None
    if out.is_dir():
        return f"--out {out} is a folder"
    oid = _file_id(out)
    for p in [*inputs, *(x.payload for x in items if x.payload)]:
        try:
            if Path(p).is_file() and _file_id(Path(p)) == oid:
                return f"--out {out} is one of the inputs ({p}, or a link to it): write the output elsewhere"
        except OSError:
            continue
    if not overwrite:
        return f"--out {out} exists; pass --overwrite to replace it"
    return None


def _write_atomic(out: Path, text: str) -> None:
    """``text`` to ``out`` through a temporary file in the same folder and a rename, with the mode a plain
    ``open(..., "w")`` would give (0666 less the umask)."""
    from .._bundle import _umask

    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    """Run ``aigc provenance``; returns the exit code."""
    from .._inputs import iter_inputs
    from ..provenance import ProvenanceOptions, read_provenance

    try:
        opts = ProvenanceOptions(trust_anchors=args.trust_anchors, c2pa=not args.no_c2pa) if args.trust_anchors \
            else ProvenanceOptions(c2pa=not args.no_c2pa)  # fmt: skip
    except ValueError as e:
        print(f"aigc provenance: {e}", file=sys.stderr)
        return 2
    items = list(iter_inputs(args.inputs, "image"))
    if args.out:
        why = _check_out(Path(args.out), args.overwrite, [str(x) for x in args.inputs], items)
        if why:
            print(f"aigc provenance: {why}", file=sys.stderr)
            return 2
    rows: list[dict[str, Any]] = []
    n_read = 0
    for x in items:
        if x.error is not None or x.payload is None:
            rows.append({"item": x.id, "verdict": "none", "status": "not_read", "basis": [], "findings": [], "error": x.error})
            continue
        prov = read_provenance(x.payload, opts)
        row = {"item": x.id, **(prov.to_dict() if prov else {"verdict": "none", "status": "not_read", "findings": []})}
        n_read += prov is not None and prov.status != "not_read"
        rows.append(row)
    out = io.StringIO() if args.out else sys.stdout
    if args.format == "json":
        json.dump(rows, out, ensure_ascii=False, indent=1)
        out.write("\n")
    elif args.format == "jsonl":
        for r in rows:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
    else:
        _table(rows, out)
    if args.out:
        assert isinstance(out, io.StringIO)
        _write_atomic(Path(args.out), out.getvalue())
    if not rows:
        print("aigc provenance: no image found in the inputs", file=sys.stderr)
        return 1
    return 0 if n_read else 1
