"""Data sources and splits. A sample is a plain dict:

``{"item": <image path | text>, "label": 0|1, "generator": str, "domain": str, "source": str, "group": str}``

(``hf:`` image datasets add ``"image"``, the decoded image, and use a reference string as ``item``.)

Sources (``training.data_read``): an image folder (``real/`` + ``ai/`` or ``0_real`` + ``1_fake``, at any
depth; the subfolder below ``ai/`` names the generator), a JSONL / CSV / Parquet text file, or ``hf:org/name``
read by ``datasets.load_dataset`` (a local folder of data files works the same way). Splits are given, or
made by groups so that no group straddles train, dev and test; without ``group_by`` the copies of one item
form one group. After splitting, an item (a text after NFC and whitespace normalisation, an image's bytes)
labelled both 0 and 1 is an error, and so is a dev or test split made mostly of training items; fewer
shared items are a warning with counts and examples.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from training.config import DataConfig
from training.data_read import (
    IMAGE_EXTENSIONS,
    DataError,
    load_source,
    read_hf,
    read_image_folder,
    read_table,
    rows_from_records,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "LEAK_REFUSE_FRACTION",
    "DataError",
    "data_fingerprint",
    "item_key",
    "load_source",
    "make_splits",
    "read_hf",
    "read_image_folder",
    "read_table",
    "rows_from_records",
]

log = logging.getLogger(__name__)

LEAK_REFUSE_FRACTION = 0.5
"""A dev or test split with at least this fraction of its samples also in train is refused."""
_WS = re.compile(r"\s+")


# ------------------------------------------------------------------------------------------ item keys
def item_key(item: Any) -> str | None:
    """The identity of one text or in-memory image: equal keys, same item. Texts are compared after Unicode
    NFC with runs of whitespace collapsed and the ends stripped; image bytes / decoded images by content;
    image paths by their resolved path (``_image_keys`` compares files by content). None: no identity."""
    h = hashlib.blake2b(digest_size=16)
    if isinstance(item, str):
        h.update(b"t")
        h.update(_WS.sub(" ", unicodedata.normalize("NFC", item)).strip().encode("utf-8", "surrogatepass"))
    elif isinstance(item, (bytes, bytearray)):
        h.update(b"c")
        h.update(bytes(item))
    elif isinstance(item, dict):  # datasets' undecoded image: {"bytes": ..., "path": ...}
        if item.get("bytes"):
            return item_key(bytes(item["bytes"]))
        return "p:" + os.path.realpath(item["path"]) if item.get("path") else None
    elif hasattr(item, "tobytes") and hasattr(item, "mode") and hasattr(item, "size"):  # a PIL image
        h.update(f"i{item.mode}{item.size}".encode())
        h.update(item.tobytes())
    else:
        return None
    return h.hexdigest()


def _file_digest(path: str) -> str | None:
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return "c" + h.hexdigest()


def _set_keys(rows: list[dict[str, Any]], modality: str) -> None:
    """``_key`` of every row. Image files: only files that share a size with another are read and hashed
    (a file of a size of its own cannot equal any other), so an image is never missed and rarely read."""
    by_size: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        r["_key"] = None
        if modality == "text" or "image" in r:
            r["_key"] = item_key(r["image"] if "image" in r else r["item"])
            continue
        try:
            by_size[os.stat(r["item"]).st_size].append(r)
        except OSError:  # reported when the image is read
            pass
    for same in by_size.values():
        if len(same) == 1:
            same[0]["_key"] = "p:" + os.path.realpath(same[0]["item"])
        else:
            for r in same:
                r["_key"] = _file_digest(r["item"])


def _where(r: dict[str, Any]) -> str:
    return str(r.get("_where") or r["item"])


def _show(r: dict[str, Any]) -> str:
    item = r["item"]
    return f"{_where(r)} {item[:60]!r}" if "_where" in r and "image" not in r and isinstance(item, str) else _where(r)


# ------------------------------------------------------------------------------------------- checks
def _check_settings(cfg: DataConfig) -> None:
    """Range and combination checks of the split settings (before anything is read)."""
    for key in ("dev_fraction", "test_fraction"):
        v = getattr(cfg, key)
        if not (isinstance(v, (int, float)) and 0 <= v < 1):
            raise DataError(f"data.{key} = {v!r}: expected a fraction of the groups in [0, 1), e.g. 0.1")
    if not cfg.dev and not cfg.test and not cfg.holdout_column and cfg.dev_fraction + cfg.test_fraction >= 1:
        raise DataError(f"data.dev_fraction + data.test_fraction = {cfg.dev_fraction + cfg.test_fraction:g}: "
                        "nothing would be left to train on; their sum must be below 1")
    for key in ("max_train", "max_dev", "max_test"):
        v = getattr(cfg, key)
        if v < 0:
            raise DataError(f"data.{key} = {v}: expected 0 (all samples) or a positive count")
    if cfg.holdout_column and cfg.test:
        raise DataError(
            f"data.holdout_column ({cfg.holdout_column!r}) makes the test split from data.train's held-out samples, "
            f"and data.test ({cfg.test!r}) gives a test source; set one of them (with both, the held-out samples "
            "would be in no split)"
        )
    if cfg.holdout_values and not cfg.holdout_column:
        raise DataError(f"data.holdout_values {list(cfg.holdout_values)} is set but data.holdout_column is empty")


LABEL_CONFLICT_REFUSE_FRACTION = 0.01  # items carrying both labels: above this share of the data, a refusal


def _check_labels(pools: list[list[dict[str, Any]]], modality: str) -> set[str]:
    """Items labelled both 0 and 1 (anywhere in the data): the keys of such items, to be left out of every split
    with a warning naming them; a refusal when they are more than ``LABEL_CONFLICT_REFUSE_FRACTION`` of the
    items (a labelling bug rather than a few texts the generators happened to copy, as public continuation sets
    hold: fastdetectgpt has 2 among 30,000)."""
    first: dict[str, dict[str, Any]] = {}
    conflicts: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    n = 0
    for rows in pools:
        for r in rows:
            n += 1
            k = r["_key"]
            if k is None:
                continue
            f = first.setdefault(k, r)
            if f["label"] != r["label"] and k not in conflicts:
                conflicts[k] = (f, r)
    if not conflicts:
        return set()
    ex = "; ".join(f"{_show(a)} (label {a['label']}) and {_where(b)} (label {b['label']})"
                   for a, b in list(conflicts.values())[:3])
    what = "text" if modality == "text" else "image"
    msg = f"{len(conflicts)} {what}(s) carry both labels, 0 and 1: {ex}"
    if len(conflicts) > LABEL_CONFLICT_REFUSE_FRACTION * n:
        raise DataError(f"{msg}. One of each is mislabelled (or the {what} cannot be told apart); fix or remove "
                        f"them (more than {LABEL_CONFLICT_REFUSE_FRACTION:.0%} of the {n} samples: not left out)")
    log.warning("%s. Every copy of them is left out of every split (%d of %d samples carry a conflict)", msg,
                sum(r["_key"] in conflicts for rows in pools for r in rows), n)
    return set(conflicts)


def _check_overlap(splits: dict[str, list[dict[str, Any]]], cfg: DataConfig, modality: str) -> None:
    """Items shared by train and dev/test: a warning with counts and examples, an error when they make up
    ``LEAK_REFUSE_FRACTION`` of dev or test (metrics of memorisation, not of detection)."""
    same = "text, after NFC and whitespace normalisation" if modality == "text" else "image content"
    first: dict[str, dict[str, dict[str, Any]]] = {}
    for name, rows in splits.items():
        first[name] = {}
        for r in rows:
            if r["_key"] is not None:
                first[name].setdefault(r["_key"], r)
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        rows = splits[b]
        shared = [r for r in rows if r["_key"] in first[a]]
        if not shared:
            continue
        frac = len(shared) / len(rows)
        ex = "; ".join(f"{_show(r)} (in {a}: {_where(first[a][r['_key']])})" for r in shared[:3])
        msg = f"{len(shared)} of {len(rows)} {b} samples ({frac:.0%}) are also in the {a} split (same {same}), e.g. {ex}"
        hint = ("deduplicate the data" if cfg.group_by else "deduplicate the data or set data.group_by") + (
            ", or set data.group_human_text" if modality == "text" and not cfg.group_human_text and cfg.group_by else "")
        if a == "train" and frac >= LEAK_REFUSE_FRACTION:
            given = getattr(cfg, b)
            src = (f"is data.{b} ({given!r}) the training data? give a separate {b} source, or "
                   if given else "")
            raise DataError(f"{msg}: {b} metrics would measure memorisation; {src}{hint}")
        log.warning("%s; %s metrics are optimistic: %s", msg, b, hint)


# -------------------------------------------------------------------------------------------- splits
def _filter(rows: list[dict[str, Any]], cfg: DataConfig) -> list[dict[str, Any]]:
    for col, allowed in cfg.include.items():
        keep = {str(v) for v in allowed}
        rows = [r for r in rows if str(r.get(col, r.get(f"_col_{col}"))) in keep]
    return rows


def _read(cfg: DataConfig, name: str, split: str, modality: str, spec: str | None = None) -> list[dict[str, Any]]:
    """The source of ``data.<name>`` (or ``spec``, named ``data.<name>`` in errors), filtered by ``include``; empty
    before or after the filter is an error."""
    spec = getattr(cfg, name) if spec is None else spec
    rows = load_source(spec, cfg, split, modality)
    if not rows:
        raise DataError(f"data.{name} {spec!r}: no samples")
    kept = _filter(rows, cfg)
    if not kept:
        raise DataError(f"data.{name} {spec!r}: none of its {len(rows)} samples passes data.include {dict(cfg.include)}")
    return kept


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v))


def _assign_groups(rows: list[dict[str, Any]], cfg: DataConfig, prefix: str) -> None:
    first: dict[str, int] = {}
    for i, r in enumerate(rows):
        if cfg.group_by:
            v = r.get(cfg.group_by, r.get(f"_col_{cfg.group_by}"))
            if _missing(v):
                raise DataError(f"{_where(r)}: no value in column {cfg.group_by!r} (data.group_by)")
            r["group"] = str(v)
        else:  # copies of one item share a group (the first copy's index), so no split holds both
            k = r.get("_key")
            r["group"] = f"{prefix}{first.setdefault(k, i) if k is not None else i}"
    if cfg.group_human_text:
        # every group that holds a human text takes that text's hash as its group: groups sharing a human
        # text (one human text continued by several generators) become one group.
        human: dict[str, str] = {}
        for r in rows:
            if r["label"] == 0 and isinstance(r["item"], str) and r["group"] not in human:
                human[r["group"]] = "h:" + hashlib.sha1(r["item"].encode("utf-8")).hexdigest()[:16]
        for r in rows:
            r["group"] = human.get(r["group"], r["group"])


def _split_groups(rows: list[dict[str, Any]], fraction: float, rng: np.random.Generator) -> tuple[list, list]:
    groups = sorted({r["group"] for r in rows})
    n = round(len(groups) * fraction)
    if fraction > 0 and n == 0 and len(groups) > 1:
        n = 1
    chosen = set(np.asarray(groups, dtype=object)[rng.permutation(len(groups))[:n]].tolist()) if n else set()
    return [r for r in rows if r["group"] not in chosen], [r for r in rows if r["group"] in chosen]


def _subset(rows: list[dict[str, Any]], n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    if n <= 0 or len(rows) <= n:
        return rows
    idx = np.sort(rng.choice(len(rows), size=n, replace=False))
    return [rows[i] for i in idx]


def _hold_out(train: list[dict[str, Any]], cfg: DataConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train without the held-out groups, test: held-out samples plus the human samples of their groups)."""
    if not cfg.holdout_values:
        raise DataError("data.holdout_column is set but data.holdout_values is empty")
    vals = {str(v) for v in cfg.holdout_values}
    col = cfg.holdout_column

    def held(r: dict[str, Any]) -> bool:
        return str(r.get(col, r.get(f"_col_{col}"))) in vals

    present = {str(r.get(col, r.get(f"_col_{col}"))) for r in train}
    if not vals & present:
        raise DataError(f"data.holdout_values {sorted(vals)} match no sample's {col!r} (found {sorted(present)[:12]})")
    held_groups = {r["group"] for r in train if held(r)}
    test = [r for r in train if r["group"] in held_groups and (held(r) or r["label"] == 0)]
    dropped = sum(1 for r in train if r["group"] in held_groups and not held(r) and r["label"] == 1)
    if dropped:
        log.info("hold-out: dropped %d samples that share a group with held-out samples", dropped)
    return [r for r in train if r["group"] not in held_groups], test


