"""Data sources and splits. A sample is a plain dict:

``{"item": <image path | text>, "label": 0|1, "generator": str, "domain": str, "source": str, "group": str}``

(``hf:`` image datasets add ``"image"``, the decoded image, and use a reference string as ``item``.)

Sources: an image folder (``real/`` + ``ai/`` or ``0_real`` + ``1_fake``, at any depth; the subfolder
below ``ai/`` names the generator), a JSONL / CSV / Parquet text file, or ``hf:org/name`` read by
``datasets.load_dataset`` (a local folder of data files works the same way). Splits are given, or made
by groups so that no group straddles train, dev and test.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from training.config import DataConfig

__all__ = [
    "IMAGE_EXTENSIONS",
    "DataError",
    "data_fingerprint",
    "load_source",
    "make_splits",
    "read_image_folder",
    "read_table",
    "rows_from_records",
]

log = logging.getLogger(__name__)

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
    ``unknown``. ``source``: the root's name.
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
    for cd in class_dirs:
        # skip class folders nested inside another class folder (ai/real_looking/...)
        if any(p.name.lower() in _REAL_DIRS | _AI_DIRS for p in cd.relative_to(root).parents if p != Path(".")):
            continue
        label = 0 if cd.name.lower() in _REAL_DIRS else 1
        above = cd.parent.relative_to(root).parts if cd.parent != root else ()
        for f in sorted(cd.rglob("*")):
            if not f.is_file() or f.suffix.lower() not in IMAGE_EXTENSIONS:
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
    if not rows:
        raise DataError(f"{root}: class folders found but no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return rows


# -------------------------------------------------------------------------------------------- tables
def _map_label(value: Any, cfg: DataConfig, where: str) -> int:
    key = str(value).strip() if not isinstance(value, bool) else str(int(value))
    if isinstance(value, float) and value.is_integer():
        key = str(int(value))
    if key not in cfg.labels:
        raise DataError(
            f"{where}: unknown label {value!r} in column {cfg.label_column!r}; known labels: "
            f"{sorted(cfg.labels)} (map it with data.labels, e.g. --set 'data.labels={{{key}: 1}}')"
        )
    out = int(cfg.labels[key])
    if out not in (0, 1):
        raise DataError(f"data.labels[{key!r}] = {out}: expected 0 (human/real) or 1 (AI)")
    return out


def rows_from_records(records: Iterable[dict[str, Any]], cfg: DataConfig, source_name: str,
                      modality: str = "text") -> list[dict[str, Any]]:
    """Map raw records (dicts of columns) to samples by the configured columns and label names."""
    rows: list[dict[str, Any]] = []
    item_col = cfg.text_column if modality == "text" else cfg.image_column
    for i, rec in enumerate(records):
        where = f"{source_name} row {i}"
        if item_col not in rec:
            raise DataError(f"{where}: no column {item_col!r} (columns: {sorted(rec)}); set data.{modality}_column")
        if cfg.label_column not in rec:
            raise DataError(f"{where}: no column {cfg.label_column!r} (columns: {sorted(rec)}); set data.label_column")
        label = _map_label(rec[cfg.label_column], cfg, where)
        row: dict[str, Any] = {
            "item": rec[item_col],
            "label": label,
            "generator": str(rec.get(cfg.generator_column) or ("human" if label == 0 else "unknown")),
            "domain": str(rec.get(cfg.domain_column) or "unknown"),
            "source": str(rec.get(cfg.source_column) or source_name),
        }
        if modality == "image":
            row["image"] = row["item"]
            row["item"] = f"{source_name}#{i}"
        elif not isinstance(row["item"], str):
            raise DataError(f"{where}: column {item_col!r} holds {type(row['item']).__name__}, expected text")
        for col in {cfg.group_by, cfg.holdout_column, *cfg.include} - {"", item_col}:
            if col in rec:
                row.setdefault(f"_col_{col}", rec[col])
        rows.append(row)
    return rows


def read_table(path: str | Path, cfg: DataConfig) -> list[dict[str, Any]]:
    """A JSONL / JSON / CSV / TSV / Parquet file of texts -> samples."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file {str(p)!r} does not exist")
    suf = p.suffix.lower()
    if suf in (".jsonl", ".ndjson"):
        recs = []
        with p.open(encoding="utf-8") as f:
            for n, line in enumerate(f):
                if line.strip():
                    try:
                        recs.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise DataError(f"{p} line {n + 1}: not JSON ({e.msg})") from None
    elif suf == ".json":
        data = json.loads(p.read_text(encoding="utf-8"))
        recs = data if isinstance(data, list) else data.get("data", [])
    elif suf in (".csv", ".tsv"):
        with p.open(encoding="utf-8", newline="") as f:
            recs = list(csv.DictReader(f, delimiter="\t" if suf == ".tsv" else ","))
    elif suf == ".parquet":
        import pyarrow.parquet as pq

        recs = pq.read_table(p).to_pylist()
    else:
        raise DataError(f"{p}: unknown file type {suf!r}; expected .jsonl, .json, .csv, .tsv or .parquet")
    return rows_from_records(recs, cfg, p.name, "text")


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


