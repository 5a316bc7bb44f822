"""Calibration and thresholds of one variant's raw scores of the calibration split (``bundle_build`` step 3).

:func:`calibrate` fits, on the scored items: the calibration, the named thresholds (with a worst-group column,
each ``fpr@X`` holds X on every group's humans; with ``BuildOptions.heldout_scores`` too, on the humans of the
run's training split scored by heads fitted without their own domain), the per-group thresholds and the
humans' score histogram. :func:`calibrate_variants` does it again for each int8 / fp16 variant on its own scores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from aigc import _calibration, _drift, _thresholds

from .build_options import BuildOptions
from .split_scores import Scored

__all__ = ["HELDOUT_SOURCE", "calibrate", "calibrate_variants", "choose_method", "fit_calibration",
           "fit_group_thresholds", "fit_thresholds", "max_abs_dp", "raise_to_heldout", "warn_flagless"]

log = logging.getLogger(__name__)

HELDOUT_SOURCE = "training texts scored by heads fitted without their domain (the training run's torch features, in its LM dtype: heldout_scores.json lm_dtype)"


def choose_method(output_kind: str, asked: str | None) -> tuple[str, str | None]:
    """The calibration method (the asked one, else the default for ``output_kind``) and its note."""
    method, method_note = _calibration.default_method(output_kind)
    if asked is not None:
        if output_kind == "score" and asked == "temperature":
            log.warning("temperature scaling cannot centre a score model's statistic; platt is recommended")
        return asked, None
    if method_note:
        log.warning("%s", method_note)
    return method, method_note


def calibrate(scored: Scored, y: np.ndarray, method: str, method_note: str | None, opt: BuildOptions,
              groups: Sequence[Any] | None, worst_groups: Sequence[Any] | None) -> tuple[dict[str, Any], np.ndarray]:
    """Calibration, named thresholds, group thresholds and the calibration humans' score histogram of one
    variant's raw scores of the calibration split (``scored``; ``y`` the labels of every item), and the
    calibrated probabilities of the scored items."""
    yy = y[scored.ok]
    cal = fit_calibration(scored, yy, method, method_note, opt.force)
    p = _calibration.apply_calibration(scored.s, cal)
    out: dict[str, Any] = {"calibration": cal, "thresholds": fit_thresholds(p, yy, scored, opt, worst_groups, cal)}
    out.update(fit_group_thresholds(p, yy, scored, opt, groups, out["thresholds"]))
    out["score_histogram"] = _drift.score_histogram(p, yy)  # live drift is measured against it (aigc serve)
    return out, p


def calibrate_variants(variant_scores: dict[str, Scored], scored: Scored, p: np.ndarray,
                       evals: dict[str, Any], calibrate: Callable[[Scored], tuple[dict[str, Any], np.ndarray]]
                       ) -> dict[str, Any]:
    """``{"variant_calibration": {variant: ...}}`` (bundle v3): each variant is its own function of the input
    (int8 of an LM moved probabilities by up to 0.49 under fp32's calibration), so each gets the calibration
    and thresholds of its own scores of the split, fitted by ``calibrate`` as fp32's were (held-out thresholds:
    the fp32 model's held-out raw scores through the variant's calibration). Records in
    ``evals[variant]["max_abs_dp_vs_fp32"]`` how far the probabilities the runtime now serves are from fp32's."""
    own = {}
    for v, sv in variant_scores.items():
        own[v], pv = calibrate(sv)
        evals.setdefault(v, {})["max_abs_dp_vs_fp32"] = max_abs_dp(pv, p[sv.ok[scored.ok]])
    return {"variant_calibration": own} if own else {}


def max_abs_dp(pv: np.ndarray, p: np.ndarray) -> float:
    """Largest |P_variant - P_fp32| over the same items, to 3 significant digits (0 when there are none)."""
    return float(f"{np.max(np.abs(pv - p)):.3g}") if pv.size else 0.0