def make_splits(cfg: DataConfig, modality: str) -> dict[str, list[dict[str, Any]]]:
    """Read the configured sources and return ``{"train": [...], "dev": [...], "test": [...]}`` (test may be empty).

    Order: check the settings, read (each given source must hold samples, before and after ``include``),
    groups (``group_by``; without it, copies of one item are one group), hold-out (``holdout_column`` /
    ``holdout_values``: those samples plus the human samples of their groups form test; the other samples of
    those groups are dropped, so nothing of a held-out group trains), then dev/test by group fractions unless
    given, then subsets. Items labelled both 0 and 1 are refused; items shared between splits are counted
    (``_check_overlap``).
    """
    if not cfg.train:
        raise DataError("data.train is empty: give an image folder, a text file or hf:org/name")
    _check_settings(cfg)
    rng = np.random.default_rng(cfg.seed)
    train = _read(cfg, "train", cfg.train_split, modality)
    extra = [r for i, spec in enumerate(cfg.extra_train)
             for r in _read(cfg, f"extra_train[{i}]", cfg.train_split, modality, spec)]
    given = {name: _read(cfg, name, split, modality) for name, split in
             (("test", cfg.test_split), ("dev", cfg.dev_split)) if getattr(cfg, name)}
    _set_keys([r for rows in (train, extra, *given.values()) for r in rows], modality)
    _assign_groups(train, cfg, "train:")
    _assign_groups(extra, cfg, "extra:")
    test: list[dict[str, Any]] = []
    if cfg.holdout_column:
        train, test = _hold_out(train, cfg)
    if "test" in given:
        test = given["test"]
        _assign_groups(test, cfg, "test:")
    elif not test and cfg.test_fraction > 0:
        train, test = _split_groups(train, cfg.test_fraction, rng)
    if "dev" in given:
        dev = given["dev"]
        _assign_groups(dev, cfg, "dev:")
    else:
        train, dev = _split_groups(train, cfg.dev_fraction, rng)
    conflicted = _check_labels([train + extra, dev, test], modality)
    if conflicted:
        train, dev, test, extra = ([r for r in rows if r["_key"] not in conflicted] for rows in (train, dev, test, extra))
    # one random stream per split, so that the dev subset does not change with max_train (nor any with extra_train)
    splits = {
        "train": _subset(train, cfg.max_train, np.random.default_rng([cfg.seed, 1])) + extra,
        "dev": _subset(dev, cfg.max_dev, np.random.default_rng([cfg.seed, 2])),
        "test": _subset(test, cfg.max_test, np.random.default_rng([cfg.seed, 3])),
    }
    if not splits["train"]:
        raise DataError("the training split is empty after hold-out and the dev/test split"
                        + (f" (data.holdout_values {list(cfg.holdout_values)} hold out every group)" if cfg.holdout_column else ""))
    if not splits["dev"]:
        raise DataError("the dev split is empty: give data.dev or a data.dev_fraction > 0")
    _check_overlap(splits, cfg, modality)
    for name, rows in splits.items():
        for r in rows:
            for k in [k for k in r if k.startswith("_")]:
                r.pop(k)
        if rows and len({r["label"] for r in rows}) < 2:
            log.warning("the %s split holds one class only (%d samples)", name, len(rows))
    return splits


def data_fingerprint(splits: dict[str, list[dict[str, Any]]]) -> str:
    """sha256 over every split's (item, label, group) in order; image files add their size and mtime."""
    h = hashlib.sha256()
    for name in sorted(splits):
        h.update(name.encode())
        for r in splits[name]:
            item = r["item"]
            h.update(json.dumps([str(item), r["label"], r.get("group", "")], ensure_ascii=False).encode("utf-8"))
            if "image" not in r and isinstance(item, str) and len(item) < 4096:
                p = Path(item)
                if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
                    st = p.stat()
                    h.update(f"{st.st_size}:{int(st.st_mtime)}".encode())
    return "sha256:" + h.hexdigest()
