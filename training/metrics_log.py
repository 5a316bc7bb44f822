"""``RUN_DIR/metrics.jsonl``: the run's log lines (``RunLog``), and on ``--resume`` the log cut back to the
checkpoint the run resumes from (``trim_metrics_log``), so that every step appears once.

A run killed after its last checkpoint may have logged later steps; the resumed run trains and logs those
steps again. Before its first line, ``RunLog(run, d, resume=True)`` rewrites the file keeping:

* a line with a ``step`` and an ``epoch`` (``train``, ``dev``, ``fit_head``) when ``(step, epoch)`` is at or
  before the checkpoint's ``(step, epoch)``, compared in that order. The epoch decides at an epoch's end:
  the dev line of the epoch's last step carries the next epoch and is written just before the end-of-epoch
  checkpoint, so a resume from an earlier checkpoint of that same step (``train.save_every``) drops it and
  logs it again. A line with a ``step`` and no ``epoch`` is compared by step alone;
* a line without a ``step`` of a kind not listed below, in place: such a line (a header) is written once,
  when the run starts, and a resumed run does not write it again.

Always dropped: the end-of-run lines (``final_dev``, ``final_test``, ``ddp``), which every run, resumed or
not, writes again when it ends; and every line with a ``step`` when ``last.pt`` holds no optimiser state (a
model with nothing to train: its resumed run evaluates, fits and logs everything again).

Unreadable lines: a last line that is not JSON and does not end in a newline is the write a crash cut off;
it is dropped with a warning. Any other line that is not a JSON object stops the resume with ValueError
naming the file and the line number: nothing is dropped silently. Blank lines are dropped. The kept lines
are copied as they were; the new file is written beside the old one and moved over it (``os.replace``), so
a crash during the rewrite leaves the old file whole.

TensorBoard (when installed): on resume the writer is opened with ``purge_step`` (the checkpoint's step + 1;
0 when everything is redone), so TensorBoard hides the killed run's events from that step on. Its event
files are not rewritten: an earlier session's end-of-run lines (mirrored at step 0) and a dev line dropped
at the checkpoint's own step (above) stay visible there beside the resumed run's.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch

from training.context import Dist
from training.loop import atomic_write_text, write_jsonl_line

__all__ = ["RunLog", "checkpoint_position", "clean_metrics", "trim_metrics_log"]

log = logging.getLogger("training.run")  # fit's messages, under fit's logger

Position = tuple[int, int]
"""(step, epoch) of a checkpoint."""


class RunLog:
    """``metrics.jsonl`` lines (rank 0), mirrored to TensorBoard when it is installed. With ``resume``, rank 0
    first cuts the log back to ``checkpoints/last.pt`` (see the module's docstring)."""

    def __init__(self, run: Path, d: Dist, resume: bool = False) -> None:
        self.path, self.main = run / "metrics.jsonl", d.main
        purge = _resume_log(run) if self.main and resume else None
        self.tb = _tensorboard(run, purge) if d.main else None

    def __call__(self, obj: dict[str, Any]) -> None:
        if not self.main:
            return
        write_jsonl_line(self.path, clean_metrics(obj))
        if self.tb is not None:
            for k, v in obj.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch") and not math.isnan(float(v)):
                    self.tb.add_scalar(f"{obj.get('kind', 'train')}/{k}", v, obj.get("step", 0))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def clean_metrics(m: dict[str, Any]) -> dict[str, Any]:
    """``m`` with NaN values as None (JSON has no NaN)."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in m.items()}


def _tensorboard(run: Path, purge_step: int | None = None) -> Any:
    """A SummaryWriter on ``run/tensorboard`` (hiding earlier events from ``purge_step`` on), or None when
    TensorBoard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run / "tensorboard"), purge_step=purge_step)


def _resume_log(run: Path) -> int:
    """Cut ``run/metrics.jsonl`` back to ``checkpoints/last.pt``; returns TensorBoard's purge step."""
    pos = checkpoint_position(run / "checkpoints" / "last.pt")
    trim_metrics_log(run / "metrics.jsonl", pos)
    return 0 if pos is None else pos[0] + 1


# ------------------------------------------------------------------------------------------ the trim
def checkpoint_position(last: Path) -> Position | None:
    """The (step, epoch) that the checkpoint ``last`` resumes from; None when it holds no optimiser state
    (a model with nothing to train, whose resumed run does everything again). The tensors are mapped, not
    read."""
    ck = torch.load(last, map_location="cpu", weights_only=False, mmap=True)
    if ck.get("optimizer") is None:
        return None
    st = ck.get("state") or ck
    return int(st["step"]), int(st["epoch"])


def trim_metrics_log(path: Path, pos: Position | None) -> int:
    """Rewrite the log ``path`` keeping the lines at or before ``pos`` (the module's docstring says which);
    returns how many lines were dropped (a torn last line is warned about, not counted). A missing file is
    left missing. Raises ValueError naming the line when a line other than a torn last one is not a JSON
    object; the file is then left as it was."""
    if not path.is_file():
        return 0
    raw = path.read_text(encoding="utf-8", errors="surrogateescape")
    lines = _parse_lines(path, raw)
    kept = [text for text, obj in lines if _keep(obj, pos)]
    new = "".join(f"{text}\n" for text in kept)
    if new != raw:
        atomic_write_text(path, new, errors="surrogateescape")
    if len(kept) < len(lines):
        where = "nothing to resume" if pos is None else f"the checkpoint at step {pos[0]} (epoch {pos[1]})"
        log.info("--resume: %s: dropped %d lines logged after %s; the resumed run logs them again", path,
                 len(lines) - len(kept), where)
    return len(lines) - len(kept)


def _parse_lines(path: Path, raw: str) -> list[tuple[str, dict[str, Any]]]:
    """Each non-blank line of ``raw`` (the text of ``path``) with its JSON object; a torn last line (no
    newline, not JSON) is left out with a warning, any other line that is not a JSON object raises."""
    pieces = raw.split("\n")
    out: list[tuple[str, dict[str, Any]]] = []
    for no, text in enumerate(pieces, 1):
        if not text.strip():
            continue
        try:
            obj: Any = json.loads(text)
            why = "" if isinstance(obj, dict) else f"a JSON {type(obj).__name__}, not an object"
        except ValueError as e:
            why = f"not JSON: {e}"
        if not why:
            out.append((text, obj))
        elif no == len(pieces):  # the last piece has no newline after it: the write a crash cut off
            log.warning("--resume: %s: dropped its last line %d, cut off by the crash (%d characters, %s)",
                        path, no, len(text), why)
        else:
            raise ValueError(f"{path} line {no} is {why}; --resume keeps only the lines logged up to the "
                             "checkpoint and cannot place this one: fix or delete it, then resume again")
    return out


def _as_int(v: Any) -> int | None:
    """``v`` when it is an integer (not a bool), else None."""
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _keep(obj: dict[str, Any], pos: Position | None) -> bool:
    """Whether a resume from ``pos`` keeps this line (the module's docstring gives the rule)."""
    kind = str(obj.get("kind", ""))
    if kind == "ddp" or kind.startswith("final_"):
        return False
    step, epoch = _as_int(obj.get("step")), _as_int(obj.get("epoch"))
    if step is None:
        return True
    if pos is None:
        return False
    return step <= pos[0] if epoch is None else (step, epoch) <= pos
