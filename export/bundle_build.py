"""Assemble a bundle from a trained model: export, parity, calibration, thresholds, support, variants.

The order (each step through the real runtime, ``aigc.load``):

1. export the fp32 graph (and the asked variants) into a temporary folder beside ``out``;
2. write a provisional bundle.json (calibration ``none``, a placeholder threshold) with
   ``aigc._bundle.write_bundle`` and check fp32 parity with torch on raw calibration items (1e-4);
3. score the calibration items with the fp32 bundle (``Detector.raw_scores``); fit the calibration,
   the named thresholds (and per-group ones) on those scores (``export/threshold_fit.py``); record the support
   of the items;
4. score them with each variant; a variant whose AUROC drops by more than 0.005 is refused
   unless forced;
5. rewrite bundle.json, then move the folder into place (an existing ``out`` only with ``overwrite``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from aigc import _calibration, _overlap, _support
from aigc._bundle import model_files, place_bundle, write_bundle
from aigc._printable import printable
from aigc.metrics import auroc

from .build_options import (
    N_PARITY,
    BuildOptions,
    ExportRefused,
    calibration_overlap,
    check_fp32_modules,
    check_group_values,
    check_inputs,
    prepare_out,
    refuse_early,
)
from .bundle_spec import io_spec, provisional_spec
from .external import external_locations, use_external_data
from .onnx_export import ExportError, export_image_model, export_text_model, param_bytes
from .parity import ParityReport
from .split_scores import Scored, check_fp32_parity, item_meta, score_calibration_split, scores_from_run
from .threshold_fit import calibrate, calibrate_variants, choose_method, max_abs_dp
from .variants import VARIANT_FILES, make_variant

__all__ = ["MAX_AUROC_DROP", "N_PARITY", "BuildOptions", "ExportRefused", "RunLike", "build_bundle", "item_meta"]

log = logging.getLogger(__name__)

MAX_AUROC_DROP = 0.005
# below this Spearman correlation with fp32's scores, a variant ranks the split as another detector would: the
# AUROC gate alone then says little (it passes when fp32 is near chance on the split, as the Qwen pair was)
MIN_RANK_AGREEMENT = 0.95


class RunLike(Protocol):
    """What export needs from a trained run (``training.load_run`` returns one); read-only."""

    @property
    def model(self) -> Any: ...
    @property
    def modality(self) -> str: ...
    @property
    def preprocessing(self) -> dict[str, Any]: ...
    @property
    def tokenizer_file(self) -> Path | None: ...
    @property
    def input_names(self) -> list[str]: ...
    @property
    def output_kind(self) -> str: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def provenance(self) -> dict[str, Any]: ...


def build_bundle(
    run: RunLike,
    out: str | Path,
    items: Sequence[Any],
    labels: Sequence[int] | np.ndarray,
    groups: Sequence[Any] | None = None,
    options: BuildOptions | None = None,
    worst_groups: Sequence[Any] | None = None,
    run_scores: Sequence[float] | np.ndarray | None = None,
) -> Path:
    """Export ``run`` into a calibrated bundle at ``out`` (a folder, or a ``.zip``); return its path.

    ``items``/``labels``/``groups``: the calibration split (image paths or texts; 0 human / 1 ai; the
    group of each item or None), disjoint from training: with ``options.training_items`` any overlap is
    warned about and recorded (``data_hashes.calibration_in_training``), and from ``MAX_CALIBRATION_OVERLAP``
    of the items or humans refused (:class:`ExportRefused`) unless ``options.allow_calibration_overlap``. ``worst_groups``: each item's value of
    ``options.worst_group_column`` (needed when it is set; a human without one is refused): every ``fpr@X``
    threshold then holds X on each group's humans (:func:`aigc._thresholds.choose_worst_group_thresholds`). Raises FileExistsError for an existing ``out``
    without ``options.overwrite``; :class:`~export.parity.ParityError` when fp32 probabilities differ
    from torch by more than ``options.atol``; :class:`ExportRefused` for a variant whose AUROC drops by
    more than 0.005 (unless ``options.force``); CalibrationError/ThresholdError for fits the data
    cannot support. Nothing is left at ``out`` when it fails.

    ``run_scores``: the run's own torch raw scores of ``items`` (``predictions/dev.jsonl`` of the loaded
    checkpoint; NaN where an item failed). When the fp32 bundle reproduces them on the parity sample
    (``options.atol`` on probabilities) they are the calibration scores and the split is not scored
    again; otherwise parity is checked against the torch model and the split is scored by the bundle.
    """
    opt = options or BuildOptions()
    out = Path(out)
    prepare_out(out, opt.overwrite)
    y = np.asarray(labels, dtype=np.int64)
    check_inputs(items, y, groups, worst_groups, opt, run_scores)
    variants = list(dict.fromkeys(["fp32", *opt.variants]))
    for v in variants:
        if v not in VARIANT_FILES:
            raise ValueError(f"variants: unknown {v!r}, expected some of {sorted(VARIANT_FILES)}")
    method, method_note = choose_method(run.output_kind, opt.calibration)
    check_group_values(y, groups, worst_groups, opt)
    refuse_early(y, method, opt, worst_groups)
    check_fp32_modules(run.model, opt, variants)
    overlap = calibration_overlap(items, y, opt, run.modality)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        spec = _build_in(run, tmp, items, y, groups, opt, variants, method, method_note, worst_groups, run_scores,
                         overlap)
        log.info("bundle %s: %s", printable(out), printable(spec.get("name")))
        return place_bundle(tmp, out, opt.overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _build_in(
    run: RunLike,
    tmp: Path,
    items: Sequence[Any],
    y: np.ndarray,
    groups: Sequence[Any] | None,
    opt: BuildOptions,
    variants: list[str],
    method: str,
    method_note: str | None,
    worst_groups: Sequence[Any] | None = None,
    run_scores: Sequence[float] | np.ndarray | None = None,
    overlap: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec = _export_graphs(run, tmp, opt, variants, release_torch=run_scores is not None)
    write_bundle(tmp, spec, overwrite=True)  # provisional: raw scores through the runtime
    par = check_fp32_parity(run, tmp, items, y, opt, run_scores)
    if par.reference == "run predictions":  # the bundle reproduces the run's scores: each split scored once
        scored = scores_from_run(np.asarray(run_scores, dtype=np.float64), items, run.modality, tmp, spec, opt)
    else:
        scored = score_calibration_split(tmp, items, opt)
    yy = y[scored.ok]
    calibrated, p = calibrate(scored, y, method, method_note, opt, groups, worst_groups)
    spec.update(calibrated)
    spec["support"] = _support.compute_support(scored.kept(scored.metas), run.modality,
                                               texts=scored.kept(items) if run.modality == "text" else None)
    spec["data_hashes"] = _overlap.write_data_hashes(tmp, items, opt.training_items, run.modality)
    if overlap is not None:  # the calibration items that are training items (build_options.calibration_overlap)
        spec["data_hashes"]["calibration_in_training"] = overlap
    spec["metrics"] = _split_metrics(scored, yy, par)
    spec["variants_eval"], variant_scores = _evaluate_variants(tmp, items, y, scored, p, calibrated["calibration"],
                                                               variants[1:], opt)
    _leave_out_refused(tmp, spec)
    spec.update(calibrate_variants(variant_scores, scored, p, spec["variants_eval"],
                                    lambda sv: calibrate(sv, y, method, method_note, opt, groups, worst_groups)))
    write_bundle(tmp, spec, overwrite=True)
    return spec


def _leave_out_refused(tmp: Path, spec: dict[str, Any]) -> None:
    """Delete the files of every variant that ``variants_eval`` marks ``refused`` (``--drop-refused``) and take
    it out of ``model``, so that the bundle holds and hashes only what it serves."""
    model = spec["model"]
    for v, ev in spec["variants_eval"].items():
        if not ev.get("refused") or v not in model["variants"]:
            continue
        for name in model_files(spec, v):
            (tmp / name).unlink(missing_ok=True)
        del model["variants"][v]
        ext = model.get("external_data")
        if isinstance(ext, dict):
            ext.pop(v, None)


def rank_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two scores of the same items (ties share their mean rank), to 4 decimals;
    NaN for fewer than 2 items or a constant score."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2:
        return float("nan")
    ra, rb = _mean_ranks(a), _mean_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return round(float((ra * rb).sum()) / den, 4) if den > 0 else float("nan")


def _mean_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size)
    ranks[order] = np.arange(x.size)
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    return (np.bincount(inv, weights=ranks) / counts)[inv]


def _export_graphs(run: RunLike, tmp: Path, opt: BuildOptions, variants: list[str], release_torch: bool = False
                   ) -> dict[str, Any]:
    """Write the fp32 graph, the tokenizer (text) and each variant into ``tmp``; return the provisional spec.

    ``release_torch``: the run's stored scores will stand in for the torch model, so a run that can
    reload its model (``release_model``) drops it once the fp32 graph is written: quantization and the
    ONNX Runtime sessions then never hold a second copy of the weights (a 1.5B LM is 6 GB in fp32)."""
    modality = run.modality
    io = io_spec(modality, run.input_names, run.output_kind)
    out_name = io["outputs"][0]["name"]
    fp32 = tmp / VARIANT_FILES["fp32"]
    external = use_external_data(opt.external_data, param_bytes(run.model))
    if modality == "image":
        _, exporter = export_image_model(
            run.model, run.preprocessing, fp32, io["inputs"][0]["name"], out_name, run.output_kind, opt.exporter,
            external_data=external,
        )
    elif modality == "text":
        _, exporter = export_text_model(
            run.model, run.input_names, fp32, out_name, run.output_kind, exporter=opt.exporter,
            external_data=external,
        )
    else:
        raise ExportError(f"modality: found {modality!r}, expected image or text")
    from training.evaluate import logits_per_token

    lpt = logits_per_token(run.model)
    if release_torch and callable(getattr(run, "release_model", None)):
        run.release_model()  # type: ignore[attr-defined]
        log.info("released the torch model after the fp32 graph (the run's scores stand in for it)")
    pre = dict(run.preprocessing)
    if modality == "text":
        if run.tokenizer_file is None:
            raise ExportError("a text run needs its tokenizer_file (tokenizer.json)")
        pre.setdefault("tokenizer", "tokenizer.json")
        shutil.copyfile(run.tokenizer_file, tmp / pre["tokenizer"])
        if pre.get("companion") is not None:  # the second LM's tokenizer lies beside the first in the run
            comp = run.tokenizer_file.parent / pre["companion"]["tokenizer"]
            if not comp.is_file():
                raise ExportError(f"preprocessing.companion: the run has no {comp.name} beside {run.tokenizer_file}")
            shutil.copyfile(comp, tmp / pre["companion"]["tokenizer"])
        if opt.max_text_tokens is not None:
            pre["max_tokens"] = int(opt.max_text_tokens)
    for v in variants[1:]:
        try:
            make_variant(v, fp32, tmp, modality=modality, external_data=external,
                         int8_fp32_modules=opt.int8_fp32_modules)
        except ValueError as e:
            raise ExportError(f"{v} variant: {e}") from e
    files = {v: VARIANT_FILES[v] for v in variants}
    spec = provisional_spec(run, opt.name, opt.labels, files, io, pre, exporter, opt.calibration_source)
    if lpt:
        spec["model"]["logits_per_token"] = lpt  # the runtime sizes LM batches by it (aigc._text.lm_token_budget)
    ext = {v: external_locations(tmp / f) for v, f in files.items()}
    if any(ext.values()):
        spec["model"]["external_data"] = {v: locs for v, locs in ext.items() if locs}
    return spec


def _split_metrics(scored: Scored, yy: np.ndarray, par: ParityReport) -> dict[str, Any]:
    """``metrics`` of bundle.json: the calibration split's counts and AUROC (``scored_by``: the fp32 bundle,
    or the run's predictions that the bundle reproduced on the parity sample), and the parity report."""
    return {
        "calibration_split": {
            "scored_by": "run predictions" if par.reference == "run predictions" else "bundle fp32",
            "n": int(scored.ok.sum()),
            "n_human": int((yy == 0).sum()),
            "n_ai": int(yy.sum()),
            "n_failed": scored.n_failed,
            "auroc": round(auroc(yy, scored.s), 6),
        },
        "parity": par.to_dict(),
    }


