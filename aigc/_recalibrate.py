"""Re-threshold (and, with labels, re-calibrate) a bundle on a team's own data, torch-free: ``aigc calibrate``.

Thresholds do not transfer across domains; a team's best remedy is its own human items. The steps:

1. refuse early what the labels alone decide: targets the humans cannot support (the conformal rule of
   :mod:`aigc._thresholds` needs ``1/target - 1`` humans), a calibration refit without AI items;
2. score the items with the bundle (fp32 unless asked) through the runtime;
3. refit the calibration map when both classes are present (the bundle's own method unless asked),
   else keep the bundle's; apply a stated prevalence of AI items (Bayes' rule on the odds);
4. choose the named thresholds at their target FPRs on the team's humans; ``balanced`` is refitted
   with AI items, else kept from the bundle (moved by the prevalence shift, said so);
5. recompute the support (and the calibration item hashes) on the new data, since those describe the
   data the thresholds were set on; drop per-group thresholds (they were set on the old scale), or, with
   the items' groups (``--group-field``), set them anew on this data: a group of 20 or more humans gets each
   ``fpr@X`` its humans support, else one above all of them, never below the new global threshold;
6. copy every other file and field, record what was done under ``recalibration``, write the new bundle
   beside ``out`` and move it into place (never over, around or inside the input or the data; an existing
   ``out`` only when asked, and only when it is an earlier bundle).

Only the asked variant is refitted; but when new targets rename the thresholds of a bundle with per-variant
records (``variant_calibration``), every such record, fp32's included, is refitted on the same items, since
every variant must carry the same threshold names (``recalibration.also_recalibrated`` says which).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _calibration, _overlap, _support, _thresholds
from ._bundle import (
    VARIANT_CALIBRATED,
    Bundle,
    check_replaceable,
    open_bundle,
    place_bundle,
    sha256_file,
    spec_for_variant,
    write_bundle,
)
from ._printable import printable

__all__ = ["RECALIBRATION_VERSION", "CalibrateOptions", "RecalibrationError", "check_out_path", "recalibrate"]

log = logging.getLogger("aigc")
RECALIBRATION_VERSION = 1


class RecalibrationError(ValueError):
    """The data cannot support what was asked; the message says what is missing and how much."""


@dataclass
class CalibrateOptions:
    """What ``aigc calibrate`` was asked for."""

    targets: Sequence[float] | None = None  # None: the target FPRs of the bundle's own thresholds
    method: str | None = None  # None: the bundle's own calibration method (refit only with both classes)
    prevalence: float | None = None  # share of AI items to report P(ai) for; None: no adjustment
    variant: str = "fp32"
    overwrite: bool = False
    providers: Sequence[str] | str | None = "cpu"
    threads: int | None = None
    batch_size: int = 32
    source: str = ""  # where the data came from, for the record (a path: --out may not touch it)
    group_field: str = "group"  # the name the groups (``recalibrate(groups=...)``) go by in the bundle


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _within(a: Path, b: Path) -> bool:
    """``a`` is ``b`` or lies inside it (links resolved)."""
    ra, rb = a.resolve(), b.resolve()
    return ra == rb or ra.is_relative_to(rb)


def check_out_path(bundle: Path, out: Path, overwrite: bool, data: Sequence[Path] = ()) -> None:
    """Refuse an ``out`` that is, holds or lies inside the input bundle or a ``data`` path
    (:class:`RecalibrationError`), or that exists without ``overwrite``, or exists and is not an earlier bundle
    (FileExistsError: ``overwrite`` replaces an earlier bundle only, never a data file or a folder of other
    files)."""
    if _same_path(bundle, out) or bundle.resolve() == out.resolve():
        raise RecalibrationError(f"--out {out} is the input bundle; write the new bundle elsewhere (the input is never replaced)")
    if bundle.is_dir() and _within(out, bundle):
        raise RecalibrationError(f"--out {out} lies inside the input bundle {bundle}; write it elsewhere")
    if _within(bundle, out):
        raise RecalibrationError(f"--out {out} holds the input bundle {bundle}; write the new bundle elsewhere "
                                 "(replacing --out would delete the input)")
    for d in data:
        if str(d) and (_within(d, out) or _within(out, d)):
            how = "is" if d.resolve() == out.resolve() else ("holds" if _within(d, out) else "lies inside")
            raise RecalibrationError(f"--out {out} {how} the data {d}; write the new bundle elsewhere (the data is never replaced)")
    check_replaceable(out, overwrite)


def _targets(spec: dict[str, Any], asked: Sequence[float] | None) -> list[float]:
    if asked is not None:
        ts = [float(t) for t in asked]
    else:
        ts = sorted({float(t["target_fpr"]) for t in spec["thresholds"].values() if isinstance(t.get("target_fpr"), (int, float))})
    for t in ts:
        if not 0.0 < t < 1.0:
            raise RecalibrationError(f"target FPR must be in (0, 1), found {t}")
    if not ts:
        raise RecalibrationError("the bundle names no target FPR; give --targets, e.g. 0.01,0.05")
    return ts


def _refuse_early(y: np.ndarray, targets: list[float], method: str | None) -> None:
    n_h, n_a = int((y == 0).sum()), int((y == 1).sum())
    for t in targets:
        need = _thresholds.humans_needed(t)
        if n_h < need:
            raise RecalibrationError(
                f"target FPR {t:g} ({_thresholds.threshold_name(t)}) needs at least {need} human items, found {n_h}; "
                "add human items or choose a larger target (--targets)"
            )
    if method is not None and n_a == 0:
        raise RecalibrationError(
            f"--method {method}: refitting the calibration needs labelled AI items too, found {n_h} human and 0 AI; "
            "drop --method to keep the bundle's calibration and only re-threshold"
        )


def _fingerprint(items: Sequence[Any], y: np.ndarray) -> str:
    h = hashlib.sha256()
    for it, lab in zip(items, y.tolist(), strict=True):
        h.update(str(it).encode("utf-8", "replace") + b"\x00" + str(lab).encode() + b"\x01")
    return "sha256:" + h.hexdigest()


def _new_calibration(spec: dict[str, Any], s: np.ndarray, y: np.ndarray, opt: CalibrateOptions) -> tuple[dict[str, Any], str]:
    """The new calibration object and what was done (``refit`` or ``kept``), with the prevalence applied."""
    old = dict(spec["calibration"])
    old.pop("prevalence", None)
    if (y == 1).any() and (y == 0).any():
        method = opt.method or old.get("method", "temperature")
        cal = _calibration.fit_calibration(s, y, method)
        how, base, base_from = "refit", float((y == 1).mean()), "the labelled data given to aigc calibrate"
    else:
        cal, how = old, "kept"
        n, n_ai = old.get("n"), old.get("n_ai")
        if isinstance(n, int) and isinstance(n_ai, int) and 0 < n_ai < n:
            base, base_from = n_ai / n, "the bundle's calibration data"
        else:
            base, base_from = 0.5, "assumed 0.5 (the bundle does not record its calibration class counts)"
    if opt.prevalence is not None:
        if not 0.0 < opt.prevalence < 1.0:
            raise RecalibrationError(f"--prevalence: found {opt.prevalence}, expected a share in (0, 1), e.g. 0.02")
        cal["prevalence"] = _calibration.prevalence_record(base, opt.prevalence, base_from)
    return cal, how


def _thresholds_on(p: np.ndarray, y: np.ndarray, targets: list[float], spec: dict[str, Any], cal: dict[str, Any],
                   how: str) -> dict[str, Any]:  # fmt: skip
    has_ai = bool((y == 1).any())
    try:
        out = _thresholds.choose_thresholds(p, y, targets, balanced=has_ai)
    except _thresholds.ThresholdError as e:
        raise RecalibrationError(str(e)) from None
    old = spec["thresholds"].get("balanced")
    if not has_ai and old is not None:
        kept = dict(old)
        v = np.array([float(old["value"])])
        if cal.get("prevalence") and how == "kept":
            prev = cal["prevalence"]
            v = _calibration.adjust_prevalence(v, float(prev["base"]), float(prev["target"]))
        kept["value"] = float(v[0])
        kept["note"] = "kept from the original bundle (no AI items to refit it)" + (
            ", moved by the prevalence shift" if cal.get("prevalence") else "")
        out["balanced"] = kept
    return out


def _data_hashes(old_root: Path, spec: dict[str, Any], tmp: Path, items: Sequence[Any], modality: str) -> dict[str, Any]:
    """Rewrite data_hashes.json with the new calibration items, keeping the training part."""
    training = None
    field = spec.get("data_hashes")
    (tmp / _overlap.DATA_HASHES_FILE).unlink(missing_ok=True)
    out = _overlap.write_data_hashes(tmp, items, None, modality)
    if isinstance(field, dict) and (old_root / str(field.get("file", ""))).is_file():
        doc_old = json.loads((old_root / str(field["file"])).read_text(encoding="utf-8"))
        training = doc_old.get("training")
    if training:
        doc = json.loads((tmp / _overlap.DATA_HASHES_FILE).read_text(encoding="utf-8"))
        doc["training"] = training
        (tmp / _overlap.DATA_HASHES_FILE).write_text(json.dumps(doc) + "\n", encoding="utf-8")
        out["training"] = {k: training[k] for k in ("n", "n_hashed", "sampled")}
    return out


def _training_overlap(bundle: Bundle, items: Sequence[Any], y: np.ndarray, modality: str) -> dict[str, Any] | None:
    """How many of the new calibration items the model was trained on (the bundle's stored training hashes),
    with a warning: the model scores its training items as it learned them, so thresholds set on them promise
    a false-positive rate that fresh items do not get. None when none is, or the bundle recorded no hashes."""
    parts = ([it for it, lab in zip(items, y, strict=True) if lab == k] for k in (0, 1))  # each item hashed once
    human, ai = ((_overlap.check_overlap(bundle.root, bundle.spec, p, modality).get("training") or {}) if p else {}
                 for p in parts)
    n = int(human.get("n_overlap", 0)) + int(ai.get("n_overlap", 0))
    if human.get("status") != "checked" or not n:
        return None
    out = {"n": n, "share": n / max(1, len(items)), "n_human": int(human.get("n_overlap", 0))}
    log.warning("%d of the %d calibration items (%d humans) are items the model was trained on%s: its scores on them "
                "are lower than on fresh items, so thresholds set on them flag more fresh humans than they promise; "
                "calibrate on data the model never saw", out["n"], len(items), out["n_human"], human.get("note", ""))
    return out


def _store_calibration(spec: dict[str, Any], variant: str, fitted: dict[str, Any]) -> dict[str, Any] | None:
    """Put the refit of ``variant`` where that variant reads it: the bundle's own fields for fp32, else
    ``variant_calibration[variant]`` (bundle v3), so that recalibrating int8 never moves fp32's thresholds
    (nor fp32 int8's). Returns the group thresholds it dropped (set on the original calibration), if any;
    ``fitted``'s own ``group_thresholds`` (set on the new data) take their place."""
    if variant == "fp32":
        old = spec.pop("group_thresholds", None)
        spec.update(fitted)
        return old
    vc = spec.setdefault("variant_calibration", {})
    old = vc.get(variant) or {k: spec[k] for k in VARIANT_CALIBRATED if k in spec}
    vc[variant] = {**{k: v for k, v in old.items() if k != "group_thresholds"}, **fitted}
    return old.get("group_thresholds")


def _group_thresholds_on(p: np.ndarray, y: np.ndarray, groups: Sequence[str | None], thresholds: dict[str, Any],
                         targets: list[float], column: str) -> dict[str, Any]:
    """``group_thresholds`` of the scored items (``groups``: one value or None each), each group's ``fpr@X`` never
    below the new global one (``thresholds``); refused when no group gets one, since it was asked for."""
    gt = _thresholds.choose_group_thresholds(p, y, groups, column, targets, floors=_thresholds.fpr_floors(thresholds))
    if not gt["groups"]:
        counts = {g: int(((np.asarray(groups, dtype=object) == g) & (y == 0)).sum()) for g in gt["skipped"]}
        raise RecalibrationError(
            f"--group-field {column}: no group has the {_thresholds.MIN_GROUP_HUMANS} human items its own thresholds "
            f"need (humans per group: {counts or 'no item has a value'}); add human items of each group")
    has_ai = bool((y == 1).any())  # without machine items no group has a balanced threshold: not worth a warning
    said = {g: [w for w in ws if has_ai or "balanced" not in w] for g, ws in gt["skipped"].items()}
    if any(said.values()):
        log.warning("group thresholds by %s: %s", printable(column),
                    printable("; ".join(f"{g}: {', '.join(w)}" for g, w in said.items() if w)))
    weak = _thresholds.weak_groups_warning(gt)
    if weak:
        log.warning("%s", printable(weak))
    return gt


def _fit_variant(bundle: Bundle, orig: dict[str, Any], variant: str, items: Sequence[Any], y_all: np.ndarray,
                 targets: list[float], opt: CalibrateOptions, groups: Sequence[str | None] | None = None
                 ) -> tuple[dict[str, Any], str, np.ndarray, list[Any], str]:
    """Score ``items`` with ``variant`` and fit its calibration and thresholds (from its own record in the
    original spec ``orig``), and with ``groups`` its group thresholds. Returns ``(fitted, how, ok mask, metas,
    modality)``."""
    raw, ok, metas, modality = score_items(bundle, variant, items, opt)
    s, y = raw[ok], y_all[ok]
    _refuse_early(y, targets, opt.method)  # again, on the items that scored
    view = spec_for_variant(orig, variant)
    cal, how = _new_calibration(view, s, y, opt)
    p = _calibration.apply_calibration(s, cal)
    fitted = {"calibration": cal, "thresholds": _thresholds_on(p, y, targets, view, cal, how)}
    if groups is not None:
        kept = [groups[int(i)] for i in np.flatnonzero(ok)]
        fitted["group_thresholds"] = _group_thresholds_on(p, y, kept, fitted["thresholds"], targets, opt.group_field)
    return fitted, how, ok, metas, modality


def score_items(bundle: Bundle, variant: str, items: Sequence[Any], opt: CalibrateOptions
                ) -> tuple[np.ndarray, np.ndarray, list[Any], str]:
    """Raw scores of ``items`` by ``variant``, the mask of those that scored (a warning names the first
    failure), their metas and the bundle's modality."""
    from ._detector import Detector

    det = Detector(bundle, opt.providers, opt.threads, variant, allow_fallback=True, batch_size=opt.batch_size)
    raw, errors, metas = det.raw_scores_with_meta(list(items))
    ok = np.isfinite(raw)
    if (~ok).any():
        log.warning("%s: %d of %d items could not be scored (first: %s)", variant, int((~ok).sum()), len(items),
                    printable(next((e for e in errors if e), "NaN")))  # fmt: skip
    return raw, ok, metas, det.modality


def check_inputs(items: Sequence[Any], labels: Sequence[int] | np.ndarray, groups: Sequence[Any] | None) -> np.ndarray:
    """The labels as an int array, after checking that items, labels and groups agree in number and that
    every label is 0 or 1 (:class:`RecalibrationError` otherwise)."""
    y = np.asarray(labels, dtype=np.int64)
    if len(items) != y.size:
        raise RecalibrationError(f"{len(items)} items but {y.size} labels")
    if not np.isin(y, (0, 1)).all():
        raise RecalibrationError("labels must be 0 (human) or 1 (AI)")
    if groups is not None and len(groups) != y.size:
        raise RecalibrationError(f"{len(items)} items but {len(groups)} group values")
    return y


def record_head(bundle: Bundle, src: Path, source: str, items: Sequence[Any], y: np.ndarray, n_failed: int
                ) -> dict[str, Any]:
    """The first fields of a ``recalibration`` record: its version and time, the data (``items`` and ``y``:
    those that scored) and the bundle started from."""
    return {
        "version": RECALIBRATION_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data": {"source": source, "fingerprint": _fingerprint(items, y), "n": int(y.size),
                 "n_human": int((y == 0).sum()), "n_ai": int((y == 1).sum()), "n_failed": n_failed},
        "original": {"name": bundle.spec.get("name"), "bundle_json_sha256": bundle.json_sha256,
                     **({"zip_sha256": sha256_file(src)} if src.is_file() else {}), "path": str(src)},
    }  # fmt: skip


def note_other_variants(record: dict[str, Any], spec: dict[str, Any], done: Sequence[str]) -> None:
    """Record (and warn) which variants with their own record (``variant_calibration``) were not refitted."""
    others = sorted(v for v in spec.get("variant_calibration") or {} if v not in done)
    if others:
        record["variants_not_recalibrated"] = others
        log.warning("variant(s) %s keep their own calibration from the original split: recalibrate each with "
                    "--variant", printable(", ".join(others)))


def stamp(record: dict[str, Any], spec: dict[str, Any]) -> None:
    """Chain the bundle's earlier ``recalibration`` record under ``previous``, add the aigc version, and store
    ``record`` as the spec's ``recalibration``."""
    if spec.get("recalibration"):
        record["previous"] = spec["recalibration"]
    try:
        from . import __version__ as v

        record["aigc_version"] = v
    except ImportError:  # pragma: no cover
        pass
    spec["recalibration"] = record


def write_new_bundle(bundle: Bundle, spec: dict[str, Any], dst: Path, overwrite: bool,
                     hashes: Callable[[Path], dict[str, Any] | None]) -> Path:
    """Copy the bundle's files beside ``dst`` with ``spec`` as its bundle.json (``hashes(tmp)`` rewrites
    data_hashes.json in the copy and returns the ``data_hashes`` field, None to keep the bundle's), check
    that it loads, and move it into place; nothing is left behind on failure."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=dst.parent))
    try:
        for f in bundle.root.iterdir():
            if f.is_file() and f.name != "bundle.json":
                shutil.copy2(f, tmp / f.name)
        field = hashes(tmp)
        if field is not None:
            spec["data_hashes"] = field
        write_bundle(tmp, spec, overwrite=True)
        open_bundle(tmp)  # the new bundle loads and every sha256 matches
        return place_bundle(tmp, dst, overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def recalibrate(bundle_path: str | os.PathLike[str], items: Sequence[Any], labels: Sequence[int] | np.ndarray,
                out: str | os.PathLike[str], opt: CalibrateOptions | None = None,
                groups: Sequence[str | None] | None = None) -> tuple[Path, dict[str, Any]]:
    """Write a copy of the bundle re-thresholded (and, with both classes, re-calibrated) on ``items``.

    ``labels``: 0 human / 1 AI per item (human-only data: all 0). ``groups``: one value (a language, a
    domain) or None per item: the new bundle gets per-group thresholds named by ``opt.group_field`` (the
    runtime applies them to items given that group). Returns the new bundle's path and its
    ``recalibration`` record. Raises :class:`RecalibrationError` for targets or refits the data cannot
    support (with the number of humans needed), FileExistsError for an existing ``out`` without
    ``overwrite`` or one that is not an earlier bundle. The input bundle is never changed; nothing is left at
    ``out`` on failure.

    Only ``opt.variant`` is refitted, unless the new thresholds' names differ from the bundle's (other
    ``--targets``) and the new bundle holds per-variant records (``variant_calibration``, which a variant
    other than fp32 gets): every record must carry the same names, so each (fp32's included) is then refitted
    on the same items, scored by its own variant.
    """
    opt = opt or CalibrateOptions()
    src, dst = Path(bundle_path), Path(out)
    check_out_path(src, dst, opt.overwrite, [Path(opt.source)] if opt.source else [])
    y_all = check_inputs(items, labels, groups)
    bundle = open_bundle(src)
    spec = json.loads(json.dumps(bundle.spec))
    orig = json.loads(json.dumps(bundle.spec))
    view = spec_for_variant(spec, opt.variant)  # what opt.variant scored with: its own record (v3) or the bundle's
    targets = _targets(view, opt.targets)
    _refuse_early(y_all, targets, opt.method)

    fitted, how, ok, metas, modality = _fit_variant(bundle, orig, opt.variant, items, y_all, targets, opt, groups)
    s_ok, y = np.flatnonzero(ok), y_all[ok]
    n_failed = int((~ok).sum())
    cal = fitted["calibration"]
    dropped = [d for d in [_store_calibration(spec, opt.variant, fitted)] if d]
    also: dict[str, Any] = {}
    old_names = sorted(spec_for_variant(orig, opt.variant)["thresholds"])  # (spec, and fp32's view, now hold the new)
    renamed = sorted(fitted["thresholds"]) != old_names
    vc = spec.get("variant_calibration") or {}  # holds opt.variant by now, unless that is fp32
    for v in [x for x in ("fp32", *vc) if x != opt.variant] if renamed and vc else []:
        log.warning("thresholds %s replace %s, and every variant carries the same names: refitting %s on the same "
                    "items too", sorted(fitted["thresholds"]), old_names, v)  # fmt: skip
        f_v, how_v, ok_v, _, _ = _fit_variant(bundle, orig, v, items, y_all, targets, opt, groups)
        dropped += [d for d in [_store_calibration(spec, v, f_v)] if d]
        also[v] = {"calibration": how_v, "n": int(ok_v.sum()), "n_failed": int((~ok_v).sum())}
    ok_items = [items[int(i)] for i in s_ok]
    spec["support"] = _support.compute_support([metas[int(i)] for i in s_ok], modality,
                                               texts=ok_items if modality == "text" else None)

    record: dict[str, Any] = {
        **record_head(bundle, src, opt.source, ok_items, y, n_failed),
        "calibration": how,
        "targets": targets,
        "variant": opt.variant,
        "prevalence": cal.get("prevalence"),
        "support": "recomputed on this data",
    }  # fmt: skip
    if dropped:
        record["dropped"] = f"group_thresholds by {dropped[0].get('column')!r} (set on the original calibration)"
    if groups is not None:
        gt = fitted["group_thresholds"]
        record["group_thresholds"] = {"column": gt["column"], "groups": sorted(gt["groups"]),
                                      "global_only": sorted(g for g in gt["skipped"] if g not in gt["groups"]),
                                      "weak": sorted(_thresholds.weak_groups(gt))}
    in_training = _training_overlap(bundle, ok_items, y, modality)
    if in_training:
        record["data_in_training"] = in_training
    if also:
        record["also_recalibrated"] = also
    note_other_variants(record, spec, [opt.variant, *also])
    stamp(record, spec)
    path = write_new_bundle(bundle, spec, dst, opt.overwrite,
                            lambda tmp: _data_hashes(bundle.root, spec, tmp, ok_items, modality))
    return path, record
