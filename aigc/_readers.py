"""Readers of record files (JSONL/NDJSON, a JSON array, CSV/TSV, Parquet, each optionally gzipped) and plain text.

A reader yields :class:`Record` objects, one per row, each numbered the way a person finds it again: the
physical line for JSONL and CSV/TSV (the line a row starts on; a CSV header is line 1), the 1-based row for
Parquet and JSON arrays. A row that cannot be read is a Record with ``error`` set, and the rest of the file is
still read; only a file that cannot be read at all (or a truncated gzip stream) ends early, with an error
record that says so. Problems with the caller's request (a column the header lacks, pyarrow missing) raise
:class:`InputError`: they are argument errors, reported before any output is written.

Every text reader accepts a UTF-8 byte-order mark. What a file is and whether it changed (its format by
extension or by content, JSON lines under another name, its identity) is :mod:`aigc._file_probes`, whose
functions are importable from here too.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
import shutil
import sys
import tempfile
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._file_probes import (  # noqa: F401  (re-exported: aigc._inputs, aigc.cli._score and tests import them from here)
    _GZIP_MAGIC,
    _STREAM_ERRORS,
    FORMATS,
    _open_binary,
    detect_format,
    file_identity,
    first_line_is_json_object,
    identity_change,
    leading_lines_are_json_objects,
    looks_like_image,
    sniff_format,
    split_gz,
)

__all__ = [
    "FORMATS",
    "InputError",
    "Record",
    "detect_format",
    "iter_records",
    "looks_like_image",
    "read_document",
    "spool_stdin",
]

FORMATS_EXTRA_HINT = "pip install 'aigc-sentinel[formats]'"


class InputError(ValueError):
    """The request cannot be served as asked (missing column, missing optional package, unknown format)."""


@dataclass
class Record:
    """One row of a record file: ``n`` is its line or row number (see ``unit``); ``fields`` is None on error."""

    n: int
    unit: str  # "line" or "row"
    fields: dict[str, Any] | None
    error: str | None = None


def spool_stdin() -> Path:
    """Copy standard input into a temporary file (read twice: once to count, once to score) and return it."""
    import atexit

    tmp = tempfile.NamedTemporaryFile(prefix="aigc-stdin-", delete=False)
    with tmp:
        shutil.copyfileobj(sys.stdin.buffer, tmp)
    path = Path(tmp.name)
    atexit.register(path.unlink, missing_ok=True)
    return path


def _stream_error(path: Path, unit: str, n: int, e: Exception) -> Record:
    what = "truncated or corrupt gzip data" if isinstance(e, (EOFError, zlib.error, gzip.BadGzipFile)) else "read error"
    return Record(n, unit, None, f"{what} after {unit} {n - 1} ({e}); the rest of {path} was not read")


def _iter_jsonl(path: Path) -> Iterator[Record]:
    with _open_binary(path) as fh:
        n = 0
        try:
            for n, raw in enumerate(fh, start=1):
                if n == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                if not raw.strip():
                    continue
                yield _json_record(raw, n, "line")
        except _STREAM_ERRORS as e:
            yield _stream_error(path, "line", n + 1, e)


def _json_record(raw: bytes, n: int, unit: str) -> Record:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Record(n, unit, None, f"invalid UTF-8 at byte {e.start} ({e.reason})")
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        return Record(n, unit, None, f"not valid JSON ({e.msg} at column {e.colno})")
    if not isinstance(obj, dict):
        return Record(n, unit, None, f"expected a JSON object, found {type(obj).__name__}")
    return Record(n, unit, obj)


def _iter_json_array(path: Path) -> Iterator[Record]:
    """A ``.json`` file: an array of objects (rows numbered from 1), or else JSON lines."""
    if sniff_format(path) != "json":
        yield from _iter_jsonl(path)
        return
    try:
        with _open_binary(path) as fh:
            data = json.loads(fh.read().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, *_STREAM_ERRORS) as e:
        yield Record(1, "row", None, f"not a readable JSON array ({e})")
        return
    if not isinstance(data, list):
        yield Record(1, "row", None, f"expected an array of objects, found {type(data).__name__}")
        return
    for n, obj in enumerate(data, start=1):
        if isinstance(obj, dict):
            yield Record(n, "row", obj)
        else:
            yield Record(n, "row", None, f"expected a JSON object, found {type(obj).__name__}")


def _lines_from(path: Path, first: int, bad: dict[int, str]) -> Generator[tuple[int, str], None, None]:
    """Decoded physical lines of ``path`` from line ``first`` on, with their numbers; a line that is not
    UTF-8 is replaced and noted in ``bad``."""
    with _open_binary(path) as fh:
        for n, raw in enumerate(fh, start=1):
            if n < first:
                continue
            if n == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad[n] = f"invalid UTF-8 at byte {e.start} ({e.reason})"
                yield n, raw.decode("utf-8", errors="replace")


class _RowLines:
    """Feeds a csv reader lines and keeps those of the row being read (up to ``CAP`` characters), so that
    after a parse error reading can start again at the line after the row's first line."""

    CAP = 32 << 20  # a longer row is re-read from the file instead

    def __init__(self, lines: Iterator[tuple[int, str]]) -> None:
        self.lines = lines
        self.row: list[tuple[int, str]] = []
        self.size = 0
        self.overflow = False
        self.last = 0  # the number of the last line handed out

    def __iter__(self) -> Iterator[str]:
        for n, s in self.lines:
            self.last = n
            if not self.overflow:
                self.row.append((n, s))
                self.size += len(s)
                if self.size > self.CAP:
                    self.overflow, self.row = True, []
            yield s

    def next_row(self) -> None:
        self.row, self.size, self.overflow = [], 0, False


