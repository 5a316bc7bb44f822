"""What an export is asked (:class:`BuildOptions`), and the refusals that the request alone decides, before
minutes of export and scoring: the calibration split's shape, its overlap with the training items, its group
values, the calibration method, the threshold targets against the humans there are, the modules an int8 variant
keeps in fp32."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aigc import _calibration, _overlap, _thresholds
from aigc._printable import printable

from .onnx_export import ExportError
from .parity import ATOL

__all__ = ["MAX_CALIBRATION_OVERLAP", "N_PARITY", "BuildOptions", "ExportRefused", "calibration_overlap",
           "check_fp32_modules", "check_group_values", "check_inputs", "prepare_out", "refuse_early"]

log = logging.getLogger(__name__)

N_PARITY = 16
# calibration items that are training items: any is warned about; from this share of the items, or of the humans,
# the export is refused unless allowed. A model scores its training humans low, so each one in the calibration
# split pulls the fpr@X threshold down: with a share s of them there, fresh humans get up to about X / (1 - s)
# (5%: 1.05 X), and the Clopper-Pearson bound, computed as if all humans were fresh, no longer bounds anything.
MAX_CALIBRATION_OVERLAP = 0.05


class ExportRefused(ExportError):
    """The export would produce a bundle that breaks a promise (a variant loses accuracy, calibration on
    training items, ...)."""


@dataclass
class BuildOptions:
    """How to build: variants, calibration method, threshold targets, refusals, and output policy."""

    variants: Sequence[str] = ("fp32",)
    calibration: str | None = None  # None: temperature for logits, platt for score models
    targets: Sequence[float] = (0.01, 0.05)
    group_column: str | None = None
    worst_group_column: str | None = None  # fpr@X thresholds hold X on every value of this column
    force: bool = False
    drop_refused: bool = False  # a refused variant is left out of the bundle (reason in variants_eval) instead of failing
    overwrite: bool = False
    name: str | None = None
    labels: tuple[str, str] = ("human", "ai")
    threads: int | None = None
    n_parity: int = N_PARITY
    atol: float = ATOL
    exporter: str = "auto"
    calibration_source: dict[str, Any] = field(default_factory=dict)
    training_items: Sequence[Any] | None = None  # checked against the calibration items; hashed into data_hashes.json
    allow_calibration_overlap: bool = False  # export even when MAX_CALIBRATION_OVERLAP of the items are training items
    item_sources: Sequence[str] | None = None  # where each calibration item came from ("file:line"), for messages
    external_data: str = "auto"  # auto|always|never: graph weights in <file>.data (auto: from 256 MiB of weights)
    max_text_tokens: int | None = None  # text: tokens scored per text (its first ones), recorded as preprocessing.max_tokens
    int8_fp32_modules: tuple[str, ...] = ()  # torch modules whose MatMul/Gemm stay fp32 in the int8 variant
    # with worst_group_column: the run's domain-held-out training scores (raw fp32 scores, labels 0/1, domains;
    # <run>/heldout_scores.json); each fpr@X also holds X on every domain's humans of them (export.threshold_fit)
    heldout_scores: tuple[np.ndarray, np.ndarray, list[str]] | None = None
    # domains whose rows were left out of heldout_scores, and why (recorded in thresholds.fpr@X.heldout)
    heldout_left_out: dict[str, str] = field(default_factory=dict)


def prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an ``out`` that exists without ``overwrite``, or that exists and is not an
    earlier bundle (a data file, a folder of other files: never replaced, whatever ``overwrite`` says)."""
    from aigc._bundle import check_replaceable

    check_replaceable(out, overwrite)


def check_inputs(items: Sequence[Any], y: np.ndarray, groups: Sequence[Any] | None,
                  worst_groups: Sequence[Any] | None, opt: BuildOptions,
                  run_scores: Sequence[float] | np.ndarray | None = None) -> None:
    """One label, group, worst-group value and run score per calibration item."""
    if len(items) != y.size:
        raise ValueError(f"calibration: {len(items)} items but {y.size} labels")
    if run_scores is not None and len(run_scores) != y.size:
        raise ValueError(f"calibration: {len(run_scores)} run scores for {y.size} items")
    if groups is not None and len(groups) != y.size:
        raise ValueError(f"calibration: {len(groups)} group values for {y.size} items")
    if opt.worst_group_column and (worst_groups is None or len(worst_groups) != y.size):
        n = "no" if worst_groups is None else str(len(worst_groups))
        raise ValueError(f"calibration: worst_group_column {opt.worst_group_column!r} needs one value per item, "
                         f"found {n} for {y.size} items")


