"""Writing bundles: finish one (``write_bundle``: sha256 of every file, validate, ``bundle.json`` written
atomically), zip it (``zip_bundle``) and put it in place (``place_bundle``, which replaces only an earlier bundle:
``not_replaceable``). Reading and validation (``BundleError``, ``validate_spec``, ``load_bundle_spec``,
``open_bundle``, ``model_files``, ``sha256_file``) live in :mod:`aigc._bundle`, which re-exports every name here,
so ``from aigc._bundle import write_bundle`` keeps working. See docs/bundle.md.

This module imports :mod:`aigc._bundle` and that module imports this one at its end; the package imports
``aigc._bundle`` first (``aigc/__init__.py``), so the names below are defined by the time this one asks for them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from ._bundle import format_version_for, sha256_file, validate_spec

__all__ = ["check_replaceable", "not_replaceable", "place_bundle", "write_bundle", "zip_bundle"]


def write_bundle(out_dir: str | os.PathLike[str], spec: dict[str, Any], overwrite: bool = False) -> Path:
    """Finish a bundle whose files already lie in ``out_dir``: fill ``files`` with sha256 digests of
    every file there (sub-folders excluded), validate, and write ``bundle.json`` atomically.

    Refuses to replace an existing bundle.json unless ``overwrite``.
    """
    out = Path(out_dir)
    bj = out / "bundle.json"
    if bj.exists() and not overwrite:
        raise FileExistsError(f"{bj} exists; pass overwrite=True to replace it")
    spec = dict(spec)
    spec["format_version"] = format_version_for(spec)  # the oldest that carries it: older readers keep working
    spec["files"] = {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file() and p.name != "bundle.json"}
    validate_spec(spec)
    fd, tmp = tempfile.mkstemp(prefix=".bundle.", suffix=".json", dir=out)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=2, sort_keys=False)
        f.write("\n")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; bundle.json is read like the bundle's other files
    os.replace(tmp, bj)
    return bj


def zip_bundle(folder: str | os.PathLike[str], zip_path: str | os.PathLike[str]) -> Path:
    """Zip a bundle folder (files at the top level of the archive)."""
    folder, zp = Path(folder), Path(zip_path)
    base = shutil.make_archive(str(zp.with_suffix("")), "zip", root_dir=folder)
    if Path(base) != zp:
        os.replace(base, zp)
    return zp


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (/proc/self/status)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def not_replaceable(out: str | os.PathLike[str]) -> str | None:
    """Why (``"X exists and is ..."``) a new bundle may not replace what is at ``out``, or None when it may:
    nothing there, an empty folder, or an earlier bundle of the same kind (a folder with bundle.json at its top; for a ``.zip``
    ``out``, a zip holding a bundle.json). Anything else (a data file, a folder of other files) is never
    replaced, whatever ``overwrite`` says."""
    out = Path(out)
    if not out.exists() and not out.is_symlink():
        return None
    if out.suffix == ".zip":
        if out.is_file() and zipfile.is_zipfile(out):
            try:
                with zipfile.ZipFile(out) as zf:
                    if any(Path(n).name == "bundle.json" and len(Path(n).parts) <= 2 for n in zf.namelist()):
                        return None
            except (zipfile.BadZipFile, OSError):
                pass
        return f"{out} exists and is not a zipped bundle (no bundle.json in it)"
    if out.is_dir() and not out.is_symlink() and (not any(out.iterdir()) or (out / "bundle.json").is_file()):
        return None
    what = "a link" if out.is_symlink() else "a folder without bundle.json at its top" if out.is_dir() else "a file"
    return f"{out} exists and is {what}, not a bundle folder"


def _empty_folder(out: Path) -> bool:
    return out.is_dir() and not out.is_symlink() and out.suffix != ".zip" and not any(out.iterdir())


def check_replaceable(out: str | os.PathLike[str], overwrite: bool) -> None:
    """Raise FileExistsError unless a new bundle may be put at ``out``: nothing there, an empty folder, or (with
    ``overwrite``) an earlier bundle (:func:`not_replaceable`). The one rule of export, calibrate and
    :func:`place_bundle`, so that a refusal comes before any work rather than after it."""
    out = Path(out)
    if (out.exists() or out.is_symlink()) and not _empty_folder(out):
        why = not_replaceable(out)
        if why:
            raise FileExistsError(f"--out {why}: choose another --out (--overwrite replaces an earlier bundle only, "
                                  "never other files)")
        if not overwrite:
            raise FileExistsError(f"{out} exists; pass --overwrite to replace it")


def place_bundle(tmp: str | os.PathLike[str], out: str | os.PathLike[str], overwrite: bool) -> Path:
    """Move a finished bundle folder ``tmp`` to ``out`` (or zip it there when ``out`` ends in ``.zip``, then
    remove ``tmp``). An existing non-empty ``out`` is replaced only with ``overwrite`` (the caller refuses
    earlier otherwise) and only when it is a bundle itself (:func:`not_replaceable`; FileExistsError
    otherwise), by a rename, so readers never see half a bundle. The folder gets the mode a plain
    ``mkdir`` would give it (``tmp`` came from ``mkdtemp``, which is private: 0700), so that a service
    running as another user can read the bundle as it can read its files."""
    tmp, out = Path(tmp), Path(out)
    check_replaceable(out, overwrite)
    empty = _empty_folder(out)
    if tmp.is_dir():
        tmp.chmod(0o777 & ~_umask())
    if out.suffix == ".zip":
        if out.exists():
            out.unlink()
        zip_bundle(tmp, out)
        shutil.rmtree(tmp, ignore_errors=True)
        return out
    if empty:
        out.rmdir()
    elif out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
        return out
    os.replace(tmp, out)
    return out
