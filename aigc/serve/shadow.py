"""Shadow comparison and the score log.

A :class:`ShadowRunner` scores, in a thread of its own, every item that its primary bundle scored, with a
candidate bundle. It is fed after the primary's answers exist, through a bounded buffer that drops (and
counts) work it has no room for, so the answers never wait for the candidate and never change because
of it. Both scores go to the :class:`ScoreLog` (JSONL, rotated by size) with the sha256 of the item, not
its content (unless ``log_content``). ``aigc eval --shadow-log`` joins such a log with labels gathered
later (:mod:`aigc.report.shadow`).
"""

from __future__ import annotations

import base64
import json
import logging
import logging.handlers
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._detector import Detector, Result
from ..metrics import score_correlation
from .batching import Scored
from .metrics import Metrics

__all__ = ["LOG_VERSION", "ScoreLog", "ShadowRunner", "log_row"]

log = logging.getLogger("aigc.serve")
LOG_VERSION = 1


class ScoreLog:
    """Append JSON rows to ``path``, rotated at ``max_bytes`` keeping ``backups`` old files (path.1, ...).
    Thread-safe (the stdlib's RotatingFileHandler locks around each write)."""

    def __init__(self, path: str, max_bytes: int, backups: int) -> None:
        self._h = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._h.setFormatter(logging.Formatter("%(message)s"))

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            rec = logging.LogRecord("aigc.score_log", logging.INFO, "", 0, json.dumps(row, ensure_ascii=False), None, None)
            self._h.handle(rec)

    def close(self) -> None:
        self._h.close()


def _side(det: Detector, sha: str, r: Result | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "bundle_sha256": sha,
        "probability": None if r.error else round(float(r.probability), 6),
        "label": r.label,
        "threshold_name": r.threshold_name,
        "threshold": r.threshold,
        "thresholds": {n: float(t["value"]) for n, t in det.spec["thresholds"].items()},
        "out_of_support": r.out_of_support,
        "error": r.error,
    }


def log_row(bundle: str, primary: tuple[Detector, str], s: Scored, group: str | None, log_content: bool,
            candidate: tuple[Detector, str, Result | None] | None = None, shadow: str | None = None) -> dict[str, Any]:
    """One score-log row: the item's sha256, the primary's (and candidate's) verdict, no content unless asked."""
    row: dict[str, Any] = {"v": LOG_VERSION, "time": round(time.time(), 3), "bundle": bundle, "item_sha256": s.sha256,
                           "group": group, "primary": _side(primary[0], primary[1], s.result)}  # fmt: skip
    if candidate is not None:
        row["candidate"] = _side(candidate[0], candidate[1], candidate[2])
    if shadow is not None:
        row["shadow"] = shadow
    if log_content and s.content is not None:
        if isinstance(s.content, bytes):
            row["content_b64"] = base64.b64encode(s.content).decode("ascii")
        else:
            row["content"] = s.content
    return row