def fit_calibration(scored: Scored, yy: np.ndarray, method: str, method_note: str | None, force: bool
                    ) -> dict[str, Any]:
    """The calibration record of bundle.json, fitted on the scored items, with its notes."""
    cal = _calibration.fit_calibration(scored.s, yy, method, force=force)
    if method_note:
        cal["note"] = method_note
    if method == "temperature" and cal["after"]["ece"] > cal["before"]["ece"] + 0.005:
        cal["note"] = (
            f"temperature scaling lowered the NLL but raised the ECE ({cal['before']['ece']:.3f} -> "
            f"{cal['after']['ece']:.3f}): the raw scores are off-centre; --calibration platt can shift them"
        )
        log.warning("%s", cal["note"])
    if scored.n_failed:
        cal["n_failed"] = scored.n_failed
    return cal


def fit_thresholds(p: np.ndarray, yy: np.ndarray, scored: Scored, opt: BuildOptions,
                   worst_groups: Sequence[Any] | None, cal: dict[str, Any]) -> dict[str, Any]:
    """The named thresholds; with a worst-group column each ``fpr@X`` holds X on every group's humans, and with
    ``opt.heldout_scores`` also on every domain's humans of the domain-held-out training scores (through ``cal``)."""
    if opt.worst_group_column and worst_groups is not None:
        w_ok = scored.kept(worst_groups)
        out = _thresholds.choose_worst_group_thresholds(p, yy, w_ok, opt.worst_group_column, tuple(opt.targets))
        if opt.heldout_scores is not None:
            out = raise_to_heldout(out, p, yy, w_ok, opt, cal)
    else:
        out = _thresholds.choose_thresholds(p, yy, targets=tuple(opt.targets))
    warn_flagless(out)
    return out


def warn_flagless(thresholds: dict[str, Any]) -> list[str]:
    """Warn about each named ``fpr@X`` threshold that flags none of the calibration split's ai items (TPR 0) and
    return their names: a bundle served at it would flag nothing, whatever it is given."""
    names = [n for n, t in thresholds.items() if n.startswith("fpr@") and t.get("n_ai") and t.get("tpr") == 0]
    for n in names:
        t = thresholds[n]
        log.warning("%s: P >= %.4f flags none of the %d ai calibration items (TPR 0); served at it, the bundle would "
                    "flag nothing: check the detector on these texts, or choose a larger target (--targets)",
                    n, t["value"], t["n_ai"])
    return names


def raise_to_heldout(dev: dict[str, Any], p: np.ndarray, yy: np.ndarray, w_ok: Sequence[Any], opt: BuildOptions,
                     cal: dict[str, Any]) -> dict[str, Any]:
    """``dev``'s worst-group thresholds, each ``fpr@X`` raised to the worst-domain threshold of the run's
    domain-held-out training scores (``opt.heldout_scores``: raw scores, labels, domains) under calibration ``cal``
    when that is higher. Each record is restated at its final value on the calibration split, and carries
    ``heldout``: that value, its humans and, at the final value, their achieved FPR overall and per domain."""
    raw_h, y_h, d_h = opt.heldout_scores  # type: ignore[misc]
    p_h = _calibration.apply_calibration(np.asarray(raw_h, dtype=np.float64), cal)
    try:
        held = _thresholds.choose_worst_group_thresholds(p_h, y_h, d_h, "domain", tuple(opt.targets), balanced=False)
    except _thresholds.ThresholdError as e:
        raise _thresholds.ThresholdError(f"--heldout-thresholds (the run's domain-held-out training scores, "
                                         f"{int((np.asarray(y_h) == 0).sum())} humans): {e}") from None
    out = dict(dev)
    col = opt.worst_group_column
    for tgt in opt.targets:
        name = _thresholds.threshold_name(float(tgt))
        d_val, h_val = float(dev[name]["value"]), float(held[name]["value"])
        which = "the held-out scores'" if h_val > d_val else "the calibration split's"
        rule = (f"the higher of the worst group of {col} on the calibration split and the worst domain of the "
                f"domain-held-out training scores ({which})")
        rec = _thresholds.restate_threshold(dev[name], max(d_val, h_val), p, yy, w_ok, rule)
        h_at = _thresholds.restate_threshold(held[name], rec["value"], p_h, y_h, d_h, held[name]["rule"])
        own = _domain_thresholds(p_h, y_h, d_h, h_at["groups"], float(tgt))
        rec["heldout"] = {
            "value": h_val,
            "calibration_split_value": d_val,
            "set_by": _set_by(own, h_val),
            "n_human": h_at["n_human"],
            "achieved_fpr": h_at["achieved_fpr"],
            "groups": {g: {"n_human": r["n_human"], "achieved_fpr": r["achieved_fpr"], "threshold": own[g][0],
                           "rule": own[g][1]} for g, r in h_at["groups"].items()},
            "skipped_groups": h_at.get("skipped_groups", {}),
            **({"left_out_domains": dict(opt.heldout_left_out)} if opt.heldout_left_out else {}),
            "source": HELDOUT_SOURCE,
        }
        if h_val > d_val:
            _refuse_flagless(name, rec, opt.force)
        out[name] = rec
    return out