def _check_header(path: Path, kind: str, header: list[str], need: list[str]) -> None:
    missing = [c for c in need if c not in header]
    if missing:
        raise InputError(f"{path}: the {kind} header has no column {missing[0]!r} (columns: {header[:20]})")
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise InputError(f"{path}: the {kind} header repeats column(s) {dup}")


def _delimited_record(n: int, end: int, cells: list[str], header: list[str], bad: dict[int, str]) -> Record:
    """The row of ``cells`` on lines ``n`` to ``end - 1``."""
    err = next((f"line {k}: {bad[k]}" if k != n else bad[k] for k in range(n, end) if k in bad), None)
    if err:
        return Record(n, "line", None, err)
    if len(cells) != len(header):
        return Record(n, "line", None, f"{len(cells)} cells, the header has {len(header)} (an unquoted delimiter or quote?)")
    return Record(n, "line", dict(zip(header, cells, strict=True)))


def _parse_error(kind: str, e: csv.Error, start: int, last: int) -> str:
    if "unexpected end of data" in str(e):
        return (f"unterminated quote: a quoted field of the row starting on this line never closes (it would run "
                f"to the last line, {last}); the lines after this one are read as rows of their own")
    if last > start:
        return f"{kind} parse error ({e}) in the row running to line {last}; the lines after this one are read as rows"
    return f"{kind} parse error ({e})"


