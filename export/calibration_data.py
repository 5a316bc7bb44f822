"""Calibration data for ``aigc export --calibration-data``: the rows of a JSONL, read once and checked.

One item column per file (``--item-column``, or the one of ``item``/``text``/``path``/``image`` the first row
has), a ``label`` (0 human / 1 ai, or human/ai, real/fake), any group column; every refusal names the
``file:line`` of the row that is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CalibrationData", "read_calibration_data", "read_calibration_jsonl", "resolve_item"]


def resolve_item(item: Any, bases: list[Path]) -> Any:
    """``item`` itself, unless it is a relative path that exists only under one of ``bases``: then that path."""
    if not isinstance(item, str) or "\n" in item or len(item) > 4096:
        return item
    p = Path(item)
    if p.is_absolute() or p.exists():
        return item
    for b in bases:
        if (b / p).exists():
            return str(b / p)
    return item


_ITEM_COLUMNS = ("item", "text", "path", "image")
_LABELS = {"human": 0, "real": 0, "ai": 1, "fake": 1}


@dataclass
class CalibrationData:
    """The rows of a calibration source, read once: items, 0/1 labels, the raw rows (for group columns) and
    where each row came from (``file:line``), for messages that point at the row."""

    items: list[Any]
    labels: list[int]
    rows: list[dict[str, Any]]
    where: list[str]
    item_column: str

    def columns(self) -> list[str]:
        """Every column some row has, sorted."""
        return sorted({k for r in self.rows for k in r})

    def column(self, name: str, option: str) -> list[Any]:
        """Each row's ``name`` value (None where a row lacks it); raises ValueError naming ``option``, the
        column and the columns the rows have when no row has it (a mistyped name)."""
        values = [r.get(name) for r in self.rows]
        if all(v is None for v in values):
            what = "every row's value is null" if any(name in r for r in self.rows) else "no calibration row has that column"
            raise ValueError(f"{option} {name}: {what} (the rows have: {', '.join(self.columns())})")
        return values

    def head(self, n: int) -> CalibrationData:
        """The first ``n`` rows (``--limit``)."""
        return CalibrationData(self.items[:n], self.labels[:n], self.rows[:n], self.where[:n], self.item_column)


def _item_key(row: dict[str, Any], where: str, item_column: str | None, chosen: str | None) -> str:
    """The item column of one row: ``item_column`` when named; else the one candidate column the first row
    has (``chosen`` once set), refusing a row with several candidates or another one than the first row's."""
    if item_column is not None:
        if item_column not in row:
            raise ValueError(f"{where}: no {item_column!r} column (--item-column); the row has: {', '.join(row)}")
        return item_column
    have = [k for k in _ITEM_COLUMNS if k in row]
    if not have:
        raise ValueError(f"{where}: no item column (expected one of {', '.join(_ITEM_COLUMNS)}, or name it with "
                         f"--item-column); the row has: {', '.join(row)}")
    if len(have) > 1:
        raise ValueError(f"{where}: the row has several item columns ({', '.join(have)}); name the one that holds "
                         "the text or image path with --item-column")
    if chosen is not None and have[0] != chosen:
        raise ValueError(f"{where}: the item is in {have[0]!r} but the first row's is in {chosen!r}; one file "
                         "uses one item column (or name it with --item-column)")
    return have[0]


def _check_item(item: Any, where: str, key: str, modality: str | None) -> None:
    """A text item is a string with visible text; an image item is a path (string); refused naming the row."""
    if modality not in ("text", "image"):
        if item is None:
            raise ValueError(f"{where}: {key} is null")
        return
    if not isinstance(item, str):
        what = "a text" if modality == "text" else "an image path"
        raise ValueError(f"{where}: {key} is {json.dumps(item)[:40]} ({type(item).__name__}), expected {what} (string)")
    if not item.strip():
        raise ValueError(f"{where}: {key} is empty")


def read_calibration_data(path: str | Path, modality: str | None = None, item_column: str | None = None
                          ) -> CalibrationData:
    """Rows of a calibration JSONL. The item column is ``item_column`` when named, else the one of ``item``,
    ``text``, ``path``, ``image`` the first row has, and every row must use it (a row with several, or another
    one, is refused: a row's key never switches silently). ``label`` is 0/1 or human/ai (real/fake). Text
    items must be non-empty strings; image paths are resolved against the file's folder and must exist.
    Raises ValueError naming ``file:line`` and what is wrong."""
    path = Path(path)
    out = CalibrationData([], [], [], [], item_column or "")
    chosen: str | None = None
    with path.open(encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{ln}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not JSON ({e})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected a JSON object")
            chosen = _item_key(row, where, item_column, chosen)
            lab = row.get("label")
            lab = _LABELS.get(lab, lab) if isinstance(lab, str) else lab
            if lab not in (0, 1) or isinstance(lab, bool):
                raise ValueError(f"{where}: label {row.get('label')!r}, expected 0 (human) or 1 (ai)")
            item = row[chosen]
            _check_item(item, where, chosen, modality)
            if modality == "image":
                item = resolve_item(item, [path.parent])
                if not Path(item).is_file():
                    raise ValueError(f"{where}: {chosen} {row[chosen]!r}: no such image file (relative paths are "
                                     f"read from {path.parent})")
            out.items.append(item)
            out.labels.append(int(lab))
            out.rows.append(row)
            out.where.append(where)
    out.item_column = chosen or out.item_column
    return out


def read_calibration_jsonl(
    path: str | Path, group_column: str | None = None, modality: str | None = None, item_column: str | None = None
) -> tuple[list[Any], list[int], list[Any] | None]:
    """Rows of a calibration JSONL -> (items, labels, groups) (:func:`read_calibration_data`; ``groups``: each
    row's ``group_column`` value, None where a row lacks it; a column no row has is refused).
    Raises ValueError naming the line that is wrong."""
    data = read_calibration_data(path, modality, item_column)
    groups = data.column(group_column, "group column") if group_column and data.rows else None
    return data.items, data.labels, groups