def check_fp32_modules(model: Any, opt: BuildOptions, variants: list[str]) -> None:
    """``int8_fp32_modules`` must name modules of ``model`` (a torch module), and only beside an int8 variant."""
    if not opt.int8_fp32_modules:
        return
    if "int8" not in variants:
        raise ExportError("int8_fp32_modules: no int8 variant was asked for")
    named = getattr(model, "named_modules", None)
    if not callable(named):
        return  # not a torch module: the graph's own records are checked when the variant is made
    names = {n for n, _ in named() if n}
    for m in opt.int8_fp32_modules:
        if m not in names:
            top = sorted({n.split(".")[0] for n in names})
            raise ExportError(f"int8_fp32_modules: the model has no module {m!r}; its top-level modules: {', '.join(top)}")


def refuse_early(y: np.ndarray, method: str, opt: BuildOptions, worst_groups: Sequence[Any] | None = None) -> None:
    """Refusals that the labels alone decide, before minutes of export and scoring: the calibration method,
    the humans each threshold target needs, both classes, and the worst-group rule's groups (``worst_groups``:
    each item's value of ``opt.worst_group_column``). Items that fail scoring later only lower these counts."""
    if method not in ("none", "temperature", "platt", "isotonic"):
        raise _calibration.CalibrationError(
            f"calibration method: found {method!r}, expected temperature|platt|isotonic|none"
        )
    if method == "isotonic" and y.size < _calibration.ISOTONIC_MIN_N and not opt.force:
        raise _calibration.CalibrationError(
            f"calibration: isotonic needs at least {_calibration.ISOTONIC_MIN_N} items, found {y.size} "
            "(it overfits small sets); use temperature or platt, or --force"
        )
    n_h = int((y == 0).sum())
    for t in opt.targets:
        if not 0.0 < float(t) < 1.0:
            raise _thresholds.ThresholdError(f"target FPR must be in (0, 1), found {t}")
        need = _thresholds.humans_needed(float(t))
        if n_h < need:
            raise _thresholds.ThresholdError(
                f"target FPR {float(t):g} ({_thresholds.threshold_name(float(t))}) needs at least {need} human "
                f"calibration items, found {n_h}; add human items or choose a larger target (--targets)"
            )
    if int(y.sum()) == 0 or n_h == 0:
        raise _calibration.CalibrationError(
            f"calibration needs both classes: found {n_h} human and {int(y.sum())} ai items"
        )
    if opt.worst_group_column and worst_groups is not None:
        _thresholds.worst_group_humans(y, worst_groups, opt.worst_group_column)
    if opt.heldout_scores is not None:
        _refuse_heldout(opt)


def _refuse_heldout(opt: BuildOptions) -> None:
    """The held-out scores' refusals that their labels and domains decide: no worst-group column, a length
    mismatch, a label outside {0, 1}, too few humans for a target, or no domain with enough humans."""
    raw, y, dom = opt.heldout_scores  # type: ignore[misc]
    if not opt.worst_group_column:
        raise ValueError("heldout_scores (--heldout-thresholds) raise the worst-group thresholds: they need "
                         "worst_group_column (--worst-group)")
    if not len(raw) == len(y) == len(dom) or not len(y):
        raise ValueError(f"heldout_scores: {len(raw)} scores, {len(y)} labels, {len(dom)} domains; expected as "
                         "many of each, and at least one")
    y = np.asarray(y)
    if not np.isin(y, (0, 1)).all() or not np.isfinite(np.asarray(raw, dtype=np.float64)).all():
        raise ValueError("heldout_scores: expected finite scores and labels 0 (human) / 1 (ai)")
    n_h = int((y == 0).sum())
    for t in opt.targets:
        if n_h < _thresholds.humans_needed(float(t)):
            raise _thresholds.ThresholdError(
                f"--heldout-thresholds: target FPR {float(t):g} needs at least {_thresholds.humans_needed(float(t))} "
                f"humans among the domain-held-out training scores, found {n_h}; leave out --heldout-thresholds "
                "or choose a larger target (--targets)")
    try:
        _thresholds.worst_group_humans(y, dom, "domain")
    except _thresholds.ThresholdError as e:
        raise _thresholds.ThresholdError(f"--heldout-thresholds (the domain-held-out training scores): {e}") from None


def _where(opt: BuildOptions, idx: Sequence[int] | np.ndarray, n: int = 3) -> str:
    """``file:line`` (or ``item i``) of the first ``n`` of ``idx``, comma-separated, with the count of the rest."""
    idx = [int(i) for i in idx]
    src = opt.item_sources
    names = [src[i] if src is not None and i < len(src) else f"item {i}" for i in idx[:n]]
    return ", ".join(names) + (f" and {len(idx) - n} more" if len(idx) > n else "")


