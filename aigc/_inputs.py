"""Turn CLI inputs (files, folders, lists of paths, record files of texts, ``-``) into a stream of items.

Each item has an ``id`` that names it in the output (the path, ``file:LINE`` / ``file:ROW``, or the value of
``--id-field``), a payload (an image path or a text), an optional group, the input columns the caller keeps,
and an error when it could not even be read (invalid UTF-8, bad JSON, a missing field); such errors name
the file and the line or row. Reading is lazy, so a corpus of any size streams.

:func:`check_inputs` runs first: a missing path, an empty folder, an input of the other modality, or an
output file that is also an input are argument errors (:class:`InputError`), raised before any output exists.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._readers import (
    FORMATS,
    InputError,
    detect_format,
    first_line_is_json_object,
    iter_records,
    read_document,
    sniff_format,
)

__all__ = ["IMAGE_EXTENSIONS", "InputError", "InputItem", "ReadOptions", "check_inputs", "iter_inputs"]

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".jfif", ".heic", ".heif", ".avif"}
LIST_EXTENSIONS = {".txt", ".lst", ".list"}
# formats a text-bundle folder walk reads (.json is read only when named: folders often hold JSON configs)
WALK_TEXT_FORMATS = ("jsonl", "csv", "tsv", "parquet", "text")
INPUT_FORMATS = ("jsonl", "json", "csv", "tsv", "parquet", "text", "list")
STDIN = "-"
STDIN_NAME = "<stdin>"


@dataclass
class ReadOptions:
    """How text inputs are read. ``input_format`` forces the format of files named directly and of ``-``
    (folders are always walked by extension); ``stdin`` is the spooled standard input (see ``spool_stdin``)."""

    text_field: str = "text"
    group_field: str | None = None
    id_field: str | None = None
    keep_fields: tuple[str, ...] = ()
    input_format: str | None = None
    stdin: Path | None = None

    def columns(self) -> list[str]:
        """The columns a header must have: the text, the id and every kept field (the group may be absent)."""
        return [c for c in (self.text_field, self.id_field, *self.keep_fields) if c]


@dataclass
class InputItem:
    id: str
    payload: str | None  # image path or text; None when ``error`` is set
    group: str | None = None
    error: str | None = None
    fields: dict[str, Any] | None = field(default=None)  # the kept input columns (``ReadOptions.keep_fields``)


def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            if not f.startswith("."):
                yield Path(root) / f


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS


def _text_format(p: Path) -> str | None:
    fmt = detect_format(p.name)
    return fmt if fmt in WALK_TEXT_FORMATS else None


def _ext(p: Path) -> str:
    name = p.name.lower()
    return "".join(p.suffixes[-2:]).lower() if name.endswith(".gz") else p.suffix.lower()


def _describe(paths: list[Path], what: str) -> str:
    c = Counter(_ext(p) or "(no extension)" for p in paths)
    kinds = ", ".join(f"{n} {e}" for e, n in c.most_common(4))
    return f"the input looks like {what} ({kinds} file{'s' if len(paths) > 1 else ''})"


# -- checks before anything is written ----------------------------------------------------------------------
def check_inputs(
    inputs: Sequence[str | os.PathLike[str]], modality: str, opts: ReadOptions | None = None,
    outputs: Sequence[Path] = (),
) -> None:
    """Raise :class:`InputError` when an input is missing, is an empty folder, holds only the other
    modality's files, or is one of ``outputs`` (the same file, also through a symlink or hard link)."""
    opts = opts or ReadOptions()
    out_ids = {_file_id(p) for p in outputs if p.exists()}
    fmt = opts.input_format
    if fmt and modality == "image" and fmt != "list":
        raise InputError(f"--input-format {fmt}: an image bundle reads image files, folders and lists of paths (list)")
    if fmt == "list" and modality == "text":
        raise InputError("--input-format list: lists of paths are for image bundles; a text bundle reads "
                         f"{', '.join(f for f in INPUT_FORMATS if f != 'list')}")
    for raw in inputs:
        if str(raw) == STDIN:
            if out_ids and _stdin_id() in out_ids:
                raise InputError("standard input is the output file (or a link to it): write the scores elsewhere")
            continue
        p = Path(raw)
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_dir():
            _check_folder(p, modality, out_ids)
            continue
        if _file_id(p) in out_ids:
            raise InputError(f"{p} is the output file (or a link to it): write the scores elsewhere")
        _check_file_modality(p, modality, fmt)


