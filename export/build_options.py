"""What an export is asked (:class:`BuildOptions`), and the refusals that the request alone decides, before
minutes of export and scoring: the calibration split's shape, the calibration method, the threshold targets
against the humans there are, the modules an int8 variant keeps in fp32."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aigc import _calibration, _thresholds

from .onnx_export import ExportError
from .parity import ATOL

__all__ = ["N_PARITY", "BuildOptions", "check_fp32_modules", "check_inputs", "prepare_out", "refuse_early"]

N_PARITY = 16


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
    training_items: Sequence[Any] | None = None  # hashed into data_hashes.json (eval warns on overlap)
    external_data: str = "auto"  # auto|always|never: graph weights in <file>.data (auto: from 256 MiB of weights)
    max_text_tokens: int | None = None  # text: tokens scored per text (its first ones), recorded as preprocessing.max_tokens
    int8_fp32_modules: tuple[str, ...] = ()  # torch modules whose MatMul/Gemm stay fp32 in the int8 variant


def prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an ``out`` that exists without ``overwrite``, or that exists and is not an
    earlier bundle (a data file, a folder of other files: never replaced, whatever ``overwrite`` says)."""
    from aigc._bundle import not_replaceable

    if out.exists() and not (out.is_dir() and out.suffix != ".zip" and not any(out.iterdir())):
        why = not_replaceable(out)
        if why:
            raise FileExistsError(f"--out {why}: choose another --out (--overwrite replaces an earlier bundle only)")
        if not overwrite:
            raise FileExistsError(f"{out} exists; pass --overwrite to replace it")


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