# -------------------------------------------------------------------------------------------- splits
def _filter(rows: list[dict[str, Any]], cfg: DataConfig) -> list[dict[str, Any]]:
    for col, allowed in cfg.include.items():
        keep = {str(v) for v in allowed}
        rows = [r for r in rows if str(r.get(col, r.get(f"_col_{col}"))) in keep]
    return rows


def _assign_groups(rows: list[dict[str, Any]], cfg: DataConfig, prefix: str) -> None:
    for i, r in enumerate(rows):
        if cfg.group_by:
            v = r.get(cfg.group_by, r.get(f"_col_{cfg.group_by}"))
            if v is None:
                raise DataError(f"{r['source']} sample {i}: no value in column {cfg.group_by!r} (data.group_by)")
            r["group"] = str(v)
        else:
            r["group"] = f"{prefix}{i}"
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


def make_splits(cfg: DataConfig, modality: str) -> dict[str, list[dict[str, Any]]]:
    """Read the configured sources and return ``{"train": [...], "dev": [...], "test": [...]}`` (test may be empty).

    Order: read, ``include`` filter, groups, hold-out (``holdout_column``/``holdout_values``: those samples
    plus the human samples of their groups form test; the other samples of those groups are dropped, so
    nothing of a held-out group trains), then dev/test by group fractions unless given, then subsets.
    """
    if not cfg.train:
        raise DataError("data.train is empty: give an image folder, a text file or hf:org/name")
    rng = np.random.default_rng(cfg.seed)
    train = _filter(load_source(cfg.train, cfg, cfg.train_split, modality), cfg)
    _assign_groups(train, cfg, "train:")
    test: list[dict[str, Any]] = []
    if cfg.holdout_column:
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
        train = [r for r in train if r["group"] not in held_groups]
    if cfg.test:
        test = _filter(load_source(cfg.test, cfg, cfg.test_split, modality), cfg)
        _assign_groups(test, cfg, "test:")
    elif not test and cfg.test_fraction > 0:
        train, test = _split_groups(train, cfg.test_fraction, rng)
    if cfg.dev:
        dev = _filter(load_source(cfg.dev, cfg, cfg.dev_split, modality), cfg)
        _assign_groups(dev, cfg, "dev:")
    else:
        train, dev = _split_groups(train, cfg.dev_fraction, rng)
    # one random stream per split, so that the dev subset does not change with max_train
    splits = {
        "train": _subset(train, cfg.max_train, np.random.default_rng([cfg.seed, 1])),
        "dev": _subset(dev, cfg.max_dev, np.random.default_rng([cfg.seed, 2])),
        "test": _subset(test, cfg.max_test, np.random.default_rng([cfg.seed, 3])),
    }
    if not splits["train"]:
        raise DataError("the training split is empty after filtering and hold-out")
    if not splits["dev"]:
        raise DataError("the dev split is empty: give data.dev or a data.dev_fraction > 0")
    for name, rows in splits.items():
        for r in rows:
            for k in [k for k in r if k.startswith("_col_")]:
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
