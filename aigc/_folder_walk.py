"""Walking input folders and telling what each file found there is.

:func:`_walk` lists every file below a folder in sorted order (symlinked folders followed, each real folder
once) and reports a sub-folder that cannot be listed as an error instead of stopping. :func:`_walk_kind` says
what a walked file is for a bundle of one modality (an image, a text format) or why the walk skips it; the
extension sets behind that (:data:`IMAGE_EXTENSIONS`, the list and walked text formats) live here too.
:mod:`aigc._inputs` turns the files into items and checks inputs with the same rules.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ._readers import detect_format

if TYPE_CHECKING:
    from ._inputs import ReadNotes

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".jfif", ".heic", ".heif", ".avif"}
LIST_EXTENSIONS = {".txt", ".lst", ".list"}
# formats a text-bundle folder walk reads (.json is read only when named: folders often hold JSON configs)
WALK_TEXT_FORMATS = ("jsonl", "csv", "tsv", "parquet", "text")


def _walk(folder: Path, notes: ReadNotes | None = None) -> Iterator[tuple[Path, str | None]]:
    """(file, None) for every file below ``folder``, in sorted order, and (folder, error) for each folder that
    cannot be listed. Symlinked folders are followed, each real folder once: a link back up (a loop) or to a
    folder already walked is skipped with a note."""
    failed: list[OSError] = []
    walked = {os.path.realpath(folder)}
    for root, dirs, files in os.walk(folder, onerror=failed.append, followlinks=True):
        yield from _unreadable(failed)
        keep = []
        for d in sorted(dirs):
            sub = os.path.join(root, d)
            real = os.path.realpath(sub)
            if real in walked:
                if notes is not None:
                    notes.note(f"{sub}: a link to {real}, a folder already walked; not walked again")
                continue
            walked.add(real)
            keep.append(d)
        dirs[:] = keep
        for f in sorted(files):
            yield Path(root) / f, None
    yield from _unreadable(failed)


def _unreadable(failed: list[OSError]) -> Iterator[tuple[Path, str]]:
    while failed:
        e = failed.pop(0)
        yield Path(e.filename), f"{e.filename}: cannot read this folder ({e.strerror or e}); nothing below it was read"


def _walk_kind(f: Path, modality: str) -> tuple[str | None, str | None]:
    """A walked file's format (``'image'`` or a text format) and None, or None and why it is skipped."""
    if f.name.startswith("."):
        return None, "hidden"
    if modality == "image":
        if _is_image(f):
            return "image", None
        return None, "not images" if detect_format(f.name) else "with an unknown extension"
    fmt = _text_format(f)
    if fmt:
        return fmt, None
    if detect_format(f.name) == "json":
        return None, ".json (read only when named)"
    return None, "images" if _is_image(f) else "with an unknown extension"


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS


def _text_format(p: Path) -> str | None:
    fmt = detect_format(p.name)
    return fmt if fmt in WALK_TEXT_FORMATS else None