def _domain_thresholds(p_h: np.ndarray, y_h: np.ndarray, d_h: Sequence[str], domains: Sequence[str], target: float
                       ) -> dict[str, tuple[float, str]]:
    """Each domain's own threshold of the held-out scores (``domains``: those the worst-domain rule used) and its
    rule."""
    dom = np.asarray([str(d) for d in d_h], dtype=object)
    y = np.asarray(y_h)
    return {d: _thresholds.group_threshold(p_h, y, dom == d, target) for d in domains}


def _set_by(own: dict[str, tuple[float, str]], value: float) -> str:
    """The domain whose own threshold is the held-out value (``all domains pooled`` when the pooled one is)."""
    top = [d for d, (v, _) in own.items() if v >= value]
    return top[0] if top else "all domains pooled"


def _refuse_flagless(name: str, rec: dict[str, Any], force: bool) -> None:
    """Refuse a threshold the held-out scores raised so far that it flags none of the calibration split's ai
    items (session 21: a domain the run also trained on through its own pairs held its held-out humans above
    every ai text, and both thresholds went to P >= 1.0000, TPR 0). With ``force`` it is kept and marked."""
    if not rec.get("n_ai") or rec.get("tpr") != 0:
        return
    h = rec["heldout"]
    d = h["set_by"]
    g = h["groups"].get(d, {})
    by = (f"domain {d!r} of the held-out scores ({g.get('n_human')} humans, {g.get('rule')})" if g
          else "the held-out scores' humans pooled")
    msg = (f"{name}: the domain-held-out training scores raise the threshold from P >= {h['calibration_split_value']:.4f} "
           f"to P >= {rec['value']:.4f}, which flags none of the {rec['n_ai']} ai calibration items (TPR 0); it is "
           f"set by {by}: a head fitted without that domain scores its humans above the ai texts. A bundle with "
           f"it would flag nothing")
    if not force:
        raise _thresholds.ThresholdError(
            f"{msg}. If the run trained on that domain's texts (data.extra_train pairs), leave it out with "
            f"--heldout-skip-domain {d} and set its thresholds on its own humans (aigc calibrate --humans-only); "
            "or choose a larger target (--targets); --force exports it anyway (recorded as heldout.forced)")
    log.warning("%s (--force: kept, recorded as heldout.forced)", msg)
    h["forced"] = True


def fit_group_thresholds(p: np.ndarray, yy: np.ndarray, scored: Scored, opt: BuildOptions,
                         groups: Sequence[Any] | None, global_thresholds: dict[str, Any] | None = None
                         ) -> dict[str, Any]:
    """``{"group_thresholds": ...}`` when a group column is asked and some group has enough items, else ``{}``.
    ``global_thresholds`` (the bundle's ``thresholds``): a group with 20 or more humans but too few for an
    ``fpr@X`` (or under 50 items) gets it above all its humans, never below the global one
    (:func:`aigc._thresholds.choose_group_thresholds`'s ``floors``)."""
    if not opt.group_column:
        return {}
    if groups is None:
        raise ValueError(f"--group-column {opt.group_column}: the calibration data has no such column")
    floors = _thresholds.fpr_floors(global_thresholds) if global_thresholds is not None else None
    gt = _thresholds.choose_group_thresholds(p, yy, scored.kept(groups), opt.group_column, tuple(opt.targets),
                                             floors=floors)
    if gt["groups"]:
        weak = _thresholds.weak_groups_warning(gt)
        if weak:
            log.warning("%s", weak)
        return {"group_thresholds": gt}
    log.warning("no group of %r has enough items for its own thresholds: %s", opt.group_column, gt["skipped"])
    return {}
