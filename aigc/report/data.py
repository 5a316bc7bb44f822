"""Labelled evaluation data: a JSONL/CSV/TSV of texts or image paths, or a folder of ``real/`` and ``ai/`` images.

Every row that cannot be used (bad JSON, invalid UTF-8, a CSV row whose cells do not match the header or
whose quote is never closed, a missing field, a label that is neither human nor AI, a missing image file) is
kept as a reported problem naming ``file:line``, never dropped silently; the rest becomes an :class:`EvalData`.
Files are read as UTF-8 with an optional byte-order mark.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._inputs import IMAGE_EXTENSIONS

__all__ = ["EvalData", "load_data", "parse_label", "stratified_sample"]

HUMAN_LABELS = {"0", "human", "real", "human-written", "human_written", "authentic", "natural", "false"}
AI_LABELS = {"1", "ai", "fake", "machine", "generated", "synthetic", "ai-generated", "ai_generated", "llm", "true"}
_MAX_GROUPS = 50  # a field with more distinct values than this is an id, not a slice


@dataclass
class EvalData:
    """Items with labels (0 human, 1 AI) and their string fields (generator, domain, ...), in data order."""

    modality: str
    ids: list[str]
    items: list[Any]  # texts, or image paths
    y: np.ndarray  # (n,) int64
    fields: dict[str, list[str | None]] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (row id, what is wrong)
    source: str = ""

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, idx: np.ndarray | list[int]) -> EvalData:
        idx = [int(i) for i in idx]
        return EvalData(
            self.modality,
            [self.ids[i] for i in idx],
            [self.items[i] for i in idx],
            self.y[idx],
            {k: [v[i] for i in idx] for k, v in self.fields.items()},
            list(self.problems),
            self.source,
        )

    def slice_fields(self) -> list[str]:
        """Fields worth slicing by: at least one value, and at most 50 distinct values (ids are not slices)."""
        out = []
        for k, v in self.fields.items():
            distinct = {x for x in v if x is not None}
            if distinct and len(distinct) <= _MAX_GROUPS:
                out.append(k)
        return out


def parse_label(v: Any, labels: tuple[str, str] | None = None) -> int | None:
    """0 (human) or 1 (AI) from 0/1, booleans, or words such as human/real/ai/fake/machine; None if unknown."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)) and v in (0, 1):
        return int(v)
    if not isinstance(v, str):
        return None
    s = v.strip().lower()
    if labels is not None:
        if s == labels[0].lower():
            return 0
        if s == labels[1].lower():
            return 1
    if s in HUMAN_LABELS:
        return 0
    if s in AI_LABELS:
        return 1
    return None


def _str_fields(obj: dict[str, Any], skip: set[str]) -> dict[str, str]:
    out = {}
    for k, v in obj.items():
        if k in skip or isinstance(v, (dict, list)) or v is None:
            continue
        out[k] = str(v)
    return out


def _rows_jsonl(path: Path) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
    rows, problems = [], []
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            rid = f"{path.name}:{n}"
            if n == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                problems.append((rid, f"invalid UTF-8 at byte {e.start}"))
                continue
            except json.JSONDecodeError as e:
                problems.append((rid, f"not valid JSON ({e.msg} at column {e.colno})"))
                continue
            if not isinstance(obj, dict):
                problems.append((rid, f"expected a JSON object, found {type(obj).__name__}"))
                continue
            rows.append((rid, obj))
    return rows, problems


def _decode_lines(path: Path) -> tuple[list[str], dict[int, str]]:
    """The file's physical lines (endings kept, a UTF-8 BOM dropped) and, by 1-based line number, what is
    wrong with each line that is not valid UTF-8 (such a line is decoded with surrogates, to be reported)."""
    lines, bad = [], {}
    raw = path.read_bytes()
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    for n, b in enumerate(raw.splitlines(keepends=True), start=1):
        try:
            lines.append(b.decode("utf-8"))
        except UnicodeDecodeError as e:
            bad[n] = f"invalid UTF-8 (byte 0x{b[e.start]:02x} at column {e.start + 1})"
            lines.append(b.decode("utf-8", "surrogateescape"))
    return lines, bad


