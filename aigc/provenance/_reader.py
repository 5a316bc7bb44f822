"""Read the provenance of one image (path or bytes): split its blocks, read each, summarize. Never raises."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._c2pa import c2pa_findings
from ._container import split_blocks
from ._exif import exif_findings
from ._generators import text_findings
from ._types import Finding, ProvenanceOptions, clip
from ._verdict import DEFAULT_POLICY, check_policy, decide, summarize
from ._xmp import xmp_findings

__all__ = ["Provenance", "attach_provenance", "read_all", "read_provenance", "start_reading"]


@dataclass
class Provenance:
    """What one file declares about its origin. ``verdict`` is one of :data:`VERDICTS`; ``basis`` names the
    blocks that carried it; ``findings`` lists every fact read with its block and field; ``c2pa`` summarizes
    the manifest store (None when the file has none); ``decision`` is filled by :func:`attach_provenance`.
    ``status``: ``read`` (a JPEG, PNG or WebP walked), ``partial`` (another image format: only the EXIF and XMP
    PIL exposes; C2PA not read) or ``not_read`` (not an image this reader knows, or unreadable: a finding with
    ``error`` says why). A verdict ``none`` with a status other than ``read`` says nothing about the metadata."""

    format: str
    status: str = "read"
    verdict: str = "none"
    basis: list[str] = field(default_factory=list)
    conflict: bool = False
    findings: list[Finding] = field(default_factory=list)
    c2pa: dict[str, Any] | None = None
    decision: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"verdict": self.verdict, "basis": self.basis, "conflict": self.conflict, "format": self.format,
                             "status": self.status, "c2pa": self.c2pa, "findings": [f.to_dict() for f in self.findings]}  # fmt: skip
        if self.decision is not None:
            d["decision"] = self.decision
        return d


def _load(item: Any, opts: ProvenanceOptions) -> tuple[bytes | None, Finding | None]:
    lim = opts.limits.file_bytes
    if isinstance(item, (bytes, bytearray, memoryview)):
        data = bytes(item)
        if len(data) > lim:
            return None, Finding("file", "bytes", "size", str(len(data)), error=f"over the {lim}-byte limit; not read")
        return data, None
    p = Path(item)
    try:
        size = p.stat().st_size
        if size > lim:
            return None, Finding("file", str(p), "size", str(size), error=f"over the {lim}-byte limit; not read")
        with open(p, "rb") as f:
            return f.read(lim + 1)[:lim], None
    except OSError as e:
        return None, Finding("file", str(p), "", "", error=f"cannot read ({e.strerror or e})")


def _read(data: bytes, opts: ProvenanceOptions) -> Provenance:
    blocks = split_blocks(data, opts.limits)
    prov = Provenance(blocks.format, blocks.status)
    found: list[Finding] = [Finding("file", where, "", "", error=what) for where, what in blocks.problems]
    if blocks.note:
        found.append(Finding("file", blocks.format.upper(), "format", blocks.format, None, blocks.note))
    found += xmp_findings(blocks.xmp)
    found += exif_findings(blocks.exif, opts.limits)
    found += text_findings(blocks.text)
    if blocks.c2pa:
        where = blocks.c2pa[0]
        if blocks.c2pa_bytes > opts.limits.c2pa_bytes:
            found.append(Finding("c2pa", where, "validation_state", "not_validated",
                                 error=f"manifest store of {blocks.c2pa_bytes} bytes is over the {opts.limits.c2pa_bytes}-byte limit"))  # fmt: skip
            prov.c2pa = {"state": "not_validated"}
        else:
            c2, prov.c2pa = c2pa_findings(data, blocks.format, where, opts)
            found += c2
    elif any(f.field == "dcterms:provenance" and f.value.startswith(("http://", "https://")) for f in found):
        url = next(f.value for f in found if f.field == "dcterms:provenance")
        found.append(Finding("c2pa", "XMP dcterms:provenance", "validation_state", "remote_not_fetched", None,
                             f"remote manifest at {clip(url, 200)}; not fetched (no network)"))  # fmt: skip
        prov.c2pa = {"state": "remote_not_fetched", "remote_url": url}
    prov.findings = found
    s = summarize(found, (prov.c2pa or {}).get("state"))
    prov.verdict, prov.basis, prov.conflict = s["verdict"], s["basis"], s["conflict"]
    return prov


def read_provenance(item: str | os.PathLike[str] | bytes, options: ProvenanceOptions | None = None) -> Provenance | None:
    """The provenance of an image given as a path or bytes (JPEG, PNG, WebP; other image formats give the EXIF
    and XMP PIL exposes, with ``status`` "partial"; a file that is not an image is ``status`` "not_read"); None for other item types (PIL images, arrays carry no file metadata). Never raises: an
    unreadable file or a malformed block becomes a finding with ``error`` set."""
    if not isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)):
        return None
    opts = options or ProvenanceOptions()
    data, problem = _load(item, opts)
    if data is None:
        return Provenance("unknown", "not_read", findings=[problem] if problem else [])
    try:
        return _read(data, opts)
    except Exception as e:  # the last guard: one hostile file never takes a batch down
        return Provenance("unknown", "not_read", findings=[Finding("file", "", "", "", error=f"provenance reader failed ({type(e).__name__}: {clip(str(e), 160)})")])


def read_all(items: Sequence[Any], options: ProvenanceOptions | bool) -> list[Provenance | None]:
    """:func:`read_provenance` of each item (None for items that are not paths or bytes)."""
    opts = options if isinstance(options, ProvenanceOptions) else ProvenanceOptions()
    return [read_provenance(x, opts) for x in items]


def start_reading(items: Sequence[Any], options: ProvenanceOptions | bool) -> Future[list[Provenance | None]]:
    """:func:`read_all` in a background thread, so that reading overlaps decoding and the model (C2PA validation
    runs in native code without the GIL). Collect with :func:`attach_provenance`."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aigc-provenance")
    fut = pool.submit(read_all, items, options)
    pool.shutdown(wait=False)
    return fut


def attach_provenance(results: Sequence[Any], items: Sequence[Any] | Future[list[Provenance | None]],
                      options: ProvenanceOptions | bool, labels: list[str], bundle_policy: str | None = None) -> None:  # fmt: skip
    """Fill ``results[i].provenance`` (a dict) for image items given as paths or bytes, with the decision of the
    policy (``options.policy``, else ``bundle_policy``, else ``declared_ai_first``). Other items get None.
    ``items``: the items, or the future of :func:`start_reading` on them."""
    opts = options if isinstance(options, ProvenanceOptions) else ProvenanceOptions()
    policy = opts.policy or bundle_policy or DEFAULT_POLICY
    check_policy(policy, "ProvenanceOptions.policy" if opts.policy else "bundle.json provenance_policy")
    if isinstance(items, Future):
        provs = items.result()
    else:
        provs = read_all([items] if isinstance(items, (str, bytes)) else items, opts)
    for r, prov in zip(results, provs, strict=True):
        if prov is None:
            continue
        prov.decision = decide({"verdict": prov.verdict, "basis": prov.basis, "status": prov.status}, r.label, labels, policy)
        r.provenance = prov.to_dict()
