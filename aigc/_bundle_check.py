"""Checking a bundle's calibration and thresholds: ``calibration`` (method, params, prevalence), the named
``thresholds``, ``group_thresholds``, and each variant's own record under ``variant_calibration`` (v3).

:func:`aigc._bundle.validate_spec` is the entry point and calls these; the rest of reading and validation
(``BundleError``, ``validate_spec``, ``load_bundle_spec``, ``open_bundle``) lives in :mod:`aigc._bundle`,
which re-exports every name here, so ``from aigc._bundle import _check_threshold`` keeps working.

This module imports :mod:`aigc._bundle` and that module imports this one at its end; the package imports
``aigc._bundle`` first (``aigc/__init__.py``), so the names this one asks for are defined by then.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, TypeGuard

from ._bundle import BundleError, _check_name, _need
from ._printable import printable

_CAL_METHODS = ("none", "temperature", "platt", "isotonic")


def _finite(v: Any) -> TypeGuard[int | float]:
    """A real number (not a bool) that is neither NaN nor infinite: JSON from Python may hold NaN/Infinity."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_threshold(t: Any, where: str) -> None:
    if not isinstance(t, dict):
        raise BundleError(f"{where}: found {type(t).__name__}, expected an object with value, n_human, achieved_fpr")
    v = _need(t, "value", f"{where}.", (int, float), "a probability in [0, 1]")
    if not _finite(v) or not 0.0 <= v <= 1.0:
        raise BundleError(f"{where}.value: found {v!r}, expected a probability in [0, 1]")
    _need(t, "n_human", f"{where}.", int, "the number of human calibration items (int)")
    _need(t, "achieved_fpr", f"{where}.", (int, float), "the false-positive rate measured on calibration data")
    for k in ("achieved_fpr", "fpr_upper_95", "tpr", "target_fpr"):  # all but achieved_fpr may be null or absent
        x = t.get(k)
        if x is not None and not (_finite(x) and 0.0 <= x <= 1.0):
            raise BundleError(f"{where}.{k}: found {x!r}, expected a finite rate in [0, 1]")


def _check_calibration_and_thresholds(spec: dict[str, Any], where: str) -> None:
    """``calibration``, ``thresholds`` and ``group_thresholds`` of the bundle (``where`` ""), or of one
    variant's own record (``where`` "variant_calibration.int8.")."""
    cal = _need(spec, "calibration", where, dict, "an object with method and params")
    method = _need(cal, "method", f"{where}calibration.", str, f"one of {list(_CAL_METHODS)}")
    if method not in _CAL_METHODS:
        raise BundleError(f"{where}calibration.method: found {method!r}, expected one of {list(_CAL_METHODS)}")
    params = cal.get("params", {})
    if not isinstance(params, dict):
        raise BundleError(f"{where}calibration.params: found {params!r}, expected an object")
    if method == "temperature":
        t = params.get("temperature")
        if not _finite(t) or t <= 0:
            raise BundleError(f"{where}calibration.params.temperature: found {t!r}, expected a finite number > 0")
    elif method == "platt":
        for k in ("a", "b"):
            if not _finite(params.get(k)):
                raise BundleError(f"{where}calibration.params.{k}: found {params.get(k)!r}, expected a finite number")
    elif method == "isotonic":
        x, y = params.get("x"), params.get("y")
        if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y) or len(x) < 2:
            raise BundleError(f"{where}calibration.params.x/y: expected two lists of equal length >= 2")
        if not all(_finite(v) for v in x + y):
            raise BundleError(f"{where}calibration.params.x/y: found {next(v for v in x + y if not _finite(v))!r}, "
                              "expected finite numbers")
        if any(b < a for a, b in itertools.pairwise(x)) or any(b < a for a, b in itertools.pairwise(y)):
            raise BundleError(f"{where}calibration.params.x/y: expected non-decreasing values")

    prev = cal.get("prevalence")
    if prev and not (isinstance(prev, dict) and all(_finite(prev.get(k)) and 0 < prev[k] < 1 for k in ("base", "target"))):
        raise BundleError(f"{where}calibration.prevalence: found {prev!r}, expected base and target shares in (0, 1)")
    thresholds = _need(spec, "thresholds", where, dict, "named thresholds {name: {value, n_human, achieved_fpr}}")
    if not thresholds:
        raise BundleError(f"{where}thresholds: found none, expected at least one named threshold (e.g. 'fpr@1%')")
    for name, t in thresholds.items():
        _check_name(name, f"{where}thresholds (a threshold's name)")
        _check_threshold(t, f"{where}thresholds.{printable(name)}")
    gt = spec.get("group_thresholds")
    if gt is not None:
        if not isinstance(gt, dict) or not isinstance(gt.get("column"), str) or not isinstance(gt.get("groups"), dict):
            raise BundleError(f"{where}group_thresholds: expected {{column: str, groups: {{group: {{name: threshold}}}}}}")
        for g, ts in gt["groups"].items():
            if not isinstance(ts, dict):
                raise BundleError(f"{where}group_thresholds.groups.{printable(g)}: expected {{name: threshold}}")
            for name, t in ts.items():
                _check_name(name, f"{where}group_thresholds.groups.{printable(g)} (a threshold's name)")
                _check_threshold(t, f"{where}group_thresholds.groups.{printable(g)}.{printable(name)}")
        _check_detection(gt.get("detection"), f"{where}group_thresholds.detection")