class ShadowRunner:
    """Scores the primary's items with a candidate, off the response path (see the module doc)."""

    def __init__(self, bundle: str, primary: Detector, primary_sha: str, candidate: Detector, candidate_sha: str,
                 metrics: Metrics, capacity: int, score_log: ScoreLog | None, log_content: bool, window: int = 5000) -> None:  # fmt: skip
        if candidate.modality != primary.modality:
            raise ValueError(f"--shadow {bundle}: the candidate scores {candidate.modality}, the primary {primary.modality}")
        self.bundle = bundle
        self.primary, self.primary_sha = primary, primary_sha
        self.candidate, self.candidate_sha = candidate, candidate_sha
        self.metrics = metrics
        self.capacity = capacity
        self.score_log = score_log
        self.log_content = log_content
        self.common = [n for n in primary.spec["thresholds"] if n in candidate.spec["thresholds"]]
        self._buf: deque[tuple[list[Scored], list[str | float], list[str | None]]] = deque()
        self._pending = 0
        self._cv = threading.Condition()
        self._stop = False
        self._pairs: deque[tuple[float, float]] = deque(maxlen=window)
        self._agree: dict[str, deque[bool]] = {n: deque(maxlen=window) for n in self.common}
        self.scored = 0
        self.dropped = 0
        self._corr_defined = False  # for the one log line when the correlation becomes undefined
        self._thread = threading.Thread(target=self._loop, name=f"aigc-shadow-{bundle}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_s: float = 5.0) -> None:
        """Finish queued work for at most ``drain_s`` seconds, then drop (and count) the rest."""
        deadline = time.monotonic() + drain_s
        with self._cv:
            while self._pending and time.monotonic() < deadline:
                self._cv.wait(0.05)
            self._stop = True
            left = list(self._buf)
            self._buf.clear()
            self._cv.notify_all()
        for scored, _, groups in left:
            self._drop(scored, groups)
        self._thread.join(timeout=drain_s)

    def offer(self, scored: list[Scored], thresholds: list[str | float], groups: list[str | None]) -> None:
        """Queue the scored items of a primary batch; drop them (counted, logged) when there is no room."""
        ok = [k for k, s in enumerate(scored) if s.result.error is None]
        if not ok:
            return
        sub = ([scored[k] for k in ok], [thresholds[k] for k in ok], [groups[k] for k in ok])
        with self._cv:
            if self._stop or self._pending + len(ok) > self.capacity:
                room = False
            else:
                room = True
                self._buf.append(sub)
                self._pending += len(ok)
                self._cv.notify_all()
        if not room:
            self._drop(sub[0], sub[2])

    def _drop(self, scored: list[Scored], groups: list[str | None]) -> None:
        self.dropped += len(scored)
        self.metrics.shadow_dropped.labels(bundle=self.bundle).inc(len(scored))
        if self.score_log is not None:
            self.score_log.write([log_row(self.bundle, (self.primary, self.primary_sha), s, g, self.log_content,
                                          (self.candidate, self.candidate_sha, None), shadow="dropped")
                                  for s, g in zip(scored, groups, strict=True)])  # fmt: skip

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._buf and not self._stop:
                    self._cv.wait()
                if not self._buf:
                    return
                work = self._buf.popleft()
            try:
                self._run(*work)
            except Exception:
                log.exception("shadow scoring of %s failed (the answers are not affected)", self.bundle)
            finally:
                with self._cv:
                    self._pending -= len(work[0])
                    self._cv.notify_all()

    def _candidate_threshold(self, thr: str | float) -> str | float:
        if isinstance(thr, str) and thr in self.candidate.spec["thresholds"]:
            return thr
        if isinstance(thr, (int, float)):
            return thr
        return self.candidate.default_threshold

    def _run(self, scored: list[Scored], thresholds: list[str | float], groups: list[str | None]) -> None:
        by_thr: dict[Any, list[int]] = {}
        for k, t in enumerate(thresholds):
            by_thr.setdefault(self._candidate_threshold(t), []).append(k)
        cand: list[Result | None] = [None] * len(scored)
        for thr, idx in by_thr.items():
            rs = self.candidate.score([scored[k].content for k in idx], threshold=thr, groups=[groups[k] for k in idx])
            for k, r in zip(idx, rs, strict=True):
                cand[k] = r
        self._account(scored, cand)
        if self.score_log is not None:
            self.score_log.write([log_row(self.bundle, (self.primary, self.primary_sha), s, g, self.log_content,
                                          (self.candidate, self.candidate_sha, c))
                                  for s, g, c in zip(scored, groups, cand, strict=True)])  # fmt: skip

    def _account(self, scored: list[Scored], cand: list[Result | None]) -> None:
        m = self.metrics
        pt, ct = self.primary.spec["thresholds"], self.candidate.spec["thresholds"]
        n = 0
        for s, c in zip(scored, cand, strict=True):
            if c is None or c.error is not None:
                continue
            n += 1
            p1, p2 = float(s.result.probability), float(c.probability)
            self._pairs.append((p1, p2))
            for name in self.common:  # a label is AI iff P >= the threshold's value (as Detector.score decides)
                self._agree[name].append((p1 >= float(pt[name]["value"])) == (p2 >= float(ct[name]["value"])))
        self.scored += n
        m.shadow_scored.labels(bundle=self.bundle).inc(n)
        for name in self.common:
            if self._agree[name]:
                m.set_finite(m.shadow_agreement, float(np.mean(self._agree[name])), self.bundle, name)
        self._set_correlation()

    def _set_correlation(self) -> None:
        """The correlation gauge: set while defined, withdrawn while not (not NaN, not the last value), with
        one log line each time it stops being defined."""
        defined = self.metrics.set_finite(self.metrics.shadow_corr, self.correlation(), self.bundle)
        if self._corr_defined and not defined:
            log.info("shadow %s: the score correlation is undefined (the window's scores of one side have no "
                     "spread: the same item again and again?); aigc_shadow_score_correlation is withdrawn until "
                     "it is defined again", self.bundle)
        self._corr_defined = defined

    def correlation(self) -> float | None:
        """Pearson correlation of the two P(ai) over the window; None (undefined) with fewer than 3 pairs or
        when one side's scores have no spread (:func:`aigc.metrics.score_correlation`)."""
        if len(self._pairs) < 3:
            return None
        a = np.array(self._pairs)
        return score_correlation(a[:, 0], a[:, 1])

    def report(self) -> dict[str, Any]:
        return {
            "candidate_sha256": self.candidate_sha,
            "candidate_name": self.candidate.spec.get("name"),
            "scored": self.scored,
            "dropped": self.dropped,
            "queued": self._pending,
            "agreement": {n: (float(np.mean(v)) if v else None) for n, v in self._agree.items()},
            "score_correlation": self.correlation(),
        }
