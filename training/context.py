"""Where a training process stands (rank, world, device) and what the loop needs besides the model.

One process or many (``torchrun``: DDP, NCCL on GPUs, gloo on CPU); ``barrier``, ``gather`` and
``broadcast`` are no-ops in a single process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from aigc._image import ImageSpec
from aigc._text import TextSpec
from training.config import Config

__all__ = ["Context", "Dist", "autocast", "barrier", "broadcast", "gather", "init_distributed", "main_decides"]


# ------------------------------------------------------------------------------------------ processes
@dataclass
class Dist:
    """Where this process stands: rank, world size, device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device: str = "auto") -> Dist:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1); pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda:
        dev = torch.device(f"cuda:{local}") if (world > 1 or device in ("auto", "cuda")) else torch.device(device)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(rank, world, local, dev)


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def gather(d: Dist, obj: Any) -> list[Any]:
    if not d.enabled:
        return [obj]
    out: list[Any] = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def broadcast(d: Dist, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not d.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


T = TypeVar("T")


def main_decides(d: Dist, work: Callable[[], T], others: T) -> T:
    """``work()`` on rank 0 (the other ranks start from ``others``), then rank 0's result on every rank; when
    rank 0 refuses (an OSError or ValueError from ``work``), every rank raises that error, instead of the
    others waiting for rank 0 at the next collective."""
    out: Any = others
    if d.main:
        try:
            out = work()
        except (OSError, ValueError) as e:
            out = e
    out = broadcast(d, out)
    if isinstance(out, Exception):
        raise out
    return out


# --------------------------------------------------------------------------------------------- context
@dataclass
class Context:
    """What the loop needs besides the model: config, modality, preprocessing, tokenizer, process."""

    cfg: Config
    modality: str
    dist: Dist
    image_spec: ImageSpec | None = None
    text_spec: TextSpec | None = None
    tokenizer: Any = None  # tokenizers.Tokenizer loaded from the run's tokenizer.json
    companion_tokenizer: Any = None  # the second LM's (tokenizer_b.json), when the text spec has a companion
    output_kind: str = "logits"
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False


def autocast(ctx: Context) -> Any:
    """Mixed precision as the context asks (``amp_dtype``), or a no-op."""
    if ctx.amp_dtype is None:
        return torch.autocast("cpu", enabled=False)
    return torch.autocast(ctx.dist.device.type, dtype=ctx.amp_dtype)
