"""``aigc provenance FILE|FOLDER... [--format table|json|jsonl]``: what image files declare about their origin.

Prints each file's verdict and its findings (C2PA, XMP/IPTC, EXIF, PNG generator chunks), each with the block
and field it came from. No bundle, no model, no network. Exit codes: 0 read (whatever was found); 2 bad
arguments; 1 nothing could be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="image files, folders (recursive) or a .txt list of image paths")
    p.add_argument("--format", choices=("table", "json", "jsonl"), default="table", help="output format (default: table)")
    p.add_argument("--out", default=None, help="write to this file instead of stdout")
    p.add_argument("--trust-anchors", default=None, help="PEM file of C2PA trust anchors (default: $AIGC_C2PA_TRUST_ANCHORS)")
    p.add_argument("--no-c2pa", action="store_true", help="do not validate C2PA stores (they are still reported present)")


def _table(rows: list[dict[str, Any]], out: TextIO) -> None:
    for r in rows:
        c2 = (r.get("c2pa") or {}).get("state")
        head = f"{r['item']}: {r['verdict']}"
        if r.get("basis"):
            head += f" (from {', '.join(r['basis'])})"
        if c2:
            head += f"; C2PA {c2}"
        if r.get("conflict"):
            head += "; CONFLICT: both AI generation and a capture are declared"
        print(head, file=out)
        for f in r.get("findings", []):
            where = f"{f['source']:8s} {f['block']}" + (f" / {f['field']}" if f.get("field") else "")
            what = f"ERROR {f['error']}" if f.get("error") else f"= {f['value']}"
            sig = f"  [{f['signal']}]" if f.get("signal") else ""
            note = f"  ({f['note']})" if f.get("note") else ""
            print(f"    {where} {what}{sig}{note}", file=out)
        if r.get("error"):
            print(f"    ERROR {r['error']}", file=out)
        elif not r.get("findings"):
            print("    (no provenance metadata; this proves nothing: platforms strip metadata)", file=out)


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
    rows: list[dict[str, Any]] = []
    n_read = 0
    for x in iter_inputs(args.inputs, "image"):
        if x.error is not None or x.payload is None:
            rows.append({"item": x.id, "verdict": "none", "basis": [], "findings": [], "error": x.error})
            continue
        prov = read_provenance(x.payload, opts)
        row = {"item": x.id, **(prov.to_dict() if prov else {"verdict": "none", "findings": []})}
        unread = prov is None or (prov.format == "unknown" and any(f.error for f in prov.findings))
        n_read += not unread
        rows.append(row)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    try:
        if args.format == "json":
            json.dump(rows, out, ensure_ascii=False, indent=1)
            out.write("\n")
        elif args.format == "jsonl":
            for r in rows:
                out.write(json.dumps(r, ensure_ascii=False) + "\n")
        else:
            _table(rows, out)
    finally:
        if args.out:
            out.close()
    if not rows:
        print("aigc provenance: no image found in the inputs", file=sys.stderr)
        return 1
    return 0 if n_read else 1
