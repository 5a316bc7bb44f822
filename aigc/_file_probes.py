"""What a file is, and whether it changed, without reading its rows.

The format a name's extension says (:data:`FORMATS`, :func:`detect_format`, ``.gz`` allowed), the format its
content says (:func:`sniff_format`, for standard input; :func:`looks_like_image`, by magic bytes), whether it
holds JSON lines under another name (:func:`first_line_is_json_object`, :func:`leading_lines_are_json_objects`),
and its identity (:func:`file_identity`, :func:`identity_change`: size, modification time, a digest of its head
and tail), which says on a resumed run whether an input changed. :func:`_open_binary` opens a file for bytes,
gzip decompressed by its magic bytes whatever the name; the readers of :mod:`aigc._readers` open files with it
too, and catch :data:`_STREAM_ERRORS` as these probes do.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import os
import zlib
from pathlib import Path
from typing import IO, Any

# format -> extensions (lower case, without the optional trailing .gz)
FORMATS: dict[str, tuple[str, ...]] = {
    "jsonl": (".jsonl", ".ndjson"),
    "json": (".json",),
    "csv": (".csv",),
    "tsv": (".tsv", ".tab"),
    "parquet": (".parquet", ".pq"),
    "text": (".txt", ".md"),
}
_BY_EXT = {ext: fmt for fmt, exts in FORMATS.items() for ext in exts}
_GZIP_MAGIC = b"\x1f\x8b"
_IMAGE_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"GIF8": "GIF", b"BM": "BMP", b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}
_IDENTITY_CHUNK = 1 << 20
_STREAM_ERRORS = (EOFError, OSError, zlib.error)


def split_gz(name: str) -> tuple[str, bool]:
    """``'a.JSONL.gz'`` -> (``'a.jsonl'``, True): the lower-cased name without ``.gz`` and whether it had it."""
    low = name.lower()
    return (low[:-3], True) if low.endswith(".gz") else (low, False)


def detect_format(name: str) -> str | None:
    """The format named by a file's extension (case-insensitive, ``.gz`` allowed), or None."""
    base, _ = split_gz(name)
    dot = base.rfind(".")
    return _BY_EXT.get(base[dot:]) if dot >= 0 else None


def looks_like_image(head: bytes) -> str | None:
    """The image format whose magic bytes start ``head`` (JPEG, PNG, GIF, BMP, TIFF, WebP, HEIC/AVIF), or None."""
    for magic, fmt in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc", b"avif"):
        return "AVIF" if head[8:12] == b"avif" else "HEIC"
    return None


def _open_binary(path: Path) -> IO[bytes]:
    """Open a file for reading bytes; gzip data (by its magic bytes, whatever the name) is decompressed."""
    fh = open(path, "rb")
    if fh.read(2) == _GZIP_MAGIC:
        fh.seek(0)
        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    fh.seek(0)
    return fh


def sniff_format(path: Path) -> str | None:
    """Guess a record format from content (for standard input): Parquet, JSON lines, a JSON array; else None."""
    with _open_binary(path) as fh:
        head = fh.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    s = head.lstrip(codecs.BOM_UTF8).lstrip()
    if s.startswith(b"{"):
        return "jsonl"
    if s.startswith(b"["):
        return "json"
    return None


def leading_lines_are_json_objects(path: Path, k: int = 5) -> bool:
    """True when the file's first ``k`` non-empty lines (or all of them, when fewer) each parse as a JSON
    object: JSON lines, whatever the file is named."""
    seen = 0
    try:
        with _open_binary(path) as fh:
            for raw in fh:
                if raw.strip():
                    if not isinstance(json.loads(raw.decode("utf-8-sig")), dict):
                        return False
                    seen += 1
                    if seen == k:
                        break
    except (ValueError, *_STREAM_ERRORS):
        return False
    return seen > 0


def file_identity(path: Path, digest: bool = True) -> dict[str, Any]:
    """What says whether a file changed: its size, its modification time (ns) and, with ``digest``, the
    sha256 of its first and last MiB (the whole file when it is at most 2 MiB), so a 10 GB input costs two
    reads of 1 MiB. OSError when the file cannot be read."""
    st = os.stat(path)
    if not digest:
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(_IDENTITY_CHUNK))
        if st.st_size > _IDENTITY_CHUNK:
            fh.seek(max(_IDENTITY_CHUNK, st.st_size - _IDENTITY_CHUNK))
            h.update(fh.read(_IDENTITY_CHUNK))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_head_tail": h.hexdigest()}


def identity_change(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """How a file changed between two :func:`file_identity` records (None: unchanged). A new modification
    time counts unless the digest covers the whole file (at most 2 MiB) and is unchanged."""
    if old.get("size") != new.get("size"):
        return f"its size changed from {old.get('size')} to {new.get('size')} bytes"
    if old.get("sha256_head_tail") != new.get("sha256_head_tail"):
        return "its content changed"
    if old.get("mtime_ns") != new.get("mtime_ns"):
        whole = new.get("sha256_head_tail") is not None and int(new.get("size") or 0) <= 2 * _IDENTITY_CHUNK
        if not whole:
            return "it was modified (same size, new modification time; its middle may differ)"
    return None


def first_line_is_json_object(path: Path) -> bool:
    """True when the file's first non-empty line parses as a JSON object (JSON lines under another name)."""
    try:
        with _open_binary(path) as fh:
            for raw in fh:
                if raw.strip():
                    return isinstance(json.loads(raw.decode("utf-8-sig")), dict)
    except (ValueError, *_STREAM_ERRORS):
        return False
    return False
