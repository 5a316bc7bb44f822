"""The output of ``aigc score``: rows as JSONL or CSV that read back equal, and the run record beside them.

A row (JSONL: one object per line) holds ``item``, the verdict fields of :class:`aigc.Result`, ``meta`` (the
same keys on every row of a modality, None where unknown) and, with ``--keep-fields``, ``input`` (the kept
input columns). CSV holds the same row flattened: ``meta.<key>`` and ``input.<key>`` columns, list cells as
JSON (``["a; b", "c"]``), booleans ``true``/``false``, an empty cell for None, floats as Python writes them
(they parse back exactly). Meta keys a future version adds travel as one JSON object in ``meta.other``.
When the run reads provenance (image bundles, the default), rows gain ``provenance`` (see :mod:`aigc.provenance`);
CSV holds it as one JSON cell plus two derived columns for people, ``provenance.verdict`` and
``provenance.final_label``, which are not read back (the JSON cell is).
In CSV a kept field that is not a string is written as JSON and reads back as that text, and an empty cell
reads back as None (a CSV input's empty cells are kept as None for the same reason).
Kept values JSON has no type for (Parquet timestamps, dates, decimals, binary) are written as text: a
datetime, date or time in ISO 8601, a Decimal exactly as its digits, bytes as base64. A string UTF-8 cannot
encode (a lone surrogate, from a JSON input's ``"\\udc00"``) makes that row's JSON ASCII-escaped (it reads back
equal); in CSV it is written as the escape ``\\udc00`` and the row gets a warning.

The run record ``OUT.meta.json`` (written atomically) says what produced the rows: the bundle (name and
sha256 of its bundle.json, which lists the sha256 of every file), the variant, the threshold (name and
value) and every option that changes a score or a row. ``OUT.partial`` has its own record
(``OUT.partial.meta.json``) until the run finishes. ``--resume`` compares them and refuses on any difference.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import IO, Any

__all__ = ["FIELDS", "META_KEYS", "ScoreWriter", "provenance_summary", "read_run_record", "read_scores", "run_record_path",
           "write_run_record"]

FIELDS = ["item", "probability", "label", "threshold_name", "threshold", "out_of_support", "support_reasons",
          "warnings", "error"]
META_KEYS: dict[str, tuple[str, ...]] = {
    "image": ("width", "height", "format", "jpeg_quality"),
    "text": ("n_tokens", "n_chars", "script"),
}
_FLOATS = {"probability", "threshold"}
_LISTS = {"support_reasons", "warnings"}
_META_INTS = {"width", "height", "jpeg_quality", "n_tokens", "n_chars"}
RUN_RECORD_SUFFIX = ".meta.json"


def uniform_meta(meta: dict[str, Any] | None, modality: str) -> dict[str, Any]:
    """``meta`` with every key of ``META_KEYS[modality]`` first (None where unknown), then its other keys."""
    meta = meta or {}
    out = {k: meta.get(k) for k in META_KEYS[modality]}
    out.update({k: v for k, v in meta.items() if k not in out})
    return out


def canonical_row(item: str, result: dict[str, Any], modality: str, kept: dict[str, Any] | None) -> dict[str, Any]:
    """One output row: ``result`` is :meth:`aigc.Result.to_dict` (or an error row); meta keys made uniform."""
    row: dict[str, Any] = {"item": item, **{k: result.get(k) for k in FIELDS[1:]}}
    row["meta"] = uniform_meta(result.get("meta"), modality)
    for k in _LISTS:
        row[k] = list(row[k] or [])
    row["out_of_support"] = bool(row["out_of_support"])
    if kept is not None:
        row["input"] = dict(kept)
    if result.get("provenance") is not None:
        row["provenance"] = result["provenance"]
    return row


def csv_columns(modality: str, keep_fields: tuple[str, ...] | list[str], provenance: bool = False) -> list[str]:
    prov = ["provenance", "provenance.verdict", "provenance.final_label"] if provenance else []
    return [*FIELDS, *(f"meta.{k}" for k in META_KEYS[modality]), "meta.other", *(f"input.{k}" for k in keep_fields), *prov]


def _json_default(v: Any) -> Any:
    """JSON for the values Parquet (or a future reader) gives that JSON has no type for."""
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)  # exact; a float would round
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if hasattr(v, "item") and callable(v.item):  # numpy scalars
        return v.item()
    return str(v)


def _dumps(v: Any, ascii_only: bool = False) -> str:
    return json.dumps(v, ensure_ascii=ascii_only, default=_json_default)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    if isinstance(v, (list, dict)):
        return _dumps(v)
    if isinstance(v, (dt.datetime, dt.date, dt.time, decimal.Decimal, bytes, bytearray, memoryview, dt.timedelta)):
        return str(_json_default(v))
    return str(v)


def _escape_unencodable(cells: list[str]) -> tuple[list[str], bool]:
    """Cells with every character UTF-8 cannot encode (lone surrogates) written as a backslash escape."""
    out = [c.encode("utf-8", "backslashreplace").decode("utf-8") for c in cells]
    return out, out != cells


def _csv_cells(row: dict[str, Any], modality: str, columns: list[str]) -> list[str]:
    meta = dict(row.get("meta") or {})
    flat = {k: row.get(k) for k in FIELDS}
    for k in META_KEYS[modality]:
        flat[f"meta.{k}"] = meta.pop(k, None)
    flat["meta.other"] = meta or None
    for k, v in (row.get("input") or {}).items():
        flat[f"input.{k}"] = v
    prov = row.get("provenance")
    if prov is not None:
        flat["provenance"] = prov
        flat["provenance.verdict"], flat["provenance.final_label"] = provenance_summary(prov)
    return [_cell(flat.get(c)) for c in columns]


def provenance_summary(prov: dict[str, Any]) -> tuple[Any, Any]:
    """A row's provenance part reduced to the two values people filter on: its ``verdict`` and the policy's
    final label (``decision.label``); None where absent. The CSV's ``provenance.verdict`` /
    ``provenance.final_label`` and Spark's ``provenance_verdict`` / ``provenance_final_label``."""
    return prov.get("verdict"), (prov.get("decision") or {}).get("label")


