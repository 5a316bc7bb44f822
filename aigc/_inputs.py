"""Turn CLI inputs (files, folders, lists of paths, record files of texts, ``-``) into a stream of items.

Each item has an ``id`` that names it in the output (the path, ``file:LINE`` / ``file:ROW``, or the value of
``--id-field``), a payload (an image path or a text), an optional group, the input columns the caller keeps,
and an error when it could not even be read (invalid UTF-8, bad JSON, a missing field); such errors name
the file and the line or row. Reading is lazy, so a corpus of any size streams.

:func:`check_inputs` runs first: a missing path, an empty folder, an input of the other modality, or an
output file that is also an input are argument errors (:class:`InputError`), raised before any output exists.
Within a folder walk a file that cannot be read as asked (a CSV without the text column, a ``.txt`` of JSON
lines) and a sub-folder that cannot be listed are error items: the rest of the folder is read. What a read
passes over without an item (skipped files, empty files, kept fields no row has) goes into :class:`ReadNotes`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._folder_walk import (
    IMAGE_EXTENSIONS,
    LIST_EXTENSIONS,
    WALK_TEXT_FORMATS,
    _is_image,
    _text_format,
    _walk,
    _walk_kind,
)
from ._readers import (
    FORMATS,
    InputError,
    detect_format,
    file_identity,
    first_line_is_json_object,
    iter_records,
    leading_lines_are_json_objects,
    read_document,
    sniff_format,
)

__all__ = ["IMAGE_EXTENSIONS", "InputError", "InputItem", "ReadNotes", "ReadOptions", "check_inputs", "iter_inputs"]

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


@dataclass
class ReadNotes:
    """What one read of the inputs saw besides its items: the identity of every input file (see
    :func:`aigc._readers.file_identity`; images: size and modification time only), the files folder walks
    skipped (reason -> count) and notes naming a file (an empty file, a kept field that no row has)."""

    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)

    def note(self, msg: str) -> None:
        self.messages.append(msg)

    def skipped_line(self) -> str | None:
        """``'skipped 3 files in folders: 2 hidden, 1 with an unknown extension'``, or None."""
        if not self.skipped:
            return None
        n = sum(self.skipped.values())
        parts = ", ".join(f"{c} {why}" for why, c in self.skipped.most_common())
        return f"skipped {n} file{'s' if n > 1 else ''} found in folders: {parts}"


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
    try:
        with os.scandir(p):
            pass
    except OSError as e:
        raise InputError(f"{p}: cannot read this folder ({e.strerror or e})") from None
    images: list[Path] = []
    texts: list[Path] = []
    unreadable: list[Path] = []
    for f, err in _walk(p):
        if err:
            unreadable.append(f)
        elif f.name.startswith("."):
            continue
        elif _is_image(f):
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
    if unreadable:
        raise InputError(f"{p}: no {modality} files to score in the folders that could be read, and "
                         f"{len(unreadable)} sub-folder(s) cannot be read (e.g. {unreadable[0]})")
    if modality == "image":
        raise InputError(f"{p}: the folder holds no image files to score (looked for {' '.join(sorted(IMAGE_EXTENSIONS))})")
    exts = [e for f in WALK_TEXT_FORMATS for e in FORMATS[f]]
    raise InputError(f"{p}: the folder holds no text files to score (looked for {' '.join(exts)}, also .gz)")


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
    notes: ReadNotes | None = None,
) -> Iterator[InputItem]:
    """Expand inputs into items, in order; ``notes``, when given, collects what the read saw besides items.

    Images: an image file; a folder (recursive, image extensions, any case); a ``.txt``/``.lst``/``.list``
    file, or ``-``, listing one path per line (a relative path is resolved from the list's folder; from the
    working folder for ``-``). Any other file is treated as an image, so a text file named ``.jpg`` is
    reported as not an image.
    Texts: record files (JSONL/NDJSON, a JSON array, CSV, TSV, Parquet, each optionally ``.gz``; one item
    per row, ``text_field`` holds the text), a ``.txt``/``.md`` file (the whole file is one text, unless its
    lines are JSON objects: then it is an error item), a folder (recursive, every format above except
    ``.json``), or ``-`` (its format from ``input_format`` or sniffed).
    Folders: dot-files and files of other extensions are skipped (counted in ``notes``); a sub-folder that
    cannot be listed is an error item; symlinked folders are followed once.
    """
    opts = opts or ReadOptions()
    seen: dict[str, str] = {}
    for raw in inputs:
        if str(raw) == STDIN:
            yield from _stdin_items(modality, opts, seen, notes)
            continue
        p = Path(raw)
        if not p.exists():
            yield InputItem(str(p), None, None, "no such file or folder")
        elif p.is_dir():
            yield from _folder_items(p, modality, opts, seen, notes)
        elif modality == "image":
            yield from _image_items(p, opts.input_format, notes)
        else:
            fmt = opts.input_format or detect_format(p.name)
            bad = _json_lines_named_otherwise(p, fmt, forced=bool(opts.input_format), walked=False)
            if bad:
                yield InputItem(str(p), None, None, bad)
                continue
            yield from _text_items(p, str(p), fmt or "text", opts, seen, notes)


def _json_lines_named_otherwise(p: Path, fmt: str | None, forced: bool, walked: bool) -> str | None:
    """The error for JSON lines read as one document (an unknown extension, or ``.txt``/``.md``), else None."""
    if forced or fmt not in (None, "text"):
        return None
    if fmt is None and first_line_is_json_object(p):
        return (f"{p}: looks like JSON lines but its extension says nothing; name it .jsonl, or pass "
                "--input-format jsonl (or text, to score it as one document)")
    if fmt == "text" and leading_lines_are_json_objects(p):
        how = ("name it .jsonl (files in a folder are read by their extension)" if walked else
               "name it .jsonl, or pass --input-format jsonl (or text, to score it as one document)")
        return f"{p}: looks like JSON lines, not one document (its lines are JSON objects); {how}"
    return None


def _folder_items(p: Path, modality: str, opts: ReadOptions, seen: dict[str, str],
                  notes: ReadNotes | None) -> Iterator[InputItem]:
    for f, err in _walk(p, notes):
        if err:
            yield InputItem(str(f), None, None, err)
            continue
        kind, why = _walk_kind(f, modality)
        if kind is None:
            if notes is not None:
                notes.skipped[why or "other"] += 1
            continue
        if kind == "image":
            _identify(f, notes, digest=False)
            yield InputItem(str(f), str(f))
            continue
        bad = _json_lines_named_otherwise(f, kind, forced=False, walked=True)
        if bad:
            yield InputItem(str(f), None, None, bad)
            continue
        try:
            yield from _text_items(f, str(f), kind, opts, seen, notes)
        except InputError as e:  # a stray file in a folder (a CSV without the text column, no pyarrow) is one error
            yield InputItem(str(f), None, None, f"{e}; this file (found in the folder {p}) was skipped")


def _identify(path: Path, notes: ReadNotes | None, digest: bool = True, name: str | None = None) -> None:
    if notes is None:
        return
    try:
        ident = file_identity(path, digest)
    except OSError:
        return  # the file cannot be read: its items are errors, nothing to keep
    if name == STDIN_NAME:
        ident.pop("mtime_ns")  # the spooled copy is new on every run
    notes.files[name or str(path)] = ident


def _stdin_items(modality: str, opts: ReadOptions, seen: dict[str, str], notes: ReadNotes | None) -> Iterator[InputItem]:
    if opts.stdin is None:
        from ._readers import spool_stdin

        opts.stdin = spool_stdin()
    if modality == "image":
        yield from _list_items(opts.stdin, STDIN_NAME, Path.cwd(), notes)
        return
    fmt = opts.input_format or sniff_format(opts.stdin)
    if fmt is None:
        raise InputError("standard input: cannot tell its format (not JSON lines, a JSON array or Parquet); "
                         "pass --input-format csv|tsv|jsonl|json|parquet|text")
    yield from _text_items(opts.stdin, STDIN_NAME, fmt, opts, seen, notes)


def _image_items(p: Path, fmt: str | None, notes: ReadNotes | None) -> Iterator[InputItem]:
    if fmt == "list" or p.suffix.lower() in LIST_EXTENSIONS:
        yield from _list_items(p, str(p), p.parent, notes)
    else:
        _identify(p, notes, digest=False)
        yield InputItem(str(p), str(p))


def _list_items(p: Path, name: str, base: Path, notes: ReadNotes | None) -> Iterator[InputItem]:
    with open(p, encoding="utf-8-sig", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            s = line.strip()
            if s and not s.startswith("#"):
                q = Path(s) if Path(s).is_absolute() else base / s
                if q.exists():
                    _identify(q, notes, digest=False)
                    yield InputItem(str(q), str(q))
                else:
                    yield InputItem(str(q), None, None, f"listed in {name}:{n} but not found")


def _text_items(path: Path, name: str, fmt: str, opts: ReadOptions, seen: dict[str, str],
                notes: ReadNotes | None = None) -> Iterator[InputItem]:
    _identify(path, notes, name=name)
    if fmt == "text":
        text, err = read_document(path)
        if err and path.exists() and not err.startswith("this is"):
            err = f"{name}: {err}"
        yield InputItem(name, text, None, err, {k: None for k in opts.keep_fields} if opts.keep_fields else None)
        return
    blank_is_null = fmt in ("csv", "tsv")  # CSV cannot tell an empty cell from a missing value
    watch = [k for k in (*opts.keep_fields, opts.group_field) if k] if fmt in ("jsonl", "json") else []
    n_rows = 0
    keys: set[str] = set()
    for rec in iter_records(path, fmt, opts.columns()):
        n_rows += 1
        loc, where = f"{name}:{rec.n}", f"{name} {rec.unit} {rec.n}"
        if rec.fields is None:
            kept = {k: None for k in opts.keep_fields} if opts.keep_fields else None
            yield InputItem(loc, None, None, f"{where}: {rec.error}", kept)
            continue
        if watch:
            keys.update(rec.fields)
        yield _record_item(rec.fields, loc, where, opts, seen, blank_is_null)
    if notes is not None:
        if n_rows == 0:
            notes.note(f"{name}: no rows (an empty file{', or a header only' if blank_is_null else ''}); nothing scored")
        elif keys:
            for k in (w for w in dict.fromkeys(watch) if w not in keys):
                like = [x for x in sorted(keys) if x.lower() == k.lower()]
                hint = f" (fields are case-sensitive: the rows have {like[0]!r})" if like else ""
                what = "--group-field" if k == opts.group_field and k not in opts.keep_fields else "--keep-fields"
                notes.note(f"warning: {name}: no row has the field {k!r} ({what}), so it is null on every row{hint}")
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