def _iter_delimited(path: Path, delimiter: str, need: list[str]) -> Iterator[Record]:
    """CSV/TSV with a header row. ``need``: columns the caller reads; a header without one is an InputError.

    CSV is read strictly: a row whose quoting is broken (a quote never closed, characters after a closing
    quote) is an error record, and reading goes on at the line after that row's first line, so no row is lost
    without a word. TSV is read without quote processing: a quote is a character like any other and a row is
    one line (tab-separated files do not quote; a tab or newline cannot be inside a cell)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    kind = "TSV" if delimiter == "\t" else "CSV"
    dialect: dict[str, Any] = {"delimiter": delimiter, "strict": True}
    if kind == "TSV":
        dialect.update(quoting=csv.QUOTE_NONE, quotechar=None)
    bad: dict[int, str] = {}
    header: list[str] | None = None
    base = _lines_from(path, 1, bad)
    lines: Iterator[tuple[int, str]] = base
    start = 1
    try:
        while True:
            src = _RowLines(lines)
            reader = csv.reader(src, **dialect)
            try:
                if header is None:
                    header = next(reader, None)
                    if header is None:
                        return
                    _check_header(path, kind, header, need)
                    start = src.last + 1
                    src.next_row()
                for cells in reader:
                    n, start = start, src.last + 1
                    src.next_row()
                    if cells:
                        yield _delimited_record(n, start, cells, header, bad)
                return
            except csv.Error as e:
                if header is None:
                    yield Record(1, "line", None, f"{kind} parse error in the header ({e}); {path} was not read")
                    return
                yield Record(start, "line", None, _parse_error(kind, e, start, src.last))
                if src.overflow:  # the row's lines were not all kept: read the file again from the next line
                    base.close()
                    base = lines = _lines_from(path, start + 1, bad)
                else:
                    lines = itertools.chain(src.row[1:], lines)
                start += 1
    except _STREAM_ERRORS as e:
        yield _stream_error(path, "line", start, e)
    finally:
        base.close()


def _parquet_source(path: Path) -> Any:
    with open(path, "rb") as fh:
        if fh.read(2) != _GZIP_MAGIC:
            return str(path)
    with gzip.open(path, "rb") as gz:  # Parquet needs random access: a gzipped one is read into memory
        return io.BytesIO(gz.read())


def _iter_parquet(path: Path, need: list[str]) -> Iterator[Record]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"{path}: reading Parquet needs pyarrow: {FORMATS_EXTRA_HINT}") from None
    try:
        pf = pq.ParquetFile(_parquet_source(path))
    except Exception as e:
        yield Record(1, "row", None, f"not a readable Parquet file ({type(e).__name__}: {e})")
        return
    names = pf.schema_arrow.names
    missing = [c for c in need if c not in names]
    if missing:
        raise InputError(f"{path}: the Parquet schema has no column {missing[0]!r} (columns: {names[:20]})")
    n = 0
    try:
        for batch in pf.iter_batches(batch_size=1024, columns=list(dict.fromkeys(need)) or None):
            for row in batch.to_pylist():
                n += 1
                yield Record(n, "row", row)
    except Exception as e:
        yield Record(n + 1, "row", None, f"Parquet read error ({type(e).__name__}: {e}); the rest of {path} was not read")


def iter_records(path: Path, fmt: str, need: list[str]) -> Iterator[Record]:
    """Rows of a record file of format ``fmt`` (jsonl, json, csv, tsv, parquet). ``need``: the columns the
    caller reads; CSV/TSV and Parquet check them against the header and raise :class:`InputError`."""
    if fmt == "jsonl":
        return _iter_jsonl(path)
    if fmt == "json":
        return _iter_json_array(path)
    if fmt in ("csv", "tsv"):
        return _iter_delimited(path, "\t" if fmt == "tsv" else ",", need)
    if fmt == "parquet":
        return _iter_parquet(path, need)
    raise InputError(f"{path}: {fmt!r} is not a record format")


def read_document(path: Path) -> tuple[str | None, str | None]:
    """A whole file as one text: (text, None) or (None, error). A BOM is dropped; gzip is decompressed.
    A file that is not UTF-8 but starts like an image says so."""
    try:
        with _open_binary(path) as fh:
            data = fh.read()
    except _STREAM_ERRORS as e:
        return None, f"cannot read ({getattr(e, 'strerror', None) or e})"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as e:
        img = looks_like_image(data[:16])
        if img:
            return None, f"this is a text bundle; the file holds {img} image data, not text"
        return None, f"invalid UTF-8 at byte {e.start} ({e.reason})"
