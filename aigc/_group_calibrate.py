"""Add per-group thresholds to a bundle and keep everything else: ``aigc calibrate --groups-only`` (torch-free).

A deployed detector gains a language (or a region, a product surface): the team has a few dozen human texts of
it, and none of the main language to hand, or no wish to move the thresholds every other text is judged by.
:func:`~aigc._recalibrate.recalibrate` refits the global thresholds and the support on its data, so that data
must hold the main language's humans too. This mode instead keeps the bundle's calibration map, global
thresholds and support, and only sets thresholds for the groups in the data:

1. refuse early what cannot work: a bundle without ``fpr@X`` thresholds (nothing to floor the groups at), a
   bundle whose group thresholds are by another field (a bundle carries one grouping field);
2. score the items with the bundle's variant and map them through its own calibration;
3. give each group of 20 or more humans each ``fpr@X`` its humans support (else just above all of them), never
   below the bundle's global one (:func:`aigc._thresholds.choose_group_thresholds` with floors), as
   ``--group-field`` does in the full mode; refuse when no group gets one;
4. merge them into the bundle's group thresholds by the same field: a group the data gives thresholds replaces
   the bundle's record of it, every other group is kept;
5. add the items to the calibration part of ``data_hashes.json`` (an evaluation on them is then reported as
   overlapping), note how many fall outside the bundle's support (a script its calibration never had: the
   runtime keeps marking such items ``out_of_support``, since the global calibration does not describe
   them), and write the new bundle as the full mode does (never over the input or the data).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _calibration, _overlap, _thresholds
from ._bundle import open_bundle, spec_for_variant
from ._printable import printable
from ._recalibrate import (
    CalibrateOptions,
    RecalibrationError,
    _group_thresholds_on,
    _store_calibration,
    _training_overlap,
    check_inputs,
    check_out_path,
    note_other_variants,
    record_head,
    score_items,
    stamp,
    write_new_bundle,
)

__all__ = ["add_group_thresholds"]

log = logging.getLogger("aigc")


def add_group_thresholds(bundle_path: str | os.PathLike[str], items: Sequence[Any],
                         labels: Sequence[int] | np.ndarray, groups: Sequence[str | None],
                         out: str | os.PathLike[str], opt: CalibrateOptions | None = None
                         ) -> tuple[Path, dict[str, Any]]:
    """Write a copy of the bundle with per-group thresholds set on ``items`` (module docstring), its
    calibration, global thresholds and support unchanged.

    ``groups``: one value (a language) or None per item, named ``opt.group_field`` in the bundle; ``labels``:
    0 human / 1 AI (AI items only add a group's ``balanced`` threshold). ``opt.targets``, ``opt.method`` and
    ``opt.prevalence`` must be None: the groups take the targets of the bundle's own ``fpr@X``. Returns the
    new bundle's path and its ``recalibration`` record. Raises :class:`RecalibrationError` when the bundle
    or the data cannot give any group a threshold, FileExistsError as :func:`recalibrate` does.
    """
    opt = opt or CalibrateOptions()
    asked = [n for n, v in (("--targets", opt.targets), ("--method", opt.method), ("--prevalence", opt.prevalence))
             if v is not None]
    if asked:
        raise RecalibrationError(f"--groups-only keeps the bundle's calibration and thresholds: drop {', '.join(asked)} "
                                 "(or drop --groups-only to refit them)")
    src, dst = Path(bundle_path), Path(out)
    check_out_path(src, dst, opt.overwrite, [Path(opt.source)] if opt.source else [])
    y_all = check_inputs(items, labels, groups)
    bundle = open_bundle(src)
    spec = json.loads(json.dumps(bundle.spec))
    view = spec_for_variant(spec, opt.variant)
    targets = _targets_of(view)
    old = view.get("group_thresholds")
    if old and old.get("column") != opt.group_field:
        raise RecalibrationError(
            f"the bundle's group thresholds are by {old.get('column')!r} ({len(old.get('groups') or {})} groups) and a "
            f"bundle carries one grouping field: use --group-field {old.get('column')}, or drop --groups-only to "
            f"replace them")

    n_none = sum(g is None for g in groups)
    if n_none:
        log.warning("%d of %d items have no %s: they set no threshold here (--groups-only keeps the global ones)",
                    n_none, len(groups), printable(opt.group_field))
    raw, ok, metas, modality = score_items(bundle, opt.variant, items, opt)
    y, idx = y_all[ok], [int(i) for i in np.flatnonzero(ok)]
    kept, ok_items = [groups[i] for i in idx], [items[i] for i in idx]
    p = _calibration.apply_calibration(raw[ok], view["calibration"])
    new = _group_thresholds_on(p, y, kept, view["thresholds"], targets, opt.group_field)
    merged, replaced = _merge(old, new)
    _store_calibration(spec, opt.variant, {"group_thresholds": merged})  # where opt.variant reads them

    record: dict[str, Any] = {
        **record_head(bundle, src, opt.source, ok_items, y, int((~ok).sum())),
        "mode": "groups only", "calibration": "kept", "thresholds": "kept", "support": "kept",
        "targets": targets, "variant": opt.variant,
        "group_thresholds": {"column": opt.group_field, "added": sorted(set(new["groups"]) - set(replaced)),
                             "replaced": replaced, "kept": sorted(set(merged["groups"]) - set(new["groups"])),
                             "global_only": sorted(g for g in new["skipped"] if g not in merged["groups"]),
                             "weak": sorted(_thresholds.weak_groups(new))},
        "without_group": n_none,
        "out_of_support": _outside_support(spec.get("support"), [metas[i] for i in idx], kept),
    }  # fmt: skip
    in_training = _training_overlap(bundle, ok_items, y, modality)
    if in_training:
        record["data_in_training"] = in_training
    note_other_variants(record, spec, [opt.variant])
    stamp(record, spec)
    path = write_new_bundle(bundle, spec, dst, opt.overwrite, lambda tmp: _overlap.add_calibration_items(
        tmp, spec.get("data_hashes"), ok_items, modality))
    return path, record


def _targets_of(view: dict[str, Any]) -> list[float]:
    """The target FPRs of the bundle's ``fpr@X`` thresholds (the groups' floors); refused without any."""
    floors = _thresholds.fpr_floors(view["thresholds"])
    targets = sorted({float(view["thresholds"][n]["target_fpr"]) for n in floors
                      if isinstance(view["thresholds"][n].get("target_fpr"), (int, float))})
    if not targets:
        raise RecalibrationError(f"--groups-only: the bundle has no fpr@X threshold to set groups against (it has "
                                 f"{sorted(view['thresholds'])}); drop --groups-only to set thresholds on this data")
    return targets


def _merge(old: dict[str, Any] | None, new: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``new``'s groups over ``old``'s (same column): the merged object and the groups it replaced. A group
    ``new`` left to the global thresholds keeps ``old``'s record of it (and what ``old`` said it skipped)."""
    if not old:
        return new, []
    old_groups = old.get("groups") or {}
    seen = set(new["groups"]) | set(new["skipped"])
    skipped: dict[str, Any] = {}
    for g in set(old.get("skipped") or {}) | set(new["skipped"]):
        from_new = g in new["groups"] or (g in seen and g not in old_groups)
        why = (new["skipped"] if from_new else old.get("skipped") or {}).get(g)
        if why:
            skipped[g] = why
    merged = {**old, "groups": {**old_groups, **new["groups"]}, "skipped": skipped}
    # a group measured again, or given thresholds on new data, takes the new data's detection (or none)
    detection = {g: d for g, d in (old.get("detection") or {}).items() if g not in seen}
    detection.update(new.get("detection") or {})
    merged.pop("detection", None)
    if detection:
        merged["detection"] = detection
    return merged, sorted(set(old_groups) & set(new["groups"]))


def _outside_support(support: dict[str, Any] | None, metas: list[Any], groups: list[str | None]) -> dict[str, int]:
    """Per group, how many of its items the bundle's support marks ``out_of_support`` (empty: no support)."""
    if not support:
        return {}
    from ._support import check_support

    out: dict[str, int] = {}
    for m, g in zip(metas, groups, strict=True):
        if g is not None and isinstance(m, dict) and check_support(m, support):
            out[str(g)] = out.get(str(g), 0) + 1
    return out