def _evaluate_variants(tmp: Path, items: Sequence[Any], y: np.ndarray, scored: Scored, p: np.ndarray,
                       cal: dict[str, Any], others: Sequence[str], opt: BuildOptions
                       ) -> tuple[dict[str, Any], dict[str, Scored]]:
    """Score the split with each variant besides fp32 and compare AUROC; raises ExportRefused for a
    variant that drops more than MAX_AUROC_DROP (or fails items fp32 scored) unless ``opt.force``.
    Returns ``variants_eval`` and each shipped variant's raw scores of the split (for its own calibration).
    ``max_abs_dp_fp32_calibration``: how far the variant's probabilities would be from fp32's under fp32's
    calibration (what a bundle without ``variant_calibration`` served)."""
    from aigc import load

    ok = scored.ok
    base_auc = auroc(y[ok], scored.s)
    evals: dict[str, Any] = {"fp32": {"auroc": round(base_auc, 6), "auroc_delta": 0.0, "n": int(ok.sum())}}
    raw: dict[str, Scored] = {}
    refused: dict[str, str] = {}  # variant -> why
    for v in others:
        dv = load(tmp, providers="cpu", threads=opt.threads, variant=v)
        rv, _ = dv.raw_scores(list(items))
        both = ok & np.isfinite(rv)
        raw[v] = Scored(raw=np.asarray(rv, dtype=np.float64), ok=both, metas=scored.metas,
                        n_failed=int((~both).sum()))
        if both.sum() < ok.sum():
            refused[v] = f"{v}: {int(ok.sum() - both.sum())} items scored by fp32 failed"
            continue
        auc_v = auroc(y[both], rv[both])
        pv = _calibration.apply_calibration(rv[both], cal)
        delta = auc_v - base_auc
        rho = rank_agreement(rv[both], scored.raw[both])
        evals[v] = {
            "auroc": round(auc_v, 6),
            "auroc_delta": round(delta, 6),
            "n": int(both.sum()),
            "rank_agreement_fp32": rho,
            **({"weight_range": 64} if v == "int8" else {}),  # reduce_range: no kernel saturates (aigc._int8_cpu)
            **({"fp32_modules": list(opt.int8_fp32_modules)} if v == "int8" and opt.int8_fp32_modules else {}),
            "max_abs_dp_fp32_calibration": max_abs_dp(pv, p),
            "provider": "CPUExecutionProvider",
        }
        if rho < MIN_RANK_AGREEMENT:
            log.warning("%s orders the calibration split differently from fp32 (Spearman %.3f < %.2f on %d items): "
                        "it is another detector, and its AUROC change (%+.4f) is the only evidence that it is no "
                        "worse; check it on held-out data before serving it", v, rho, MIN_RANK_AGREEMENT,
                        int(both.sum()), delta)
        if -delta > MAX_AUROC_DROP:
            refused[v] = (f"{v}: AUROC {auc_v:.4f} vs fp32 {base_auc:.4f} on {int(both.sum())} calibration items "
                          f"(drop {-delta:.4f} > {MAX_AUROC_DROP})")
    if refused and not opt.force and not opt.drop_refused:
        raise ExportRefused(
            "variant refused: " + "; ".join(refused.values()) + ". Leave it out of --variants, pass --drop-refused "
            "to write the bundle without it, or --force to ship it"
        )
    for v, why in refused.items():
        if opt.force:
            log.warning("shipping a variant despite: %s (--force)", why)
            evals.setdefault(v, {}).update(forced=True, forced_reason=why)
        else:
            log.warning("leaving %s out of the bundle: %s (--drop-refused)", v, why)
            evals.setdefault(v, {})["refused"] = why
            raw.pop(v, None)
    return evals, {v: sv for v, sv in raw.items() if sv.ok.any()}
