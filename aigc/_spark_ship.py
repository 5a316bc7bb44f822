"""How a bundle travels to Spark's executors and is opened there once (``aigc.spark``'s shipping half).

The driver names a bundle by its sha256 (:func:`bundle_digest`), zips a folder to exactly the files its bundle.json
lists (:func:`_zip_folder`) or links a ``.zip`` under a name carrying that digest (:func:`_named_zip`), both in a
temporary folder removed when the driver exits; each node extracts a ``.zip`` once, shared by its Python workers
(:func:`_extracted`), and refuses a folder found there whose bundle.json is not the zip's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

_ZIPPED: dict[tuple[str, str], Path] = {}  # (folder or .zip, its digest) -> the digest-named zip shipped for it
NODE_CACHE = "aigc-spark-bundles"  # under the temporary folder: a zip given with ship=False, extracted once per node


def _driver_tmp() -> Path:
    """A temporary folder for what the driver ships, removed when the driver process exits (Spark serves an
    added file from its path for as long as the session runs; a folder zipped for it is a copy of the bundle)."""
    import atexit

    d = Path(tempfile.mkdtemp(prefix="aigc-spark-"))
    atexit.register(shutil.rmtree, d, True)
    return d


def _extracted(zip_path: Path, digest: str, root: Path | None = None) -> Path:
    """The folder a bundle ``.zip`` is extracted to on this node, made once and shared by every Python worker.

    A zip opened by ``aigc.load`` is extracted to a temporary folder that is removed when the process exits
    normally, and Spark ends its Python workers without that: each worker left its copy behind (one bundle's
    size, every worker, every job). Here it is extracted once under ``root`` (for a shipped zip, Spark's files
    folder, which Spark removes when the application ends; None: ``<tmp>/aigc-spark-bundles``, one copy per
    node and bundle, reused by later jobs, for a zip given with ``ship=False``, never beside the user's file),
    to a folder named by the zip's sha256: written under a name of its own, then renamed into place, so a
    worker never sees half a folder and two workers racing keep one copy. A folder found there is used only if
    its bundle.json is the zip's, byte for byte (it holds the sha256 of every other file, checked when the bundle
    opens): anything else is refused, naming the folder, never scored with."""
    from ._bundle import extract_zip

    root = Path(tempfile.gettempdir()) / NODE_CACHE if root is None else root
    out = root / f"aigc-bundle-{digest[:16]}"
    if out.exists():
        return _same_bundle_json(zip_path, out)
    root.mkdir(parents=True, exist_ok=True)
    part = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=root))
    try:
        extract_zip(zip_path, part)
        try:
            part.rename(out)
        except OSError:  # another worker renamed its copy first (checked below like any folder found there)
            if not out.exists():
                raise
    finally:
        shutil.rmtree(part, ignore_errors=True)
    return _same_bundle_json(zip_path, out)


def _same_bundle_json(zip_path: Path, folder: Path) -> Path:
    """``folder`` when its top-most bundle.json has the bytes of the zip's; RuntimeError naming both otherwise."""
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted((n for n in zf.namelist() if PurePosixPath(n).name == "bundle.json"), key=lambda n: n.count("/"))
        want = zf.read(names[0]) if names else None
    got = folder / names[0] if names else None
    if want is None or got is None or not got.is_file() or got.read_bytes() != want:
        raise RuntimeError(f"{folder}: its bundle.json is not the one in {zip_path} (another bundle, or a changed "
                           "copy, is extracted there); remove that folder and run again")
    return folder


def bundle_digest(path: str | os.PathLike[str]) -> str:
    """The sha256 that names a bundle: of the file for a ``.zip``; for a folder, of its ``bundle.json``
    (which holds the sha256 of every other file, checked when the bundle opens). BundleError (a ValueError)
    names the path when it is no bundle: missing, a folder without bundle.json at its top (and the
    sub-folder that holds one, where exactly one does), or a file that is not a zip."""
    from ._bundle import BundleError, sha256_file

    p = Path(path)
    if p.is_dir():
        if not (p / "bundle.json").is_file():
            raise BundleError(_no_bundle_json(p))
        return sha256_file(p / "bundle.json")
    if not p.exists():
        raise BundleError(f"{p}: no such bundle (expected a bundle folder or a .zip)")
    if not p.is_file() or not zipfile.is_zipfile(p):
        raise BundleError(f"{p}: not a bundle (expected a folder with bundle.json at its top, or a .zip of one)")
    return sha256_file(p)


