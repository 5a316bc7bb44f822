"""The model passes behind :class:`aigc.Detector`: how a list of images or texts becomes one raw score per item.

:func:`run_images` decodes images on a thread pool while earlier crops are scored, batches the crops and pools
each image's crop scores; :func:`run_texts` splits texts into token windows, batches the windows by a token
budget and pools each text's window scores. Both fill one :class:`aigc._result._Out` per item (raw score,
error, warnings, and the item's meta used for support checks and slices) and run the model through
``Detector._score_batch``, which isolates an item that fails inside a batch. Calibration and thresholds stay
with the Detector.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from ._image import ImageDecodeError
from ._jpeg import prepare_image
from ._result import _Out
from ._text import (
    batches_by_token_budget,
    dominant_script,
    encode_windows,
    flatten_windows,
    pool_scores,
    window_feeds,
    window_lengths,
)

if TYPE_CHECKING:
    from ._detector import Detector

__all__ = ["run_images", "run_texts"]


def run_images(det: Detector, items: Sequence[Any], progress: Callable[[int], None] | None) -> list[_Out]:
    """One :class:`_Out` per image: decoded on ``det.workers`` threads (a few batches ahead), each crop scored in
    batches of ``det.batch_size``, an item's crop scores pooled; its meta (size, format, JPEG quality) and
    warnings come from the decode. ``progress`` gets the number of items finished."""
    assert det.image_spec is not None
    spec = det.image_spec
    outs = [_Out() for _ in items]

    def prep(i: int) -> tuple[int, list[np.ndarray]]:
        try:
            pi = prepare_image(items[i], spec)
        except ImageDecodeError as e:
            outs[i].error = str(e)
            return i, []
        except Exception as e:  # never let one item take the batch down
            outs[i].error = f"cannot read image ({type(e).__name__}: {e})"
            return i, []
        outs[i].meta = {"width": pi.width, "height": pi.height, "format": pi.format, "jpeg_quality": pi.jpeg_quality}
        outs[i].warnings.extend(pi.warnings)
        if pi.width < 8 or pi.height < 8:
            outs[i].warnings.append(f"tiny image ({pi.width}x{pi.height}): padded to {spec.size[1]}x{spec.size[0]}, score is unreliable")
        return i, pi.arrays

    bs = det.batch_size
    crop_scores: dict[int, list[float]] = {}
    with ThreadPoolExecutor(max_workers=det.workers, thread_name_prefix="aigc-decode") as pool:
        pending: deque[Future[tuple[int, list[np.ndarray]]]] = deque()
        it = iter(range(len(items)))
        prefetch = bs * 3

        def fill() -> None:
            while len(pending) < prefetch:
                i = next(it, None)
                if i is None:
                    return
                pending.append(pool.submit(prep, i))

        def flush(owner: list[int], arrs: list[np.ndarray]) -> None:
            x = np.stack(arrs).astype(det._input_dtype, copy=False)
            sub = [_Out() for _ in owner]
            det._score_batch({det._input_names[0]: x}, list(range(len(owner))), sub)
            for o, i in zip(sub, owner, strict=True):
                crop_scores.setdefault(i, []).append(o.score)
                if o.error and not outs[i].error:
                    outs[i].error = o.error

        fill()
        batch_own: list[int] = []
        batch_arr: list[np.ndarray] = []
        finished: list[int] = []  # items whose crops are all in batches not yet scored
        while pending:
            i, arrs = pending.popleft().result()
            fill()
            if not arrs and progress:
                progress(1)
            for a in arrs:
                batch_own.append(i)
                batch_arr.append(a)
                if len(batch_arr) == bs:
                    flush(batch_own, batch_arr)
                    batch_own, batch_arr = [], []
            if arrs:
                finished.append(i)
            if batch_arr and not pending:
                flush(batch_own, batch_arr)
                batch_own, batch_arr = [], []
            if progress and finished and not batch_arr:
                progress(len(finished))
                finished = []
    for i, scores in crop_scores.items():
        if not outs[i].error:
            outs[i].score = scores[0] if len(scores) == 1 else pool_scores(np.asarray(scores), spec.pooling)
    return outs


def run_texts(det: Detector, items: Sequence[Any], progress: Callable[[int], None] | None) -> list[_Out]:
    """One :class:`_Out` per text: split into windows (and the companion tokenizer's windows), windows batched
    by the token budget, each text's window scores pooled; its meta (tokens, characters, script) and warnings
    come from the tokenization. ``progress`` gets the number of texts finished."""
    assert det.text_spec is not None
    spec = det.text_spec
    outs = [_Out() for _ in items]
    encoded = encode_windows(det.tokenizer, items, spec, det.companion_tokenizer)
    lexicon = ((det.spec.get("support") or {}).get("text") or {}).get("lexicon")  # support v2 (aigc._lexicon)
    if lexicon:
        from ._support import lexicon_meta
    for i, enc in enumerate(encoded):
        if isinstance(enc, str):
            outs[i].error = enc
            continue
        text = items[i]
        outs[i].meta = {"n_tokens": enc.n_tokens, "n_chars": len(text), "script": dominant_script(text)}
        if lexicon:
            outs[i].meta.update(lexicon_meta(text, lexicon))
        outs[i].warnings.extend(enc.warnings)
    flat, flat_b, per = flatten_windows(encoded)
    owner = [i for i, rows in per.items() for _ in rows]  # the text of each window, in flat's order
    if progress:
        progress(sum(1 for o in outs if o.error))
    win_scores = np.full(len(flat), np.nan)
    remaining = {i: 0 for i in owner}
    for i in owner:
        remaining[i] += 1
    lengths = window_lengths(flat, flat_b)
    use_tt = "token_type_ids" in det._input_names
    for b in batches_by_token_budget(lengths, det._batch_tokens, det.batch_size):
        feeds = window_feeds(spec, [flat[j] for j in b], [flat_b[j] for j in b] if flat_b else None)
        if use_tt:
            feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
        sub = [_Out() for _ in b]
        det._score_batch(feeds, list(range(len(b))), sub)
        done = 0
        for k, j in enumerate(b):
            win_scores[j] = sub[k].score
            i = owner[j]
            if sub[k].error and not outs[i].error:
                outs[i].error = sub[k].error
            remaining[i] -= 1
            done += remaining[i] == 0
        if progress and done:
            progress(done)
    by_item: dict[int, list[float]] = {}
    for j, i in enumerate(owner):
        by_item.setdefault(i, []).append(win_scores[j])
    for i, ws in by_item.items():
        if outs[i].error:
            continue
        arr = np.asarray(ws)
        outs[i].score = pool_scores(arr, spec.pooling)
    return outs