def _in_training(items: Sequence[Any], training_items: Sequence[Any], modality: str) -> np.ndarray:
    """Which calibration items are training items, by the hash ``data_hashes.json`` stores (text: NFC with
    whitespace collapsed; image: the file's bytes). Every training item is compared, not the stored sample;
    an image is read only when its byte size is a calibration image's."""
    cal = [_overlap._digest(it, modality) for it in items]
    train = training_items
    if modality == "image":
        def size(it: Any) -> int | None:
            if isinstance(it, (bytes, bytearray)):
                return len(it)
            try:
                return os.path.getsize(it)
            except (OSError, TypeError):
                return None

        sizes = {size(it) for it in items} - {None}
        train = [it for it in training_items if size(it) in sizes]
    seen = {d for it in train if (d := _overlap._digest(it, modality)) is not None}
    return np.array([d is not None and d in seen for d in cal], dtype=bool)


def calibration_overlap(items: Sequence[Any], y: np.ndarray, opt: BuildOptions, modality: str
                        ) -> dict[str, Any] | None:
    """``data_hashes.calibration_in_training`` (``n``, ``n_human``, ``n_items``, ``share``, ``human_share``,
    ``limit``, and ``allowed`` when the export went on past the limit): the calibration items that are items
    of ``opt.training_items`` (None when those are unknown). Any is warned about with the count and the first
    rows; raises :class:`ExportRefused` when ``MAX_CALIBRATION_OVERLAP`` or more of the items, or of the human
    items, are training items, unless ``opt.allow_calibration_overlap``."""
    if opt.training_items is None:
        return None
    inside = _in_training(items, opt.training_items, modality)
    n, n_h, hum = int(inside.sum()), int((inside & (y == 0)).sum()), int((y == 0).sum())
    share, h_share = n / max(1, len(items)), n_h / max(1, hum)
    rec: dict[str, Any] = {"n": n, "n_human": n_h, "n_items": len(items), "share": round(share, 4),
                           "human_share": round(h_share, 4), "limit": MAX_CALIBRATION_OVERLAP}
    if not n:
        return rec
    msg = (f"{n} of {len(items)} calibration items ({n_h} of {hum} humans) are items of the run's training split "
           f"(first: {_where(opt, np.flatnonzero(inside))}): the model has seen them, so the thresholds and "
           "their FPR bounds are optimistic")
    if max(share, h_share) >= MAX_CALIBRATION_OVERLAP:
        if not opt.allow_calibration_overlap:
            raise ExportRefused(f"calibration data: {msg}. From {MAX_CALIBRATION_OVERLAP:.0%} of the items or of the "
                                "humans the export is refused: calibrate on held-out items (the run's dev split), "
                                "or pass --allow-calibration-overlap to export anyway (the count is recorded)")
        rec["allowed"] = True
        msg += " (--allow-calibration-overlap)"
    log.warning("%s", printable(msg))  # names rows by file:line
    return rec


def check_group_values(y: np.ndarray, groups: Sequence[Any] | None, worst_groups: Sequence[Any] | None,
                       opt: BuildOptions) -> None:
    """Items without a group value (None). ``group_column``: warned about with the count (they get the global
    thresholds and are left out of the per-group ones). ``worst_group_column``: a human without a group is
    refused (:class:`~aigc._thresholds.ThresholdError`), since the rule promises the target on every group's
    humans and that one belongs to none; an AI item without one is warned about."""
    if opt.group_column and groups is not None:
        miss = np.array([g is None for g in groups], dtype=bool)
        if miss.all():
            raise ValueError(f"group column {opt.group_column!r}: no calibration item has a value")
        if miss.any():
            log.warning("%d of %d calibration items (%d of %d humans) have no %r value (%s): they are left out of "
                        "the per-group thresholds", int(miss.sum()), y.size, int((miss & (y == 0)).sum()),
                        int((y == 0).sum()), opt.group_column, printable(_where(opt, np.flatnonzero(miss))))
    if opt.worst_group_column and worst_groups is not None:
        miss = np.array([g is None for g in worst_groups], dtype=bool)
        miss_h = np.flatnonzero(miss & (y == 0))
        if miss_h.size:
            raise _thresholds.ThresholdError(
                f"worst-group thresholds by {opt.worst_group_column!r}: {miss_h.size} of {int((y == 0).sum())} human "
                f"calibration items have no {opt.worst_group_column!r} value ({_where(opt, miss_h)}); the rule holds "
                "the target on every group's humans, and these belong to none: give them a value or leave them out"
            )
        miss_a = np.flatnonzero(miss & (y == 1))
        if miss_a.size:
            log.warning("%d of %d ai calibration items have no %r value (%s): they count in the pooled TPR only",
                        miss_a.size, int(y.sum()), opt.worst_group_column, printable(_where(opt, miss_a)))
