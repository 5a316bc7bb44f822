"""The calibration split's fp32 scores: parity of the bundle with torch on a sample, then the scores
calibration is fitted on (the run's stored predictions when the bundle reproduces them, else the
bundle's own pass), with each item's facts for the support."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aigc._printable import printable

from .onnx_export import ExportError
from .parity import ParityReport, check_parity

__all__ = ["Scored", "check_fp32_parity", "failed_rows", "item_meta", "parity_indices", "score_calibration_split",
           "scores_from_run"]

log = logging.getLogger(__name__)


def item_meta(item: Any, modality: str, tokenizer: Any = None, text_spec: Any = None) -> dict[str, Any]:
    """Per-item facts for the support, the same fields ``Detector`` computes (text: n_tokens, n_chars,
    script; image: width, height, format, jpeg_quality); ``{}`` for an item that cannot be read."""
    if modality == "image":
        from aigc._image import decode_image

        try:
            li = decode_image(item)
        except Exception:
            return {}
        return {"width": li.width, "height": li.height, "format": li.format, "jpeg_quality": li.jpeg_quality}
    import dataclasses

    from aigc._text import TextWindows, dominant_script, encode_windows

    if text_spec.companion is not None:  # the facts come from the first tokenizer alone
        text_spec = dataclasses.replace(text_spec, companion=None)
    enc = encode_windows(tokenizer, [item], text_spec)[0]
    if not isinstance(enc, TextWindows):
        return {}
    return {"n_tokens": enc.n_tokens, "n_chars": len(item), "script": dominant_script(item[:20000])}


def parity_indices(labels: np.ndarray, n: int) -> list[int]:
    """Up to ``n`` items, half of each class where possible, in calibration order."""
    h = np.flatnonzero(labels == 0)
    a = np.flatnonzero(labels == 1)
    take_a = min(len(a), max(n // 2, n - len(h)))
    take_h = min(len(h), n - take_a)
    return sorted([int(i) for i in h[:take_h]] + [int(i) for i in a[:take_a]])


@dataclass
class Scored:
    """Raw fp32 scores of the calibration split and what goes with them (``ok``: finite scores)."""

    raw: np.ndarray
    ok: np.ndarray
    metas: list[dict[str, Any]]
    n_failed: int

    @property
    def s(self) -> np.ndarray:
        return self.raw[self.ok]

    def kept(self, values: Sequence[Any]) -> list[Any]:
        """``values`` (one per calibration item) of the items that were scored."""
        return [values[int(i)] for i in np.flatnonzero(self.ok)]


def check_fp32_parity(run: Any, tmp: Path, items: Sequence[Any], y: np.ndarray, opt: Any,
                       run_scores: Sequence[float] | np.ndarray | None = None) -> ParityReport:
    """fp32 bundle vs torch on raw items of both classes (raises ParityError beyond ``opt.atol``).

    With ``run_scores`` the torch side is first the run's stored scores of those items; when they agree
    the report's ``reference`` is ``"run predictions"`` (the model is not run); when they do not (another
    device, mixed precision, stale predictions) the torch model is run as without them."""
    idx = parity_indices(y, opt.n_parity)
    pre = dict(run.preprocessing)
    if opt.max_text_tokens is not None:  # the cap set at export applies to the torch side too
        pre["max_tokens"] = int(opt.max_text_tokens)
    rest = (tmp, [items[i] for i in idx], pre, run.input_names, run.output_kind,
            run.tokenizer_file, "fp32", opt.atol, {"method": "none", "params": {}}, opt.threads)
    if run_scores is not None:  # the torch model is not touched here (export may have released it)
        ref = np.asarray(run_scores, dtype=np.float64)[idx]
        par = check_parity(None, *rest, raise_on_failure=False, reference=ref)
        if par.ok:
            log.info("parity fp32 vs the run's predictions: max |dP| = %.2g over %d items; reusing them",
                     par.max_abs_diff, par.n)
            return par
        log.info("the run's predictions differ from the bundle (max |dP| = %.2g): checking parity with the "
                 "torch model and scoring the calibration split through the bundle", par.max_abs_diff)
    par = check_parity(run.model, *rest)
    log.info("parity fp32: max |dP| = %.2g over %d items", par.max_abs_diff, par.n)
    return par


def scores_from_run(raw: np.ndarray, items: Sequence[Any], modality: str, tmp: Path, spec: dict[str, Any],
                    opt: Any = None) -> Scored:
    """The run's stored scores as calibration scores, with each item's facts for the support (read, not
    scored: the same fields the runtime computes)."""
    tokenizer = text_spec = None
    if modality == "text":
        from aigc._text import TextSpec, load_tokenizer

        text_spec = TextSpec.from_dict(spec["preprocessing"])
        tokenizer = load_tokenizer(tmp / text_spec.tokenizer)
    ok = np.isfinite(raw)
    if ok.sum() == 0:
        raise ExportError(f"none of the {len(items)} calibration items has a score in the run's predictions")
    n_failed = int((~ok).sum())
    if n_failed:
        log.warning("%d of %d calibration items have no score in the run's predictions and are left out of "
                    "calibration and thresholds: %s", n_failed, len(items), printable(failed_rows(ok, None, opt)))
    metas = [item_meta(it, modality, tokenizer, text_spec) if k else {} for it, k in zip(items, ok, strict=True)]
    return Scored(raw, ok, metas, n_failed)


def failed_rows(ok: np.ndarray, errors: Sequence[str | None] | None, opt: Any, n: int = 5) -> str:
    """The first ``n`` unscored items, each as ``file:line`` (``opt.item_sources``; else ``item i``) and why,
    with the count of the rest: a dropped row is never anonymous."""
    src = getattr(opt, "item_sources", None)
    bad = [int(i) for i in np.flatnonzero(~ok)]
    parts = []
    for i in bad[:n]:
        where = src[i] if src is not None and i < len(src) else f"item {i}"
        why = (errors[i] if errors is not None and i < len(errors) else None) or (
            "no score" if errors is None else "NaN score")
        parts.append(f"{where}: {why}")
    return "; ".join(parts) + (f"; and {len(bad) - n} more" if len(bad) > n else "")


def score_calibration_split(tmp: Path, items: Sequence[Any], opt: Any) -> Scored:
    """Raw scores of the calibration items through the fp32 bundle, with the per-item facts of the same
    pass (they feed the support); raises ExportError when none can be scored."""
    from aigc import load

    det = load(tmp, providers="cpu", threads=opt.threads, variant="fp32")
    raw, errors, metas = det.raw_scores_with_meta(list(items))
    ok = np.isfinite(raw)
    n_failed = int((~ok).sum())
    if n_failed:
        log.warning("%d of %d calibration items could not be scored and are left out of calibration and "
                    "thresholds: %s", n_failed, len(items), printable(failed_rows(ok, errors, opt)))
    if ok.sum() == 0:
        raise ExportError(f"none of the {len(items)} calibration items could be scored ({errors[0] if errors else ''})")
    return Scored(raw, ok, metas, n_failed)
