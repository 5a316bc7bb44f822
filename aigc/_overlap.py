"""Per-item hashes of a bundle's calibration and training data, and the check that evaluation data overlaps
them (numpy and hashlib only).

An evaluation on items the detector was trained or calibrated on is optimistic; a data fingerprint (one
hash of a whole split) cannot say which items are shared. Export therefore writes ``data_hashes.json``
beside the model: for each of ``calibration`` and ``training``, the sorted 48-bit prefixes of the sha256
of every item (texts: Unicode NFC with runs of whitespace collapsed and the ends stripped; images: the
file's bytes), at most ``MAX_HASHED`` items per part (a seeded sample beyond that, recorded as such).
48 bits keep a chance match below 1e-9 per item for 100k stored hashes; 20k items cost about 160 kB.

``bundle.json`` holds ``data_hashes`` (versioned): ``{"version": 1, "file": "data_hashes.json",
"calibration": {"n", "n_hashed"}, "training": {"n", "n_hashed"} | None}``. Bundles made before it have
no such field, and their overlap is reported as unknown.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DATA_HASHES_FILE", "DATA_HASHES_VERSION", "MAX_HASHED", "add_calibration_items", "check_overlap", "hash_items",
           "write_data_hashes"]

DATA_HASHES_VERSION = 1
DATA_HASHES_FILE = "data_hashes.json"
MAX_HASHED = 20_000
_NBYTES = 6
_WS = re.compile(r"\s+")


def _digest(item: Any, modality: str) -> bytes | None:
    """The 48-bit hash of one item; None when it cannot be read (an image path that is gone)."""
    if modality == "text":
        if not isinstance(item, str):
            return None
        t = _WS.sub(" ", unicodedata.normalize("NFC", item)).strip()
        return hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest()[:_NBYTES]
    if isinstance(item, (bytes, bytearray)):
        return hashlib.sha256(bytes(item)).digest()[:_NBYTES]
    if isinstance(item, (str, os.PathLike)):
        h = hashlib.sha256()
        try:
            with open(item, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        except OSError:
            return None
        return h.digest()[:_NBYTES]
    return None


def _digests(items: Sequence[Any], modality: str) -> np.ndarray:
    """Unique 48-bit hashes of ``items`` as sorted uint64 (unreadable items left out)."""
    ds = [d for it in items if (d := _digest(it, modality)) is not None]
    if not ds:
        return np.zeros(0, dtype=np.uint64)
    return np.unique(np.array([int.from_bytes(d, "big") for d in ds], dtype=np.uint64))


def hash_items(items: Sequence[Any], modality: str, cap: int = MAX_HASHED, seed: int = 0) -> dict[str, Any]:
    """``{"n", "n_hashed", "sampled", "hashes"}`` of ``items``: ``hashes`` is base64 of the sorted unique
    6-byte digests of at most ``cap`` items (a seeded sample when there are more)."""
    n = len(items)
    idx = np.arange(n)
    if n > cap:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))
    d = _digests([items[int(i)] for i in idx], modality)
    return {"n": n, "n_hashed": int(idx.size), "sampled": bool(n > cap), "hashes": _encode(d)}


def _encode(hashes: np.ndarray) -> str:
    """base64 of the 6-byte big-endian digests ``hashes`` (uint64), as data_hashes.json stores them."""
    return base64.b64encode(b"".join(int(x).to_bytes(_NBYTES, "big") for x in hashes)).decode("ascii")


def _decode(text: str) -> np.ndarray:
    """The digests (uint64) of a stored ``hashes`` string: :func:`_encode`'s inverse."""
    raw = base64.b64decode(text)
    return np.array([int.from_bytes(raw[i : i + _NBYTES], "big") for i in range(0, len(raw), _NBYTES)], dtype=np.uint64)


def write_data_hashes(
    folder: str | os.PathLike[str],
    calibration_items: Sequence[Any],
    training_items: Sequence[Any] | None,
    modality: str,
) -> dict[str, Any]:
    """Write ``data_hashes.json`` into a bundle folder and return the ``data_hashes`` field of bundle.json."""
    parts: dict[str, Any] = {"calibration": hash_items(calibration_items, modality)}
    if training_items is not None:
        parts["training"] = hash_items(training_items, modality)
    doc = {"version": DATA_HASHES_VERSION, "modality": modality, "hash": f"sha256, first {_NBYTES} bytes", **parts}
    Path(folder, DATA_HASHES_FILE).write_text(json.dumps(doc) + "\n", encoding="utf-8")
    field: dict[str, Any] = {"version": DATA_HASHES_VERSION, "file": DATA_HASHES_FILE}
    for k in ("calibration", "training"):
        field[k] = {x: parts[k][x] for x in ("n", "n_hashed", "sampled")} if k in parts else None
    return field