def _stdin_id() -> tuple[int, int] | None:
    import sys

    try:
        st = os.fstat(sys.stdin.fileno())
    except (OSError, ValueError, AttributeError):  # no real file behind stdin (e.g. replaced in tests)
        return None
    return st.st_dev, st.st_ino


def _file_id(p: Path) -> tuple[int, int]:
    st = os.stat(p)  # follows symlinks; hard links share the inode
    return st.st_dev, st.st_ino


def _check_folder(p: Path, modality: str, out_ids: set[tuple[int, int]]) -> None:
    images: list[Path] = []
    texts: list[Path] = []
    for f in _walk(p):
        if _is_image(f):
            images.append(f)
        elif _text_format(f):
            texts.append(f)
            if modality == "text" and out_ids and _file_id(f) in out_ids:
                raise InputError(f"the output file {f} lies in the input folder {p} and would be read as an input: "
                                 "write the scores elsewhere")
    mine, other = (images, texts) if modality == "image" else (texts, images)
    if mine:
        return
    if other:
        what = "texts" if modality == "image" else "images"
        raise InputError(f"{p}: this is {'an image' if modality == 'image' else 'a text'} bundle; {_describe(other, what)}")
    exts = sorted(IMAGE_EXTENSIONS) if modality == "image" else [e for f in WALK_TEXT_FORMATS for e in FORMATS[f]]
    raise InputError(f"{p}: the folder holds no {modality} files to score (looked for {' '.join(exts)}, also .gz)")


def _check_file_modality(p: Path, modality: str, fmt: str | None) -> None:
    if modality == "text" and not fmt and _is_image(p):
        raise InputError(f"{p}: this is a text bundle; {_describe([p], 'images')}")
    if modality == "image" and not fmt:
        tf = detect_format(p.name)
        if tf and not (tf == "text" and p.suffix.lower() in LIST_EXTENSIONS):
            raise InputError(f"{p}: this is an image bundle; the input looks like texts ({_ext(p)}); "
                             "a .txt/.lst file is read as a list of image paths")


# -- reading ----------------------------------------------------------------------------------------------------
def iter_inputs(
    inputs: Sequence[str | os.PathLike[str]],
    modality: str,
    opts: ReadOptions | None = None,
) -> Iterator[InputItem]:
    """Expand inputs into items, in order.

    Images: an image file; a folder (recursive, image extensions, any case); a ``.txt``/``.lst``/``.list``
    file, or ``-``, listing one path per line (a relative path is resolved from the list's folder; from the
    working folder for ``-``). Any other file is treated as an image, so a text file named ``.jpg`` is
    reported as not an image.
    Texts: record files (JSONL/NDJSON, a JSON array, CSV, TSV, Parquet, each optionally ``.gz``; one item
    per row, ``text_field`` holds the text), a ``.txt``/``.md`` file (the whole file is one text), a folder
    (recursive, every format above except ``.json``), or ``-`` (its format from ``input_format`` or sniffed).
    """
    opts = opts or ReadOptions()
    seen: dict[str, str] = {}
    for raw in inputs:
        if str(raw) == STDIN:
            yield from _stdin_items(modality, opts, seen)
            continue
        p = Path(raw)
        if not p.exists():
            yield InputItem(str(p), None, None, "no such file or folder")
        elif modality == "image":
            yield from _image_items(p, opts.input_format)
        elif p.is_dir():
            for f in _walk(p):
                fmt = _text_format(f)
                if fmt:
                    yield from _text_items(f, str(f), fmt, opts, seen)
        else:
            fmt = opts.input_format or detect_format(p.name)
            if fmt is None and first_line_is_json_object(p):
                yield InputItem(str(p), None, None, f"{p}: looks like JSON lines but its extension says nothing; "
                                "name it .jsonl, or pass --input-format jsonl (or text, to score it as one document)")
                continue
            yield from _text_items(p, str(p), fmt or "text", opts, seen)


