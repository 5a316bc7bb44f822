"""Parity of a bundle with the torch model it came from, on the same raw inputs (image files, strings).

The bundle side is the runtime itself (``aigc.load(...).raw_scores``: decode, preprocessing by the
*bundle's* spec, batching, padding, ONNX Runtime). The torch side takes the same raw items through
the shared preprocessing functions with the *run's* spec (what the model was trained and evaluated
with), one window or image at a time with no padding, into the torch model. A preprocessing field
written wrongly into the bundle, a padding leak in the graph, or an exporter bug all show up as a
difference in probability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aigc._calibration import apply_calibration

__all__ = ["ParityError", "ParityReport", "check_parity", "torch_raw_scores"]

ATOL = 1e-4


class ParityError(RuntimeError):
    """The bundle's probabilities differ from the torch model's by more than the tolerance."""


@dataclass
class ParityReport:
    """Largest |P_bundle - P_torch| over the items, where it happened, and the raw-score difference."""

    variant: str
    n: int
    atol: float
    max_abs_diff: float
    worst_index: int
    worst_item: str
    raw_max_abs_diff: float
    ok: bool
    reference: str = "torch"  # "torch": the model run here; "run predictions": the run's stored torch scores

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["max_abs_diff"] = float(f"{self.max_abs_diff:.3g}")
        d["raw_max_abs_diff"] = float(f"{self.raw_max_abs_diff:.3g}")
        return d


def _show(item: Any) -> str:
    s = str(item) if not isinstance(item, (bytes, bytearray)) else f"<{len(item)} bytes>"
    s = s.replace("\n", " ")
    return s if len(s) <= 80 else s[:77] + "..."


def torch_raw_scores(
    model: Any,
    modality: str,
    preprocessing: dict[str, Any],
    items: Sequence[Any],
    input_names: Sequence[str],
    output_kind: str = "logits",
    tokenizer_file: str | Path | None = None,
) -> tuple[np.ndarray, list[str | None]]:
    """Raw scores of ``items`` from the torch ``model`` through the shared preprocessing with ``preprocessing``
    (the run's spec): one image or one text window per forward call, no padding; text windows pooled as
    the spec says. Returns scores (n,) (NaN for failed items) and the per-item errors."""
    import torch

    model = model.float().cpu().eval()
    scores = np.full(len(items), np.nan)
    errors: list[str | None] = [None] * len(items)

    def raw(out: Any) -> np.ndarray:
        o = out.detach().double().numpy()
        return o[:, 1] - o[:, 0] if output_kind == "logits" else o.reshape(-1)

    with torch.no_grad():
        if modality == "image":
            from aigc._image import ImageSpec, decode_image, preprocess_image

            spec = ImageSpec.from_dict(preprocessing)
            for i, it in enumerate(items):
                try:
                    x = preprocess_image(decode_image(it).image, spec)
                except Exception as e:
                    errors[i] = f"{type(e).__name__}: {e}"
                    continue
                scores[i] = float(raw(model(torch.from_numpy(x[None])))[0])
        else:
            from aigc._text import (
                TextSpec,
                TextWindows,
                encode_windows,
                load_tokenizer,
                pool_scores,
                window_feeds,
            )

            tspec = TextSpec.from_dict(preprocessing)
            if tokenizer_file is None:
                raise ValueError("torch_raw_scores: a text model needs its tokenizer_file")
            tok = load_tokenizer(tokenizer_file)
            tok_b = None if tspec.companion is None else load_tokenizer(Path(tokenizer_file).parent / tspec.companion.tokenizer)
            for i, enc in enumerate(encode_windows(tok, list(items), tspec, tok_b)):
                if not isinstance(enc, TextWindows):
                    errors[i] = str(enc)
                    continue
                ws = []
                for k, w in enumerate(enc.windows):  # one window a call: no padding
                    one = window_feeds(tspec, [w], None if enc.companion is None else [enc.companion[k]])
                    feeds = {n: torch.from_numpy(a) for n, a in one.items()}
                    feeds["token_type_ids"] = torch.zeros_like(feeds["input_ids"])
                    ws.append(float(raw(model(*[feeds[n] for n in input_names]))[0]))
                scores[i] = pool_scores(np.asarray(ws), tspec.pooling)
    return scores, errors


def check_parity(
    model: Any,
    bundle_dir: str | Path,
    items: Sequence[Any],
    preprocessing: dict[str, Any],
    input_names: Sequence[str],
    output_kind: str = "logits",
    tokenizer_file: str | Path | None = None,
    variant: str = "fp32",
    atol: float = ATOL,
    calibration: dict[str, Any] | None = None,
    threads: int | None = None,
    raise_on_failure: bool = True,
    reference: Sequence[float] | np.ndarray | None = None,
) -> ParityReport:
    """Compare the bundle (through ``aigc.load``) with the torch ``model`` on the same raw ``items``.

    Probabilities are compared under ``calibration`` (default: the bundle's own). An item that fails on
    one side only is a parity failure too. Raises :class:`ParityError` naming the worst item and the
    difference when it exceeds ``atol`` (unless ``raise_on_failure`` is False).

    ``reference``: the torch raw scores of ``items`` computed earlier by the same weights (a run's
    ``predictions/dev.jsonl``; NaN for an item that failed); the model is then not run here.
    """
    from aigc import load

    det = load(bundle_dir, providers="cpu", threads=threads, variant=variant)
    cal = calibration if calibration is not None else det.spec["calibration"]
    got, got_err = det.raw_scores(list(items))
    if reference is None:
        want, want_err = torch_raw_scores(
            model, det.modality, preprocessing, items, input_names, output_kind, tokenizer_file
        )
        ref_name = "torch"
    else:
        want = np.asarray(reference, dtype=np.float64)
        want_err = [None if math.isfinite(w) else "no score in the run's predictions" for w in want]
        ref_name = "run predictions"
    for i in range(len(items)):
        if (got_err[i] is None) != (want_err[i] is None) or (math.isnan(got[i]) != math.isnan(want[i])):
            msg = (
                f"parity ({variant}): item {i} ({_show(items[i])}) failed on one side only: "
                f"bundle error {got_err[i]!r}, torch error {want_err[i]!r}"
            )
            if raise_on_failure:
                raise ParityError(msg)
            return ParityReport(variant, len(items), atol, math.inf, i, _show(items[i]), math.inf, False, ref_name)
    ok = ~np.isnan(got)
    if not ok.any():
        raise ParityError(f"parity ({variant}): none of the {len(items)} items could be scored ({got_err[0]})")
    p_got = np.full(len(items), np.nan)
    p_want = np.full(len(items), np.nan)
    p_got[ok] = apply_calibration(got[ok], cal)
    p_want[ok] = apply_calibration(want[ok], cal)
    diff = np.where(ok, np.abs(p_got - p_want), -1.0)
    worst = int(np.argmax(diff))
    rep = ParityReport(
        variant=variant,
        n=int(ok.sum()),
        atol=atol,
        max_abs_diff=float(diff[worst]),
        worst_index=worst,
        worst_item=_show(items[worst]),
        raw_max_abs_diff=float(np.max(np.abs(got[ok] - want[ok]))),
        ok=bool(diff[worst] <= atol),
        reference=ref_name,
    )
    if not rep.ok and raise_on_failure:
        raise ParityError(
            f"parity ({variant}): |P_bundle - P_torch| = {rep.max_abs_diff:.3g} > {atol:g} on item {worst} "
            f"({rep.worst_item}): bundle P = {p_got[worst]:.6f}, {ref_name} P = {p_want[worst]:.6f} "
            f"(raw {got[worst]:.6f} vs {want[worst]:.6f}); the bundle's preprocessing or graph does not "
            "reproduce the trained model"
        )
    return rep
