"""Turn CLI inputs (files, folders, lists of paths, JSONL of texts) into a stream of items.

Each item has an ``id`` that names it in the output (the path, or ``file.jsonl:LINE``), a payload
(an image path or a text), an optional group, and an error when it could not even be read
(invalid UTF-8, bad JSON, a missing field). Reading is lazy, so a corpus of any size streams.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "InputItem", "iter_inputs"]

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".jfif", ".heic", ".avif"}
LIST_EXTENSIONS = {".txt", ".lst", ".list"}
TEXT_EXTENSIONS = {".txt", ".md"}


@dataclass
class InputItem:
    id: str
    payload: str | None  # image path or text; None when ``error`` is set
    group: str | None = None
    error: str | None = None


def _walk(folder: Path, exts: set[str]) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            if Path(f).suffix.lower() in exts and not f.startswith("."):
                yield Path(root) / f


def _iter_jsonl(path: Path, text_field: str, group_field: str | None) -> Iterator[InputItem]:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            iid = f"{path}:{n}"
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield InputItem(iid, None, None, f"line {n}: invalid UTF-8 at byte {e.start} ({e.reason})")
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield InputItem(iid, None, None, f"line {n}: not valid JSON ({e.msg} at column {e.colno})")
                continue
            if not isinstance(obj, dict):
                yield InputItem(iid, None, None, f"line {n}: expected a JSON object, found {type(obj).__name__}")
                continue
            if text_field not in obj:
                yield InputItem(iid, None, None, f"line {n}: no field {text_field!r} (fields: {sorted(obj)[:10]}; see --text-field)")
                continue
            text = obj[text_field]
            if not isinstance(text, str):
                yield InputItem(iid, None, None, f"line {n}: field {text_field!r} is {type(text).__name__}, expected a string")
                continue
            group = obj.get(group_field) if group_field else None
            yield InputItem(iid, text, None if group is None else str(group))


def _read_text_file(path: Path) -> InputItem:
    try:
        return InputItem(str(path), path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        return InputItem(str(path), None, None, f"invalid UTF-8 at byte {e.start} ({e.reason})")
    except OSError as e:
        return InputItem(str(path), None, None, f"cannot read ({e.strerror or e})")


def iter_inputs(
    inputs: Sequence[str | os.PathLike[str]],
    modality: str,
    text_field: str = "text",
    group_field: str | None = None,
) -> Iterator[InputItem]:
    """Expand CLI inputs into items, in order.

    Images: an image file; a folder (recursive, image extensions); a ``.txt``/``.lst`` file listing one
    path per line (relative to the list's folder). Any other file is treated as an image, so a text
    file named ``.jpg`` is reported as not an image.
    Text: a ``.jsonl`` file (one item per line, ``text_field`` holds the text); a ``.txt``/``.md`` file (the
    whole file is one text); a folder (recursive ``.txt``/``.md`` files).
    """
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            yield InputItem(str(p), None, None, "no such file or folder")
            continue
        if modality == "image":
            if p.is_dir():
                for f in _walk(p, IMAGE_EXTENSIONS):
                    yield InputItem(str(f), str(f))
            elif p.suffix.lower() in LIST_EXTENSIONS:
                with open(p, encoding="utf-8", errors="replace") as fh:
                    for n, line in enumerate(fh, start=1):
                        s = line.strip()
                        if s and not s.startswith("#"):
                            q = Path(s) if Path(s).is_absolute() else p.parent / s
                            yield InputItem(str(q), str(q)) if q.exists() else InputItem(
                                str(q), None, None, f"listed in {p}:{n} but not found"
                            )
            else:
                yield InputItem(str(p), str(p))
        else:
            if p.is_dir():
                for f in _walk(p, TEXT_EXTENSIONS | {".jsonl"}):
                    yield from (_iter_jsonl(f, text_field, group_field) if f.suffix == ".jsonl" else [_read_text_file(f)])
            elif p.suffix.lower() == ".jsonl":
                yield from _iter_jsonl(p, text_field, group_field)
            else:
                yield _read_text_file(p)
