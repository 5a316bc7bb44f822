"""Reading data sources into samples (``training.data`` splits them).

A sample is a plain dict ``{"item", "label", "generator", "domain", "source"}`` (``hf:`` image datasets add
``"image"``). Rows are named the way a person finds them again: ``path line N`` for JSONL and CSV/TSV (the
physical line a row starts on; a CSV header is line 1), ``path row N`` (from 1) for Parquet, JSON arrays and
``hf:`` datasets. Anything that cannot be read as asked is a :class:`DataError` naming the file and row:
a row whose cell count differs from the header, a quote never closed, bytes that are not UTF-8 (a byte-order
mark is accepted), a JSONL line that is not an object, an empty text, a label that is not 0/1 or mapped by
``data.labels`` (JSON booleans included). Private keys (``_where``: the row's location, ``_col_<name>``:
columns that splitting reads) are dropped by ``make_splits``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from training.config import DataConfig

__all__ = [
    "IMAGE_EXTENSIONS",
    "DataError",
    "load_source",
    "read_hf",
    "read_image_folder",
    "read_table",
    "rows_from_records",
]

log = logging.getLogger("training.data")

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
_REAL_DIRS = {"real", "0_real"}
_AI_DIRS = {"ai", "1_fake", "fake"}


class DataError(ValueError):
    """The data cannot be read or split as configured; the message names the file, row or key."""


# ------------------------------------------------------------------------------------------- images
def read_image_folder(root: str | Path) -> list[dict[str, Any]]:
    """Every image under ``real``/``0_real`` (label 0) and ``ai``/``1_fake`` (label 1) folders below ``root``.

    ``generator``: the first folder below the AI folder (``ai/sdxl/x.png`` -> ``sdxl``), else the folder
    above the class folder (CNNDetection's ``progan/car/1_fake``: ``progan``), else ``unknown``.
    ``domain``: the first folder below the real folder, else the folder above the class folder, else
    ``unknown``. ``source``: the root's name. Files of other extensions are skipped and counted in a warning.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {str(root)!r} does not exist")
    rows: list[dict[str, Any]] = []
    class_dirs = sorted(d for d in root.rglob("*") if d.is_dir() and d.name.lower() in _REAL_DIRS | _AI_DIRS)
    if root.name.lower() in _REAL_DIRS | _AI_DIRS:
        class_dirs = [root]
    if not class_dirs:
        raise DataError(
            f"{root}: no real/ + ai/ (or 0_real/ + 1_fake/) folders found; put real images in real/ and "
            "AI-generated ones in ai/<generator>/"
        )
    skipped: Counter[str] = Counter()
    for cd in class_dirs:
        # skip class folders nested inside another class folder (ai/real_looking/...)
        if any(p.name.lower() in _REAL_DIRS | _AI_DIRS for p in cd.relative_to(root).parents if p != Path(".")):
            continue
        label = 0 if cd.name.lower() in _REAL_DIRS else 1
        above = cd.parent.relative_to(root).parts if cd.parent != root else ()
        for f in sorted(cd.rglob("*")):
            if not f.is_file():
                continue
            if f.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped[f.suffix.lower() or f.name] += 1
                continue
            below = f.relative_to(cd).parts[:-1]
            tag = below[0] if below else (above[0] if above else "unknown")
            rows.append({
                "item": str(f),
                "label": label,
                "generator": (tag if label == 1 else "real"),
                "domain": (tag if label == 0 else (above[-1] if above else "unknown")),
                "source": root.name,
            })
    if skipped:
        kinds = ", ".join(f"{k}: {n}" for k, n in skipped.most_common(8))
        log.warning("%s: skipped %d files in the class folders that are not images by extension (%s); images are %s",
                    root, sum(skipped.values()), kinds, " ".join(sorted(IMAGE_EXTENSIONS)))
    if not rows:
        raise DataError(f"{root}: class folders found but no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return rows


# ---------------------------------------------------------------------------------------- records
def _map_label(value: Any, cfg: DataConfig, where: str) -> int:
    """0 or 1 for a label cell. JSON booleans are not numbers here: ``true``/``false`` must be mapped by
    ``data.labels`` like any other name (the string ``"true"`` is refused under the default map, so is ``true``)."""
    if isinstance(value, bool):
        key = next((k for k in cfg.labels if k.lower() == str(value).lower()), str(value).lower())
    elif isinstance(value, float) and value.is_integer():
        key = str(int(value))
    else:
        key = str(value).strip()
    if key not in cfg.labels and (value is None or key == ""):
        raise DataError(f"{where}: no label in column {cfg.label_column!r} (found {value!r}); every sample needs one")
    if key not in cfg.labels:
        what = " (a JSON boolean)" if isinstance(value, bool) else ""
        raise DataError(
            f"{where}: unknown label {value!r}{what} in column {cfg.label_column!r}; known labels: "
            f"{sorted(cfg.labels)} (map it with data.labels, e.g. --set 'data.labels={{{key}: 1}}')"
        )
    out = int(cfg.labels[key])
    if out not in (0, 1):
        raise DataError(f"data.labels[{key!r}] = {out}: expected 0 (human/real) or 1 (AI)")
    return out


def rows_from_records(records: Iterable[Any], cfg: DataConfig, source_name: str, modality: str = "text",
                      where: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Map raw records (dicts of columns) to samples by the configured columns and label names.

    ``where``: each record's location for error messages (``"x.jsonl line 6"``); default ``"<source> row N"``
    counting from 1.
    """
    rows: list[dict[str, Any]] = []
    item_col = cfg.text_column if modality == "text" else cfg.image_column
    for i, rec in enumerate(records):
        at = where[i] if where is not None else f"{source_name} row {i + 1}"
        if not isinstance(rec, dict):
            raise DataError(f"{at}: expected an object of columns ({{{item_col!r}: ..., {cfg.label_column!r}: ...}}), "
                            f"found {type(rec).__name__} {str(rec)[:60]!r}")
        if item_col not in rec:
            raise DataError(f"{at}: no column {item_col!r} (columns: {sorted(map(str, rec))}); set data.{modality}_column")
        if cfg.label_column not in rec:
            raise DataError(f"{at}: no column {cfg.label_column!r} (columns: {sorted(map(str, rec))}); "
                            "set data.label_column")
        label = _map_label(rec[cfg.label_column], cfg, at)
        row: dict[str, Any] = {
            "item": rec[item_col],
            "label": label,
            "generator": str(rec.get(cfg.generator_column) or ("human" if label == 0 else "unknown")),
            "domain": str(rec.get(cfg.domain_column) or "unknown"),
            "source": str(rec.get(cfg.source_column) or source_name),
            "_where": at,
        }
        if modality == "image":
            if row["item"] is None:
                raise DataError(f"{at}: column {item_col!r} is empty, expected an image")
            row["image"] = row["item"]
            row["item"] = f"{source_name}#{i}"
        elif not isinstance(row["item"], str):
            raise DataError(f"{at}: column {item_col!r} holds {type(row['item']).__name__}, expected text")
        elif not row["item"].strip():
            raise DataError(f"{at}: empty text in column {item_col!r} (with label {rec[cfg.label_column]!r}); "
                            "remove the row or give its text")
        for col in {cfg.group_by, cfg.holdout_column, *cfg.include} - {"", item_col}:
            if col in rec:
                row.setdefault(f"_col_{col}", rec[col])
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------ tables
def _decode(p: Path) -> str:
    """The file as text: UTF-8, a byte-order mark accepted; other bytes are an error naming the line."""
    try:
        return p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = e.object.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{p} line {line}: invalid UTF-8 (byte 0x{e.object[e.start]:02x}, {e.reason}); save the file as UTF-8 "
            "(a Latin-1 / Windows-1252 file: iconv -f cp1252 -t utf-8)"
        ) from None


def _read_jsonl(p: Path) -> tuple[list[Any], list[str]]:
    recs, where = [], []
    for n, line in enumerate(_decode(p).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{p} line {n}: not JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(rec, dict):
            raise DataError(f"{p} line {n}: expected a JSON object ({{\"text\": ..., \"label\": ...}}), "
                            f"found {type(rec).__name__} {line.strip()[:60]!r}")
        recs.append(rec)
        where.append(f"{p} line {n}")
    return recs, where


def _read_json(p: Path) -> tuple[list[Any], list[str]]:
    try:
        data = json.loads(_decode(p))
    except json.JSONDecodeError as e:
        raise DataError(f"{p} line {e.lineno}: not JSON ({e.msg} at column {e.colno})") from None
    if isinstance(data, dict):
        if "data" not in data:
            raise DataError(f"{p}: a .json file holds an array of records or an object with a 'data' array; this "
                            f"object has no 'data' key (keys: {sorted(data)[:12]})")
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(f"{p}: expected an array of records, found {type(data).__name__}")
    return data, [f"{p} row {i + 1}" for i in range(len(data))]


def _read_delimited(p: Path, delimiter: str) -> tuple[list[Any], list[str]]:
    """CSV/TSV with a header row, read strictly: every row has as many cells as the header, quotes close."""
    csv.field_size_limit(min(2**31 - 1, 1 << 40))  # long documents are ordinary texts
    reader = csv.reader(io.StringIO(_decode(p), newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    recs: list[Any] = []
    where: list[str] = []
    start = 1  # the line the next row starts on
    try:
        for cells in reader:
            n, start = start, reader.line_num + 1
            if not cells:  # a blank line
                continue
            if header is None:
                header = cells
                dup = sorted({h for h in header if header.count(h) > 1})
                if dup:
                    raise DataError(f"{p} line {n}: the header repeats column(s) {dup}")
                continue
            if len(cells) != len(header):
                raise DataError(f"{p} line {n}: row has {len(cells)} cells, header has {len(header)} (an unquoted "
                                f"{'comma' if delimiter == ',' else 'tab'} or quote in a text? quote the cell)")
            recs.append(dict(zip(header, cells, strict=True)))
            where.append(f"{p} line {n}")
    except csv.Error as e:
        if "unexpected end of data" in str(e):
            raise DataError(f"{p} line {start}: unterminated quote: a quoted cell of the row starting on this line "
                            f"never closes (it runs to the end of the file, line {reader.line_num})") from None
        raise DataError(f"{p} line {start}: CSV parse error ({e}) in the row starting on this line, running to line "
                        f"{reader.line_num}; a quote inside a cell is written twice (\"\"), or the cell is not quoted") from None
    if header is None:
        raise DataError(f"{p}: no records (the file is empty)")
    return recs, where


def read_table(path: str | Path, cfg: DataConfig) -> list[dict[str, Any]]:
    """A JSONL / JSON / CSV / TSV / Parquet file of texts -> samples. An empty file is an error."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file {str(p)!r} does not exist")
    suf = p.suffix.lower()
    if suf in (".jsonl", ".ndjson"):
        recs, where = _read_jsonl(p)
    elif suf == ".json":
        recs, where = _read_json(p)
    elif suf in (".csv", ".tsv"):
        recs, where = _read_delimited(p, "\t" if suf == ".tsv" else ",")
    elif suf == ".parquet":
        import pyarrow.parquet as pq

        try:
            recs = pq.read_table(p).to_pylist()
        except Exception as e:  # pyarrow's errors do not all name the file
            raise DataError(f"{p}: not a readable Parquet file ({type(e).__name__}: {e})") from e
        where = [f"{p} row {i + 1}" for i in range(len(recs))]
    else:
        raise DataError(f"{p}: unknown file type {suf!r}; expected .jsonl, .json, .csv, .tsv or .parquet")
    if not recs:
        raise DataError(f"{p}: no records (the file is empty{' but for its header' if suf in ('.csv', '.tsv') else ''})")
    return rows_from_records(recs, cfg, p.name, "text", where)


def read_hf(name: str, split: str, cfg: DataConfig, modality: str) -> list[dict[str, Any]]:
    """``hf:org/name`` (or ``hf:/local/folder``) through ``datasets.load_dataset(name, config, split=split)``."""
    import datasets

    try:
        ds = datasets.load_dataset(name, cfg.hf_config or None, split=split)
    except Exception as e:  # the hub, a missing split, a bad config: say which source
        raise DataError(f"hf:{name} (config {cfg.hf_config or 'default'}, split {split!r}): {e}") from e
    return rows_from_records(iter(ds), cfg, f"hf:{name}[{split}]", modality)


def load_source(spec: str, cfg: DataConfig, split: str, modality: str) -> list[dict[str, Any]]:
    """One configured source (``train``/``dev``/``test`` value) -> samples."""
    if spec.startswith("hf:"):
        return read_hf(spec[3:], split, cfg, modality)
    p = Path(spec)
    if p.is_dir():
        if modality == "text":
            raise DataError(f"{spec}: a folder, but the model reads text; give a .jsonl/.csv/.parquet file")
        return read_image_folder(p)
    if modality == "image":
        raise DataError(f"{spec}: image models read an image folder (real/ + ai/) or an hf: dataset")
    return read_table(p, cfg)