def _records(lines: list[str], delimiter: str) -> Iterator[tuple[int, int, list[str] | None, str | None]]:
    """``(first line, last line, cells, None)`` per record of a CSV/TSV, or ``(line, line, None, error)`` for a
    record the reader refuses (strict: an unclosed or stray quote, a NUL): reading then resumes at the next
    physical line, so one bad quote costs its own row, not the rest of the file."""
    pos = 0
    while pos < len(lines):
        reader = csv.reader((lines[i] for i in range(pos, len(lines))), delimiter=delimiter, strict=True)
        while True:
            before = reader.line_num
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                start = pos + before + 1
                yield start, start, None, str(e)
                pos = start
                break
            yield pos + before + 1, pos + reader.line_num, cells, None


def _rows_csv(path: Path, delimiter: str = ",") -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
    """Rows of a CSV (TSV) file with a header; the id of a row is ``file:line`` of the physical line where it
    starts. A row the reader refuses, with invalid UTF-8, or with more or fewer cells than the header is a
    problem naming its line; the other rows are used."""
    lines, bad = _decode_lines(path)
    records = _records(lines, delimiter)
    header: list[str] | None = None
    rows: list[tuple[str, dict[str, Any]]] = []
    problems: list[tuple[str, str]] = []
    for first, last, cells, err in records:
        rid = f"{path.name}:{first}"
        wrong = next((bad[n] for n in range(first, last + 1) if n in bad), None)
        if err is not None:
            wrong = (f"unreadable row ({err})" if "end of data" not in err
                     else "a quote opened in this row is never closed (reading went on at the next line)")
        if not wrong and cells is not None and not any(c.strip() for c in cells):
            continue  # a blank line holds no row
        if header is None:
            if wrong or not cells:
                raise ValueError(f"{path}:{first}: the header line cannot be read ({wrong})")
            dup = next((c for c in cells if c and cells.count(c) > 1), None)
            if dup is not None:
                raise ValueError(f"{path}:{first}: the header names column {dup!r} twice")
            header = cells
        elif wrong or cells is None:
            problems.append((rid, wrong or "unreadable row"))
        elif len(cells) != len(header):
            hint = f"an unquoted {delimiter!r} in a cell?" if len(cells) > len(header) else "a missing cell?"
            problems.append((rid, f"row has {len(cells)} cells, header has {len(header)} ({hint})"))
        else:
            rows.append((rid, dict(zip(header, cells, strict=True))))
    if header is None:
        raise ValueError(f"{path}: empty file, expected a header line naming the columns")
    return rows, problems


_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)_")


def _image_folder(root: Path, default_label: int | None = None) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
    """``real/`` and ``ai/`` (also ``human/``, ``fake/``): the generator is the sub-folder under the class
    folder, else the file-name prefix before the first ``_`` (``gan_01.jpg`` -> ``gan``). For real images
    the same rule gives the ``domain`` (``animals_1.jpg`` -> ``animals``)."""
    rows: list[tuple[str, dict[str, Any]]] = []
    found = False
    for cls_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        label = parse_label(cls_dir.name)
        if label is None:
            continue
        found = True
        for dirpath, dirs, files in os.walk(cls_dir):
            dirs.sort()
            for f in sorted(files):
                fp = Path(dirpath) / f
                if fp.suffix.lower() not in IMAGE_EXTENSIONS or f.startswith("."):
                    continue
                rel = fp.relative_to(cls_dir)
                group = rel.parts[0] if len(rel.parts) > 1 else None
                if group is None:
                    m = _PREFIX.match(f)
                    group = m.group(1) if m else None
                obj: dict[str, Any] = {"path": str(fp), "label": label}
                if label == 1:
                    obj["generator"] = group or "unknown"
                else:
                    obj["generator"] = "human"
                    if group:
                        obj["domain"] = group
                rows.append((str(fp.relative_to(root)), obj))
    if not found and default_label is not None:  # one class: every image under the folder
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                fp = Path(dirpath) / f
                if fp.suffix.lower() in IMAGE_EXTENSIONS and not f.startswith("."):
                    rows.append((str(fp.relative_to(root)), {"path": str(fp), "label": default_label}))
        return rows, []
    if not found:
        raise ValueError(
            f"{root}: an image folder needs sub-folders named real/ (or human/) and ai/ (or fake/); "
            f"found {sorted(p.name for p in root.iterdir() if p.is_dir())[:10]}"
        )
    return rows, []


def _near_miss(obj: dict[str, Any], name: str) -> str | None:
    """A key of ``obj`` that is ``name`` up to case, spaces and a byte-order mark, or None."""
    want = name.strip().casefold()
    return next((k for k in obj if k != name and k.strip().lstrip("\ufeff").strip().casefold() == want), None)