def _check_detection(det: Any, where: str) -> None:
    """``group_thresholds.detection`` (optional): ``{group: {n_human, n_ai, auroc, weak}}``; the runtime warns on
    items of a ``weak`` group, so a malformed record is refused at load rather than misread there."""
    if det is None:
        return
    if not isinstance(det, dict):
        raise BundleError(f"{where}: found {type(det).__name__}, expected {{group: {{n_human, n_ai, auroc, weak}}}}")
    for g, d in det.items():
        w = f"{where}.{printable(g)}"
        if not isinstance(d, dict):
            raise BundleError(f"{w}: found {type(d).__name__}, expected {{n_human, n_ai, auroc, weak}}")
        a = _need(d, "auroc", f"{w}.", (int, float), "the group's AUROC in [0, 1]")
        if isinstance(a, bool) or not _finite(a) or not 0.0 <= a <= 1.0:
            raise BundleError(f"{w}.auroc: found {a!r}, expected the group's AUROC in [0, 1]")
        if not isinstance(d.get("weak"), bool):
            raise BundleError(f"{w}.weak: found {d.get('weak')!r}, expected true or false")
        for k in ("n_human", "n_ai"):
            _need(d, k, f"{w}.", int, "a count of calibration items (int)")


def _check_variant_calibration(spec: dict[str, Any]) -> None:
    """``variant_calibration`` (v3): ``{variant: {calibration, thresholds[, group_thresholds, score_histogram]}}``
    for variants other than fp32 that the bundle has, each with the same threshold names as the bundle's."""
    vc = spec.get("variant_calibration")
    if vc is None:
        return
    if not isinstance(vc, dict):
        raise BundleError(f"variant_calibration: found {type(vc).__name__}, expected {{variant: {{calibration, thresholds}}}}")
    variants = spec["model"]["variants"]
    for v, rec in vc.items():
        where = f"variant_calibration.{v}."
        if v == "fp32" or v not in variants:
            raise BundleError(f"variant_calibration.{printable(v)}: expected a variant other than fp32 in model.variants "
                              f"({sorted(variants)})")
        if not isinstance(rec, dict):
            raise BundleError(f"variant_calibration.{v}: found {type(rec).__name__}, expected an object")
        _check_calibration_and_thresholds(rec, where)
        if set(rec["thresholds"]) != set(spec["thresholds"]):
            raise BundleError(f"{where}thresholds: names {sorted(rec['thresholds'])}, expected the bundle's "
                              f"{sorted(spec['thresholds'])}")
