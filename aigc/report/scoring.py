"""Scoring evaluation data with a bundle: what ``aigc eval`` was asked for, one bundle's scores on the data,
its thresholds per item, and the failures."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data import EvalData

__all__ = ["SCORES_FILE", "EvalOptions", "ScoredBundle", "scores_jsonl"]

log = logging.getLogger("aigc.report")
_MAX_EXAMPLES = 20
SCORES_FILE = "scores.jsonl"


@dataclass
class EvalOptions:
    """What ``aigc eval`` was asked for (see ``aigc eval --help``)."""

    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95
    limit: int | None = None
    min_slice: int = 30
    robustness: bool = True
    perturbations: list[str] | None = None  # None: all for the modality
    robustness_limit: int | None = 1000
    slice_by: list[str] | None = None  # None: every field with 1..50 distinct values
    fairness_by: list[str] | None = None  # None: the slice fields except generator
    progress: bool = True
    chunk: int = 1024
    bootstrap_cluster: str | None = None  # a field: the bootstrap resamples items that share its value together


@dataclass
class ScoredBundle:
    """One bundle's clean scores on the data: probabilities (NaN where failed), errors, out-of-support flags."""

    name: str
    path: str
    detector: Any
    p: np.ndarray
    errors: list[str | None]
    out_of_support: np.ndarray
    thresholds: dict[str, float | np.ndarray] = field(default_factory=dict)


def _bar(total: int, desc: str, on: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="item", disable=not on, file=sys.stderr, leave=False, dynamic_ncols=True)


def _score(det: Any, items: Sequence[Any], bar: Any, chunk: int = 1024) -> tuple[np.ndarray, list[str | None], np.ndarray]:
    """Calibrated P(ai) per item (NaN where it failed), the errors, and the out-of-support flags."""
    thr_name: str | float = next(iter(det.spec.get("thresholds") or {}), 0.5)
    p = np.full(len(items), np.nan)
    errors: list[str | None] = [None] * len(items)
    oos = np.zeros(len(items), dtype=bool)
    for s in range(0, len(items), chunk):
        part = list(items[s : s + chunk])
        try:
            res: list[Any] = det.score(part, threshold=thr_name, progress=bar.update)
        except Exception as e:  # the runtime isolates bad items; this is the last guard
            log.warning("scoring a chunk failed (%s); scoring its items one by one", e)
            res = []
            for k, it in enumerate(part):
                try:
                    res.extend(det.score([it], threshold=thr_name))
                except Exception as e1:
                    res.append(None)
                    errors[s + k] = f"{type(e1).__name__}: {e1}"
                bar.update(1)
        for k, r in enumerate(res):
            if r is None:
                continue
            if r.error is None and math.isfinite(r.probability):
                p[s + k] = r.probability
                oos[s + k] = bool(r.out_of_support)
            else:
                errors[s + k] = r.error or "no probability"
    return p, errors, oos


def _thresholds(det: Any, data: EvalData) -> dict[str, float | np.ndarray]:
    """Each named threshold of the bundle; per item where the bundle has group thresholds for a field the data has."""
    gt = det.spec.get("group_thresholds") or {}
    col = gt.get("column")
    out: dict[str, float | np.ndarray] = {}
    for name, t in det.spec["thresholds"].items():
        if col and col in data.fields:
            out[name] = np.array([det.resolve_threshold(name, g)[1] for g in data.fields[col]], dtype=np.float64)
        else:
            out[name] = float(t["value"])
    return out


def _failures(ids: Sequence[str], errors: Sequence[str | None]) -> dict[str, Any]:
    bad = [(i, e) for i, e in zip(ids, errors, strict=True) if e is not None]
    kinds: dict[str, int] = {}
    for _, e in bad:
        k = e.split(" (")[0][:80]
        kinds[k] = kinds.get(k, 0) + 1
    return {"count": len(bad), "by_error": kinds, "examples": [{"id": i, "error": e} for i, e in bad[:_MAX_EXAMPLES]]}


def scores_jsonl(data: EvalData, scored: Sequence[ScoredBundle]) -> str:
    """``scores.jsonl`` of a report: one line per item and bundle, in data order, bundle by bundle:
    ``{"bundle", "id", "label" (0 human, 1 AI), "probability" (null where it failed), "error", "out_of_support",
    "flagged": {threshold name: bool, null where it failed}, "fields": {the data's slice fields}}``. Items are
    named by their row id, never by their text or path, and only the fields the report slices by (at most 50
    distinct values: generator, domain, ...) are copied, not free-text ones, so the file can be shared as the
    metrics are. What the metrics summarise, per item: which humans a threshold flagged, which machine texts it
    missed."""
    import json

    keep = data.slice_fields()
    lines: list[str] = []
    for sb in scored:
        for i, item_id in enumerate(data.ids):
            p = float(sb.p[i])
            ok = math.isfinite(p)
            flagged: dict[str, bool | None] = {}
            for name, t in sb.thresholds.items():
                tv = float(t[i]) if isinstance(t, np.ndarray) else float(t)
                flagged[name] = bool(p >= tv) if ok and math.isfinite(tv) else None
            lines.append(json.dumps({
                "bundle": sb.name, "id": item_id, "label": int(data.y[i]), "probability": p if ok else None,
                "error": sb.errors[i], "out_of_support": bool(sb.out_of_support[i]), "flagged": flagged,
                "fields": {k: data.fields[k][i] for k in keep}}, ensure_ascii=False))
    return "".join(x + "\n" for x in lines)