def load_data(
    path: str | os.PathLike[str],
    modality: str,
    text_field: str = "text",
    label_field: str = "label",
    path_field: str = "path",
    labels: tuple[str, str] | None = None,
    default_label: int | None = None,
) -> EvalData:
    """Read labelled data for ``modality`` ("text" or "image").

    Text: a ``.jsonl`` (``.csv``, ``.tsv``) file with ``text_field`` and ``label_field``; every other scalar
    field (generator, domain, source, language, ...) is kept for slicing. Images: a folder with ``real/`` and
    ``ai/`` sub-folders, or such a file with ``path_field`` (relative to the file's folder) and ``label_field``.
    Raises ValueError when the source itself is unusable (missing, wrong kind); bad rows go to ``problems``.
    ``default_label`` (``aigc calibrate --humans-only``): the label of rows without one, and of every image
    of a folder that has no real/ and ai/ sub-folders; a row whose label sits under a name that differs only
    in case or spaces (``Label``) is a problem, never defaulted.
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{p}: no such file or folder")
    if p.is_dir():
        if modality != "image":
            raise ValueError(f"{p}: a folder is image data; text data is a .jsonl file with {text_field!r} and {label_field!r}")
        rows, problems = _image_folder(p, default_label)
    elif p.suffix.lower() == ".jsonl":
        rows, problems = _rows_jsonl(p)
    elif p.suffix.lower() in (".csv", ".tsv"):
        rows, problems = _rows_csv(p, "\t" if p.suffix.lower() == ".tsv" else ",")
    else:
        raise ValueError(f"{p}: expected a .jsonl, .csv or .tsv file, or (images) a folder with real/ and ai/")
    payload_field = text_field if modality == "text" else path_field
    ids: list[str] = []
    items: list[Any] = []
    ys: list[int] = []
    metas: list[dict[str, str]] = []
    for rid, obj in rows:
        if payload_field not in obj:
            flag = "--text-field" if modality == "text" else "--path-field"
            problems.append((rid, f"no field {payload_field!r} (fields: {sorted(obj)[:10]}; see {flag})"))
            continue
        if label_field not in obj and default_label is not None:
            near = _near_miss(obj, label_field)
            if near is not None:  # a label column is there, under a name read differently: never default it
                problems.append((rid, f"no field {label_field!r}, but {near!r} differs from it only in case or spaces; "
                                      f"see --label-field"))
                continue
            obj = {**obj, label_field: default_label}
        if label_field not in obj:
            problems.append((rid, f"no field {label_field!r} (fields: {sorted(obj)[:10]}; see --label-field)"))
            continue
        y = parse_label(obj[label_field], labels)
        if y is None:
            problems.append((rid, f"label {obj[label_field]!r} is neither human (0, human, real) nor AI (1, ai, fake)"))
            continue
        val = obj[payload_field]
        if modality == "text":
            if not isinstance(val, str):
                problems.append((rid, f"field {payload_field!r} is {type(val).__name__}, expected a string"))
                continue
        else:
            q = Path(str(val))
            if not q.is_absolute() and not p.is_dir():
                q = p.parent / q
            val = str(q)
        ids.append(rid)
        items.append(val)
        ys.append(y)
        metas.append(_str_fields(obj, {payload_field, label_field}))
    keys: list[str] = []
    for m in metas:
        for k in m:
            if k not in keys:
                keys.append(k)
    fields = {k: [m.get(k) for m in metas] for k in keys}
    return EvalData(modality, ids, items, np.asarray(ys, dtype=np.int64), fields, problems, str(p))


def stratified_sample(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of a seeded sample of at most ``n`` items keeping the class proportions, in data order."""
    y = np.asarray(y)
    if n >= y.size:
        return np.arange(y.size)
    rng = np.random.default_rng(seed)
    out = []
    classes = [c for c in (0, 1) if (y == c).any()]
    counts = {c: int((y == c).sum()) for c in classes}
    take = {c: round(n * counts[c] / y.size) for c in classes}
    # keep both classes present when there is room, and the total exact
    for c in classes:
        take[c] = min(counts[c], max(take[c], 1 if n >= len(classes) else 0))
    while sum(take.values()) > n:
        c = max(take, key=lambda k: take[k])
        take[c] -= 1
    for c in classes:
        idx = np.flatnonzero(y == c)
        out.append(rng.choice(idx, size=take[c], replace=False))
    return np.sort(np.concatenate(out)) if out else np.arange(0)