def add_calibration_items(folder: str | os.PathLike[str], field: Any, items: Sequence[Any], modality: str
                          ) -> dict[str, Any] | None:
    """Add ``items`` (data that set more of the bundle's thresholds: ``aigc calibrate --groups-only``) to the
    calibration part of the ``data_hashes.json`` in ``folder``, described by the bundle's ``field``; returns the
    new field, or None when the bundle records no hashes of this version (its overlap stays unknown). The
    union keeps every stored hash and adds up to ``MAX_HASHED`` of the new items' (a seeded sample beyond
    that), so ``sampled`` is true when either part was sampled."""
    if not isinstance(field, dict) or field.get("version") != DATA_HASHES_VERSION:
        return None
    path = Path(folder, str(field.get("file", DATA_HASHES_FILE)))
    doc = json.loads(path.read_text(encoding="utf-8"))
    old = doc.get("calibration") or {"n": 0, "n_hashed": 0, "sampled": False, "hashes": ""}
    new = hash_items(items, modality)
    both = np.unique(np.r_[_decode(old["hashes"]), _decode(new["hashes"])])
    doc["calibration"] = {"n": int(old["n"]) + new["n"], "n_hashed": int(old["n_hashed"]) + new["n_hashed"],
                          "sampled": bool(old["sampled"] or new["sampled"]), "hashes": _encode(both)}
    path.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    return {**field, "calibration": {k: doc["calibration"][k] for k in ("n", "n_hashed", "sampled")}}


def _load(root: Path, field: dict[str, Any]) -> dict[str, np.ndarray | None]:
    doc = json.loads((root / str(field.get("file", DATA_HASHES_FILE))).read_text(encoding="utf-8"))
    out: dict[str, np.ndarray | None] = {}
    for k in ("calibration", "training"):
        part = doc.get(k)
        if not part:
            out[k] = None
            continue
        out[k] = _decode(part["hashes"])
    return out


def check_overlap(root: str | os.PathLike[str], spec: dict[str, Any], items: Sequence[Any], modality: str) -> dict[str, Any]:
    """How many of ``items`` lie in the bundle's calibration and training data.

    Returns ``{"status": "checked", "n_items", "calibration": {...}, "training": {...}}`` where each part
    holds ``n_overlap`` (evaluated items whose hash is stored), ``share`` and, when the stored hashes are a
    sample, ``note``; a part the bundle did not record is ``{"status": "unknown"}``. A bundle without
    ``data_hashes`` (made before it) gives ``{"status": "unknown", "reason": ...}``.
    """
    field = spec.get("data_hashes")
    if not isinstance(field, dict) or field.get("version") != DATA_HASHES_VERSION:
        why = "the bundle stores no per-item data hashes (made before data_hashes)" if not field else \
            f"data_hashes version {field.get('version')!r} is not one this aigc reads"
        return {"status": "unknown", "reason": why, "n_items": len(items)}
    try:
        stored = _load(Path(root), field)
    except (OSError, ValueError, KeyError) as e:
        return {"status": "unknown", "reason": f"cannot read {field.get('file')}: {e}", "n_items": len(items)}
    ev = [_digest(it, modality) for it in items]
    ev_int = np.array([int.from_bytes(d, "big") if d is not None else 0 for d in ev], dtype=np.uint64)
    readable = np.array([d is not None for d in ev])
    out: dict[str, Any] = {"status": "checked", "n_items": len(items)}
    for k in ("calibration", "training"):
        h = stored.get(k)
        meta = field.get(k) or {}
        if h is None:
            out[k] = {"status": "unknown", "reason": f"the bundle recorded no {k} items"}
            continue
        hit = readable & np.isin(ev_int, h)
        n_hit = int(hit.sum())
        entry: dict[str, Any] = {"status": "checked", "n_overlap": n_hit, "share": n_hit / max(1, len(items)),
                                 "n_stored": int(meta.get("n", h.size))}
        if meta.get("sampled"):
            entry["note"] = f" (hashes of a sample of {meta.get('n_hashed')} of {meta.get('n')} items: the overlap may be larger)"
        out[k] = entry
    return out