def _stdin_items(modality: str, opts: ReadOptions, seen: dict[str, str]) -> Iterator[InputItem]:
    if opts.stdin is None:
        from ._readers import spool_stdin

        opts.stdin = spool_stdin()
    if modality == "image":
        yield from _list_items(opts.stdin, STDIN_NAME, Path.cwd())
        return
    fmt = opts.input_format or sniff_format(opts.stdin)
    if fmt is None:
        raise InputError("standard input: cannot tell its format (not JSON lines, a JSON array or Parquet); "
                         "pass --input-format csv|tsv|jsonl|json|parquet|text")
    yield from _text_items(opts.stdin, STDIN_NAME, fmt, opts, seen)


def _image_items(p: Path, fmt: str | None) -> Iterator[InputItem]:
    if p.is_dir():
        for f in _walk(p):
            if _is_image(f):
                yield InputItem(str(f), str(f))
    elif fmt == "list" or p.suffix.lower() in LIST_EXTENSIONS:
        yield from _list_items(p, str(p), p.parent)
    else:
        yield InputItem(str(p), str(p))


def _list_items(p: Path, name: str, base: Path) -> Iterator[InputItem]:
    with open(p, encoding="utf-8-sig", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            s = line.strip()
            if s and not s.startswith("#"):
                q = Path(s) if Path(s).is_absolute() else base / s
                yield InputItem(str(q), str(q)) if q.exists() else InputItem(
                    str(q), None, None, f"listed in {name}:{n} but not found"
                )


def _text_items(path: Path, name: str, fmt: str, opts: ReadOptions, seen: dict[str, str]) -> Iterator[InputItem]:
    if fmt == "text":
        text, err = read_document(path)
        if err and path.exists() and not err.startswith("this is"):
            err = f"{name}: {err}"
        yield InputItem(name, text, None, err, {k: None for k in opts.keep_fields} if opts.keep_fields else None)
        return
    blank_is_null = fmt in ("csv", "tsv")  # CSV cannot tell an empty cell from a missing value
    for rec in iter_records(path, fmt, opts.columns()):
        loc, where = f"{name}:{rec.n}", f"{name} {rec.unit} {rec.n}"
        if rec.fields is None:
            kept = {k: None for k in opts.keep_fields} if opts.keep_fields else None
            yield InputItem(loc, None, None, f"{where}: {rec.error}", kept)
            continue
        yield _record_item(rec.fields, loc, where, opts, seen, blank_is_null)


def _record_item(obj: dict[str, Any], loc: str, where: str, opts: ReadOptions, seen: dict[str, str],
                 blank_is_null: bool = False) -> InputItem:
    kept = None
    if opts.keep_fields:
        kept = {k: None if blank_is_null and obj.get(k) == "" else obj.get(k) for k in opts.keep_fields}
    tf = opts.text_field
    group = obj.get(opts.group_field) if opts.group_field else None
    item = InputItem(loc, None, None if group is None else str(group), None, kept)
    if opts.id_field:
        v = obj.get(opts.id_field)
        if v is None or v == "":
            item.error = f"{where}: no value in the id field {opts.id_field!r} (--id-field)"
            return item
        if str(v) in seen:
            item.error = f"{where}: id {str(v)!r} repeats {seen[str(v)]} (--id-field values must be unique)"
            return item
        seen[str(v)] = loc
        item.id = str(v)
    if tf not in obj:
        item.error = f"{where}: no field {tf!r} (fields: {sorted(obj)[:10]}; see --text-field)"
    elif not isinstance(obj[tf], str):
        kind = "null" if obj[tf] is None else type(obj[tf]).__name__
        item.error = f"{where}: field {tf!r} is {kind}, expected a string"
    else:
        item.payload = obj[tf]
    return item