def _parse_csv_row(cells: dict[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    kept: dict[str, Any] | None = None
    for k, s in cells.items():
        if k in _FLOATS:
            row[k] = float(s) if s else None
        elif k in _LISTS:
            row[k] = json.loads(s) if s else []
        elif k == "out_of_support":
            row[k] = s == "true"
        elif k == "meta.other":
            meta.update(json.loads(s) if s else {})
        elif k.startswith("meta."):
            key = k[5:]
            meta[key] = None if s == "" else int(s) if key in _META_INTS else s
        elif k == "provenance":
            if s:
                row[k] = json.loads(s)
        elif k.startswith("provenance."):
            continue  # derived from the JSON cell, for people
        elif k.startswith("input."):
            kept = kept if kept is not None else {}
            kept[k[6:]] = s if s != "" else None
        else:
            row[k] = s if s != "" or k == "item" else None
    row["meta"] = meta
    if kept is not None:
        row["input"] = kept
    return row


def read_scores(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read an ``aigc score`` output (``.jsonl`` or ``.csv``, or its ``.partial``) back into rows equal to the
    JSONL rows.

    A partial last line (from an interrupted run) is ignored.
    """
    p = Path(path)
    if not p.exists():
        return []
    name = p.name[: -len(".partial")] if p.name.endswith(".partial") else p.name
    if name.lower().endswith(".csv"):
        with open(p, newline="", encoding="utf-8") as f:
            text = f.read()
        if text and not text.endswith("\n"):  # a last row cut by an interruption: it may parse, but wrongly
            text = text[: text.rfind("\n") + 1]
        return [_parse_csv_row(r) for r in csv.DictReader(io.StringIO(text, newline=""))
                if None not in r.values() and None not in r]
    rows = []
    with open(p, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a partial last line from an interrupted run
    return rows


class ScoreWriter:
    """Writes rows to ``path`` as ``fmt`` ("jsonl" or "csv"); CSV columns are fixed by modality and kept fields."""

    def __init__(self, path: Path, fmt: str, modality: str, keep_fields: tuple[str, ...] = (), provenance: bool = False) -> None:
        self.fh: IO[str] = open(path, "w", newline="", encoding="utf-8")
        self.fmt = fmt
        self.modality = modality
        self.columns = csv_columns(modality, keep_fields, provenance)
        self.csv = csv.writer(self.fh, lineterminator="\n") if fmt == "csv" else None
        if self.csv:
            self.csv.writerow(self.columns)

    def write(self, row: dict[str, Any]) -> None:
        """Write one row; a value UTF-8 cannot encode never fails the run (see the module's docstring)."""
        if self.csv:
            cells = _csv_cells(row, self.modality, self.columns)
            try:
                self.csv.writerow(cells)
            except UnicodeEncodeError:  # the text layer encodes the whole row before writing: nothing was written
                cells, _ = _escape_unencodable(cells)
                i = self.columns.index("warnings")
                warnings = [*(row.get("warnings") or []), "a value held characters UTF-8 cannot encode (lone "
                            "surrogates); they are written as backslash escapes"]
                cells[i] = _cell(warnings)
                self.csv.writerow(cells)
        else:
            line = _dumps(row)
            try:
                self.fh.write(line + "\n")
            except UnicodeEncodeError:
                self.fh.write(_dumps(row, ascii_only=True) + "\n")

    def flush(self) -> None:
        self.fh.flush()

    def close(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()


def run_record_path(out: Path) -> Path:
    return out.with_name(out.name + RUN_RECORD_SUFFIX)


def write_run_record(out: Path, record: dict[str, Any]) -> None:
    """Write ``OUT.meta.json`` atomically (a temporary file in the same folder, then a rename)."""
    target = run_record_path(out)
    fd, tmp = tempfile.mkstemp(prefix=".aigc-run.", suffix=".json", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())  # mkstemp makes 0600; the record goes with the scores, as readable as they are
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_mode() -> int:
    """0666 less the umask: the mode ``open()`` gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def read_run_record(out: Path) -> dict[str, Any] | None:
    """The run record beside ``out``, or None when there is none (ValueError when it is unreadable)."""
    p = run_record_path(out)
    if not p.exists():
        return None
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: not a readable run record ({e})") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("settings"), dict):
        raise ValueError(f"{p}: not a run record of aigc score (no 'settings')")
    return rec
