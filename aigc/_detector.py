"""The Detector: batched scoring of images or texts with a bundle, calibrated, no torch.

The model passes that turn items into raw scores (image decoding and crops, text windows) are
:mod:`aigc._model_passes`; this module holds the bundle checks, the model call, calibration and thresholds.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ._bundle import Bundle, BundleError, forced_note, open_bundle, refused_note, spec_for_variant
from ._calibration import apply_calibration
from ._image import ImageSpec
from ._int8_cpu import cpu_flags, int8_saturation_warning
from ._model_passes import run_images, run_texts
from ._printable import printable
from ._result import Result, _Out
from ._session import create_session
from ._text import TextSpec, lm_token_budget, load_tokenizer
from ._thresholds import resolve_threshold, weak_group_notes
from .provenance import ProvenanceOptions, attach_provenance, start_reading

__all__ = ["Detector", "Result", "load"]

WEAK_GROUP_MODES = ("warn", "refuse")  # Detector.score's weak_groups

log = logging.getLogger("aigc")

_ORT_DTYPES = {"tensor(float)": "float32", "tensor(int64)": "int64", "tensor(float16)": "float16", "tensor(int32)": "int32"}


def load(
    path: str | os.PathLike[str],
    providers: Sequence[str] | str | None = None,
    threads: int | None = None,
    variant: str = "fp32",
    allow_fallback: bool = False,
    batch_size: int = 32,
    max_tokens: int = 16384,
    workers: int | None = None,
) -> Detector:
    """Open and validate a bundle (folder or .zip) and create its ONNX Runtime session.

    ``providers``: None picks CUDA when available, else CPU; names like "cuda"/"cpu" or full ORT names.
    Asking for a provider that is absent raises unless ``allow_fallback``. ``threads``: intra-op threads
    (None: ORT default). ``variant``: "fp32", "int8" or "fp16", as the bundle offers. ``batch_size``:
    items (images) or windows (text) per model call; ``max_tokens``: the token budget of a text batch
    (count x longest window). ``workers``: image decode threads (default min(4, cpu count)).
    """
    bundle = open_bundle(path)
    return Detector(bundle, providers, threads, variant, allow_fallback, batch_size, max_tokens, workers)


class Detector:
    """Scores items with one bundle. Create with :func:`aigc.load`. Thread-safe for concurrent calls."""

    def __init__(
        self,
        bundle: Bundle,
        providers: Sequence[str] | str | None = None,
        threads: int | None = None,
        variant: str = "fp32",
        allow_fallback: bool = False,
        batch_size: int = 32,
        max_tokens: int = 16384,
        workers: int | None = None,
        session: Any = None,
    ) -> None:
        """``session``: an object with ONNX Runtime's ``InferenceSession`` interface (``run``, ``get_inputs``,
        ``get_outputs``, ``get_providers``) to run the model instead of a local one (e.g. a Triton client);
        everything else (preprocessing, calibration, thresholds) stays this class's."""
        spec = bundle.spec
        variants = spec["model"]["variants"]
        if variant not in variants:  # with the reason where export refused it (--drop-refused)
            why = f"no {variant!r} variant in this bundle (it has {sorted(variants)}){refused_note(spec, variant)}"
            raise BundleError(f"model.variants: {why}")
        if batch_size < 1:
            raise ValueError(f"batch_size: found {batch_size}, expected >= 1")
        self.bundle = bundle
        # the variant's own calibration and thresholds where the bundle has them (v3), else the bundle's
        self.spec: dict[str, Any] = spec_for_variant(spec, variant)
        warning = int8_saturation_warning(spec, variant, cpu_flags()) if session is None else None
        for w in (warning, forced_note(spec, variant)):
            if w:
                log.warning("%s", printable(w))  # quotes the bundle's name and forced_reason
        self.modality: str = spec["modality"]
        self.labels: list[str] = list(spec["labels"])
        self.variant = variant
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        # tokens per text batch: max_tokens, lowered for an LM graph so its logits stay bounded
        self._batch_tokens = lm_token_budget(max_tokens, spec["model"].get("logits_per_token"))
        self.threads = threads
        self.session = session if session is not None else create_session(
            bundle.path(variants[variant]), providers, threads, allow_fallback)
        self.providers: list[str] = list(self.session.get_providers())
        self._check_graph()
        self._input_names = [x["name"] for x in spec["model"]["inputs"]]
        self._output_name: str = spec["model"]["outputs"][0]["name"]
        self._output_kind: str = spec["model"]["output_kind"]
        pre = spec["preprocessing"]
        if self.modality == "image":
            self.image_spec: ImageSpec | None = ImageSpec.from_dict(pre)
            self.text_spec: TextSpec | None = None
            self.tokenizer = None
            self.companion_tokenizer = None
            self._input_dtype = np.float16 if self._ort_input_types[self._input_names[0]] == "float16" else np.float32
        else:
            self.image_spec = None
            try:
                self.text_spec = TextSpec.from_dict(pre)
            except ValueError as e:
                raise BundleError(str(e)) from None
            try:
                self.tokenizer = load_tokenizer(bundle.path(self.text_spec.tokenizer))
            except Exception as e:
                raise BundleError(f"preprocessing.tokenizer: cannot load {self.text_spec.tokenizer!r} ({e})") from None
            self.companion_tokenizer = None
            if self.text_spec.companion is not None:
                name = self.text_spec.companion.tokenizer
                try:
                    self.companion_tokenizer = load_tokenizer(bundle.path(name))
                except Exception as e:
                    raise BundleError(f"preprocessing.companion.tokenizer: cannot load {name!r} ({e})") from None
        self.workers = workers if workers is not None else min(4, os.cpu_count() or 1)

    # -- validation -------------------------------------------------------------------------------
    def _check_graph(self) -> None:
        spec_in = {x["name"]: x for x in self.spec["model"]["inputs"]}
        got_in = {i.name: i for i in self.session.get_inputs()}
        if set(spec_in) != set(got_in):
            raise BundleError(f"model.inputs: the ONNX graph has inputs {sorted(got_in)}, bundle.json says {sorted(spec_in)}")
        for name, x in spec_in.items():
            rank = len(got_in[name].shape)
            if rank != x["rank"]:
                raise BundleError(f"model.inputs.{name}.rank: the ONNX graph has rank {rank}, bundle.json says {x['rank']}")
        self._ort_input_types = {n: _ORT_DTYPES.get(i.type, i.type) for n, i in got_in.items()}
        outs = {o.name: o for o in self.session.get_outputs()}
        first = self.spec["model"]["outputs"][0]
        if first["name"] not in outs:
            raise BundleError(f"model.outputs[0].name: {first['name']!r} is not an output of the ONNX graph (it has {sorted(outs)})")
        rank = len(outs[first["name"]].shape)
        if rank != first["rank"]:
            raise BundleError(f"model.outputs[0].rank: the ONNX graph has rank {rank}, bundle.json says {first['rank']}")

    # -- raw scores ---------------------------------------------------------------------------------
    def _raw_from_output(self, out: np.ndarray) -> np.ndarray:
        out = np.asarray(out, dtype=np.float64)
        if self._output_kind == "logits":
            return out[:, 1] - out[:, 0]
        return out.reshape(-1)

    def _score_batch(self, feeds: dict[str, np.ndarray], idx: list[int], outs: list[_Out]) -> np.ndarray | None:
        try:
            raw = self._raw_from_output(self.session.run([self._output_name], feeds)[0])
        except Exception as e:
            if len(idx) == 1:
                outs[idx[0]].error = f"model failed on this item ({type(e).__name__}: {e})"
                return None
            # isolate the failing item: score one by one
            log.warning("model failed on a batch of %d; retrying one by one", len(idx))
            res = np.full(len(idx), np.nan)
            for k, i in enumerate(idx):
                one = {n: v[k : k + 1] for n, v in feeds.items()}
                r = self._score_batch(one, [i], outs)
                if r is not None:
                    res[k] = r[0]
            return res
        for k, i in enumerate(idx):
            outs[i].score = float(raw[k])
        return raw

    def _run(self, items: Sequence[Any], progress: Callable[[int], None] | None = None) -> list[_Out]:
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            items = list(items) if not isinstance(items, (str, bytes)) else [items]
        outs = run_images(self, items, progress) if self.modality == "image" else run_texts(self, items, progress)
        for o in outs:
            if o.error is None and not math.isfinite(o.score):
                o.error = "the model gave no finite score for this item (for a text: too few tokens to score?)"
                o.score = float("nan")
        return outs

    # -- public API -----------------------------------------------------------------------------------
    def raw_scores(self, items: Sequence[Any]) -> tuple[np.ndarray, list[str | None]]:
        """Uncalibrated raw scores (n,) (log-odds for logit models, pooled over text windows) and the
        per-item errors (None when scored). Failed items score NaN. Export calibrates on these."""
        scores, errors, _ = self.raw_scores_with_meta(items)
        return scores, errors

    def raw_scores_with_meta(self, items: Sequence[Any]) -> tuple[np.ndarray, list[str | None], list[dict[str, Any]]]:
        """:meth:`raw_scores` plus each item's meta (see :meth:`meta`) from the same single pass."""
        outs = self._run(items)
        return np.array([o.score for o in outs], dtype=np.float64), [o.error for o in outs], [o.meta for o in outs]

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Raw scores -> calibrated P(ai) by the bundle's calibration (NaN stays NaN)."""
        raw = np.asarray(raw, dtype=np.float64)
        p = np.full(raw.shape, np.nan)
        ok = ~np.isnan(raw)
        if ok.any():
            p[ok] = apply_calibration(raw[ok], self.spec["calibration"])
        return p

    def predict_proba(self, items: Sequence[Any]) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): column 0 P(human), column 1 P(ai). NaN rows for failed items."""
        raw, _ = self.raw_scores(items)
        p = self.calibrate(raw)
        return np.stack([1.0 - p, p], axis=1)

    def meta(self, items: Sequence[Any]) -> list[dict[str, Any]]:
        """Per-item facts used for support checks and slices (text: n_tokens, n_chars, script; image:
        width, height, format, jpeg_quality). Runs the model too; prefer :meth:`score`, which returns both."""
        return [o.meta for o in self._run(items)]

    @property
    def default_threshold(self) -> str:
        """``fpr@1%`` when the bundle has it, else its named threshold with the lowest target FPR."""
        ts = self.spec["thresholds"]
        if "fpr@1%" in ts:
            return "fpr@1%"
        with_target = [(t.get("target_fpr"), n) for n, t in ts.items() if isinstance(t.get("target_fpr"), (int, float))]
        return min(with_target)[1] if with_target else next(iter(ts))

    def resolve_threshold(self, threshold: str | float, group: str | None = None) -> tuple[str, float]:
        """A threshold name (``fpr@1%``, ``balanced``, ...) or a probability -> (name, value).

        With ``group`` and group thresholds in the bundle, the group's own threshold of that name wins.
        """
        return resolve_threshold(self.spec, threshold, group)

    def score(
        self,
        items: Sequence[Any],
        threshold: str | float | None = None,
        groups: Sequence[str | None] | None = None,
        progress: Callable[[int], None] | None = None,
        provenance: bool | ProvenanceOptions = False,
        weak_groups: str = "warn",
    ) -> list[Result]:
        """Score items and apply a named threshold (or a probability); ``None`` means the bundle's own
        default (:attr:`default_threshold`, as ``aigc score`` uses). ``groups`` (one per item, or None)
        selects per-group thresholds where the bundle has them. One bad item never fails the call: it
        comes back with its ``error`` set. ``progress`` is called with the number of items finished.
        ``provenance`` (True or options): image items given as paths or bytes also get ``Result.provenance``;
        the policy is the options', else the bundle's ``provenance_policy``, else ``declared_ai_first``.
        ``weak_groups``: what an item of a group the bundle marks weak (its calibration AUROC under 0.75) gets:
        ``"warn"`` its label and a warning, ``"refuse"`` no label nor probability, its ``error`` saying why."""
        if weak_groups not in WEAK_GROUP_MODES:
            raise ValueError(f"weak_groups: found {weak_groups!r}, expected one of {list(WEAK_GROUP_MODES)}")
        if groups is not None and len(groups) != len(items):
            raise ValueError(f"groups: found {len(groups)} values for {len(items)} items")
        if threshold is None:
            threshold = self.default_threshold
        default = self.resolve_threshold(threshold)
        prov = start_reading(items, provenance) if provenance and self.modality == "image" and isinstance(items, list) else None
        outs = self._run(items, progress)
        p = self.calibrate(np.array([o.score for o in outs]))
        support: dict[str, Any] = self.spec.get("support") or {}
        check = _support_checker() if support else None
        weak = weak_group_notes(self.spec) if groups is not None else {}
        results: list[Result] = []
        for i, o in enumerate(outs):
            name, thr = default if groups is None or groups[i] is None else self.resolve_threshold(threshold, groups[i])
            if o.error is not None or math.isnan(p[i]):
                err = o.error or "model returned NaN"
                results.append(Result(float("nan"), None, name, thr, err, False, [], o.warnings, o.meta))
                continue
            note = weak.get(str(groups[i])) if groups is not None and groups[i] is not None else None
            if note and weak_groups == "refuse":
                err = f"{note}; not labelled (weak groups refused)"
                results.append(Result(float("nan"), None, name, thr, err, False, [], o.warnings, o.meta))
                continue
            reasons = check(o.meta, support) if check else []
            label = self.labels[1] if p[i] >= thr else self.labels[0]
            warnings = [*o.warnings, note] if note else o.warnings
            results.append(Result(float(p[i]), label, name, thr, None, bool(reasons), reasons, warnings, o.meta))
        if provenance and self.modality == "image":
            attach_provenance(results, prov or items, provenance, self.labels, self.spec.get("provenance_policy"))
        return results

    def iter_score(
        self,
        items: Iterable[Any],
        threshold: str | float | None = None,
        groups: Iterable[str | None] | None = None,
        chunk_size: int = 512,
        progress: Callable[[int], None] | None = None,
        provenance: bool | ProvenanceOptions = False,
        weak_groups: str = "warn",
    ) -> Iterator[Result]:
        """Stream results for an iterable of any length with bounded memory (``chunk_size`` items at a time);
        ``threshold=None`` means the bundle's default, as in :meth:`score`."""
        it = iter(items)
        git = iter(groups) if groups is not None else None
        while True:
            chunk = [x for _, x in zip(range(chunk_size), it, strict=False)]
            if not chunk:
                return
            g = [next(git) for _ in chunk] if git is not None else None
            yield from self.score(chunk, threshold, g, progress, provenance, weak_groups)


def _support_checker() -> Callable[[dict[str, Any], dict[str, Any]], list[str]] | None:
    try:
        from ._support import check_support
    except ImportError:  # pragma: no cover - support checks arrive with export
        return None
    return check_support
