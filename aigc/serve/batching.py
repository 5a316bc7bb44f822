"""Dynamic batching per bundle: the items of concurrent requests become model batches.

One :class:`Batcher` per bundle owns a queue of requests and one scoring thread. Its collector takes up to
``max_batch`` items (splitting a large request across batches), waiting at most ``max_wait_ms`` for more
when other requests are still arriving, and runs :meth:`aigc.Detector.score` off the event loop; base64
and image decoding happen in that thread too. Each request gets its results back in its own order.
The queue is bounded in items (:class:`QueueFull` -> 503); a request that waits past its timeout is
dropped from the queue (:class:`asyncio.TimeoutError` -> 504).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .._detector import Detector, Result
from .metrics import Metrics

__all__ = ["Batcher", "Item", "QueueFull", "Scored"]

log = logging.getLogger("aigc.serve")


class QueueFull(Exception):
    """The bundle's queue cannot take the request's items now."""


@dataclass
class Item:
    """One item of a request: a text, a base64 string of image bytes, or image bytes (multipart)."""

    payload: str | bytes
    group: str | None = None


@dataclass
class Scored:
    """The runtime's result for an item, with the sha256 of the item's bytes (text: UTF-8)."""

    result: Result
    sha256: str | None
    content: str | bytes | None = None


@dataclass
class _Job:
    items: list[Item]
    threshold: str | float
    future: asyncio.Future[list[Scored]]
    results: list[Scored | None] = field(default_factory=list)
    offset: int = 0  # items already taken into batches
    done: int = 0
    cancelled: bool = False

    def __post_init__(self) -> None:
        self.results = [None] * len(self.items)


class Batcher:
    """Merges the items of concurrent requests for one bundle into model batches (see the module doc).

    ``provenance``: image items also get the runtime's provenance part (``Detector.score(provenance=True)``).
    ``on_scored(scored, thresholds, groups)`` is called in the scoring thread after each batch (drift,
    shadow, score log); it must not raise (errors are logged).
    """

    def __init__(
        self,
        name: str,
        detector: Detector,
        metrics: Metrics,
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 2048,
        batching: bool = True,
        max_image_pixels: int = 40_000_000,
        max_text_chars: int = 100_000,
        on_scored: Callable[[list[Scored], list[str | float], list[str | None]], None] | None = None,
        provenance: bool = False,
        weak_groups: str = "warn",
    ) -> None:
        self.name = name
        self.detector = detector
        self.metrics = metrics
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.batching = batching
        self.max_image_pixels = max_image_pixels
        self.max_text_chars = max_text_chars
        self.on_scored = on_scored
        self.provenance = provenance and detector.modality == "image"
        self.weak_groups = weak_groups
        self.arriving = 0  # requests of this bundle whose body is still being read
        self._queue: deque[_Job] = deque()
        self._queued = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"aigc-score-{name}")

    # -- life -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._collect(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._pool.shutdown(wait=True)

    @property
    def queued(self) -> int:
        """Items waiting for the model."""
        return self._queued

    # -- requests ---------------------------------------------------------------------------------
    async def submit(self, items: list[Item], threshold: str | float, timeout: float) -> list[Scored]:
        """Queue ``items`` and wait for their results (in order). Raises QueueFull at once when the queue
        cannot take them, and asyncio.TimeoutError after ``timeout`` seconds."""
        assert self._wake is not None, "Batcher.start() was not called"
        if self._queued + len(items) > self.max_queue:
            raise QueueFull(f"{self._queued} items queued, the limit is {self.max_queue}")
        job = _Job(items, threshold, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        self._queued += len(items)
        self.metrics.queue_depth.labels(bundle=self.name).set(self._queued)
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout)
        except asyncio.TimeoutError:
            self._cancel(job)
            raise

    def _cancel(self, job: _Job) -> None:
        job.cancelled = True
        if job in self._queue:
            self._queued -= len(job.items) - job.offset
            self._queue.remove(job)
            self.metrics.queue_depth.labels(bundle=self.name).set(self._queued)

    # -- the collector ----------------------------------------------------------------------------
    async def _collect(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.batching:
                await self._fill(loop)
            batch = self._take()
            if not batch:
                continue
            done = await self._score_isolated(loop, batch)
            for (job, start, _), res in done:
                job.results[start : start + len(res)] = res
                job.done += len(res)
                if job.done == len(job.items) and not job.future.done():
                    job.future.set_result([r for r in job.results if r is not None])

    async def _score_isolated(self, loop: asyncio.AbstractEventLoop, batch: list[Any]) -> list[tuple[Any, list[Any]]]:
        """Score the batch; if that raises (a bug, not a bad item: bad items come back as per-item errors),
        score each request's part alone, so that only the request that triggers it fails, not the others
        that shared its batch. Failed requests get the exception; the others' parts are returned."""
        try:
            return list(zip(batch, await loop.run_in_executor(self._pool, self._score, batch), strict=True))
        except Exception as e:
            if len(batch) == 1:
                log.exception("scoring a batch of %s failed", self.name)
                self._fail(batch[0], e)
                return []
            log.warning("scoring a batch of %s failed (%s); scoring its %d parts one by one", self.name, e, len(batch))
        done = []
        for entry in batch:
            try:
                done.append((entry, (await loop.run_in_executor(self._pool, self._score, [entry]))[0]))
            except Exception as e:
                log.exception("scoring a request of %s failed", self.name)
                self._fail(entry, e)
        return done

    @staticmethod
    def _fail(entry: Any, e: Exception) -> None:
        job = entry[0]
        if not job.future.done():
            job.future.set_exception(e)

    async def _fill(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait (at most max_wait) for more items while other requests of this bundle are arriving."""
        assert self._wake is not None
        deadline = loop.time() + self.max_wait
        while self._queued < self.max_batch and self.arriving > 0:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except asyncio.TimeoutError:
                return

    def _take(self) -> list[tuple[_Job, int, int]]:
        """Up to max_batch items from the head of the queue (without batching: the first request whole)."""
        batch: list[tuple[_Job, int, int]] = []
        n = 0
        while self._queue and (n < self.max_batch or not self.batching):
            job = self._queue[0]
            take = len(job.items) - job.offset if not self.batching else min(self.max_batch - n, len(job.items) - job.offset)
            batch.append((job, job.offset, job.offset + take))
            job.offset += take
            n += take
            if job.offset == len(job.items):
                self._queue.popleft()
            if not self.batching:
                break
        self._queued -= n
        self.metrics.queue_depth.labels(bundle=self.name).set(self._queued)
        return batch

    # -- the scoring thread -----------------------------------------------------------------------
    def _score(self, batch: Sequence[tuple[_Job, int, int]]) -> list[list[Scored]]:
        flat = [(job, job.items[i]) for job, s, e in batch for i in range(s, e)]
        prepared = [self._prepare(it.payload) for _, it in flat]
        by_thr: dict[Any, list[int]] = {}
        for k, ((job, _), (_p, _, err)) in enumerate(zip(flat, prepared, strict=True)):
            if err is None:
                by_thr.setdefault(job.threshold, []).append(k)
        results: list[Result | None] = [None] * len(flat)
        n_model = 0
        for thr, idx in by_thr.items():
            scored = self.detector.score([prepared[k][0] for k in idx], threshold=thr, groups=[flat[k][1].group for k in idx],
                                         provenance=self.provenance, weak_groups=self.weak_groups)  # fmt: skip
            n_model += len(idx)
            for k, res in zip(idx, scored, strict=True):
                results[k] = res
        if n_model:
            self.metrics.batch_size.labels(bundle=self.name).observe(n_model)
        out_flat: list[Scored] = []
        for k, (job, _) in enumerate(flat):
            payload, sha, err = prepared[k]
            got = results[k]
            if got is None:  # refused before the model: a Result like the runtime's failed items
                name, value = self.detector.resolve_threshold(job.threshold, flat[k][1].group)
                got = Result(float("nan"), None, name, value, err)
            out_flat.append(Scored(got, sha, payload))
        n_err = sum(s.result.error is not None for s in out_flat)
        self.metrics.items.labels(bundle=self.name, status="ok").inc(len(out_flat) - n_err)
        if n_err:
            self.metrics.items.labels(bundle=self.name, status="error").inc(n_err)
            self.metrics.error("item", n_err)
        if self.on_scored is not None:
            try:
                self.on_scored(out_flat, [job.threshold for job, _ in flat], [it.group for _, it in flat])
            except Exception:
                log.exception("after scoring %s: monitoring failed (the answers are not affected)", self.name)
        out: list[list[Scored]] = []
        pos = 0
        for _, s, e in batch:
            out.append(out_flat[pos : pos + e - s])
            pos += e - s
        return out

    def _prepare(self, payload: str | bytes) -> tuple[Any, str | None, str | None]:
        """(what the detector gets, sha256 of the item's bytes, error or None) for one item."""
        if self.detector.modality == "text":
            if not isinstance(payload, str):
                return None, None, "expected a text (a JSON string)"
            sha = hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()
            if len(payload) > self.max_text_chars:
                return None, sha, f"text has {len(payload)} characters; this service accepts at most {self.max_text_chars}"
            return payload, sha, None
        if isinstance(payload, str):
            try:
                data = _b64decode(payload)
            except ValueError as e:
                return None, None, str(e)
        else:
            data = payload
        sha = hashlib.sha256(data).hexdigest()
        err = self._check_pixels(data)
        return (None, sha, err) if err else (data, sha, None)

    def _check_pixels(self, data: bytes) -> str | None:
        """Refuse an image whose header announces more than max_image_pixels (read before any decoding)."""
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
        except Exception:
            return None  # not an image the header reader knows: the runtime says what is wrong
        if w * h > self.max_image_pixels:
            return f"image of {w}x{h} = {w * h} pixels; this service accepts at most {self.max_image_pixels}"
        return None


def _b64decode(s: str) -> bytes:
    """Strict base64 (standard alphabet, padding required; a ``data:...;base64,`` prefix is allowed)."""
    if s.startswith("data:") and "," in s[:200]:
        s = s.split(",", 1)[1]
    try:
        data = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64 (standard alphabet with padding expected)") from None
    if not data:
        raise ValueError("empty image (0 bytes after base64 decoding)")
    return data