def _no_bundle_json(folder: Path) -> str:
    """Why ``folder`` is no bundle folder, naming the one sub-folder that holds a bundle.json if there is one."""
    from ._bundle import bundle_subfolders

    try:
        subs = bundle_subfolders(folder)
    except OSError:
        subs = []
    msg = f"{folder}: not a bundle folder (no bundle.json at its top)"
    if len(subs) == 1:
        msg += f"; the bundle seems to be {subs[0]}: pass that path"
    elif subs:
        msg += f"; {len(subs)} sub-folders hold one ({', '.join(d.name for d in subs[:5])}): pass the one you mean"
    return msg


def bundle_file_names(spec: dict[str, Any]) -> list[str]:
    """The files a bundle consists of, relative to its folder: ``bundle.json`` and every file it hashes
    (``files``, which holds each variant's graph and external data and the tokenizers; validate_spec
    checks that). BundleError for a name that would leave the folder."""
    from ._bundle import BundleError, model_files, text_files
    from ._printable import printable

    names = set(spec.get("files") or {}) | set(model_files(spec))
    if spec.get("modality") == "text":
        names |= set(text_files(spec["preprocessing"]))
    for n in names:
        pp = PurePosixPath(n)
        if not n or "\\" in n or pp.is_absolute() or ".." in pp.parts:
            raise BundleError(f"files.{printable(n)}: expected a path inside the bundle folder")
    return ["bundle.json", *sorted(names - {"bundle.json"})]


def _zip_folder(folder: Path, digest: str) -> Path:
    """The bundle folder as a zip of exactly its files (:func:`bundle_file_names`, at their paths relative to
    the folder, fixed timestamps): a note, a checkpoint or a .DS_Store left beside them is not shipped. In a
    temporary folder, named by the folder and its digest so that two bundles never clash among Spark's files;
    made once per driver process and bundle, so scoring twice ships the same file. BundleError names a
    listed file that is missing."""
    from ._bundle import BundleError, load_bundle_spec
    from ._printable import printable

    key = (str(folder.resolve()), digest)
    if key in _ZIPPED and _ZIPPED[key].is_file():
        return _ZIPPED[key]
    names = bundle_file_names(load_bundle_spec(folder, verify_files=False))
    for n in names:
        if not (folder / n).is_file():
            raise BundleError(f"files.{printable(n)}: listed in bundle.json but missing from {folder}")
    out = _driver_tmp() / f"{folder.resolve().name or 'bundle'}-{digest[:12]}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for n in names:
            info = zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0))
            with open(folder / n, "rb") as src, z.open(info, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    _ZIPPED[key] = out
    return out


def _named_zip(bundle_zip: Path, digest: str) -> Path:
    """The bundle's .zip under a name that carries its digest (``NAME-<sha256[:12]>.zip``), hard-linked, or
    copied where a link cannot be made, into a temporary folder; once per driver process and bundle.

    Spark names the files it ships by their base name alone and fails the job when a file of that name
    differs from one shipped before in the session: a second ``bundle.zip`` (another model, or the same
    path rewritten by a new export) could not be scored until the session restarted."""
    key = (str(bundle_zip.resolve()), digest)
    if key in _ZIPPED and _ZIPPED[key].is_file():
        return _ZIPPED[key]
    out = _driver_tmp() / f"{bundle_zip.stem or 'bundle'}-{digest[:12]}.zip"
    try:
        os.link(bundle_zip, out)
    except OSError:
        shutil.copyfile(bundle_zip, out)
    _ZIPPED[key] = out
    return out
