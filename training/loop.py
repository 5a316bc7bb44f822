"""The training loop: ``train_one_epoch`` steps the optimiser over this rank's batches.

Rank 0 writes the run folder, logs and checkpoints (``training.run``); every rank evaluates its shard of
dev and the scores are gathered (``training.evaluate``). ``--resume`` restores model, optimiser,
scheduler, grad scaler, RNG states, step and the position inside the epoch; augmentation and shuffling
are functions of (seed, epoch, index), so a resumed run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from training.config import Config
from training.context import Context, Dist, autocast, init_distributed
from training.context import gather as _gather  # noqa: F401  (training.lmfeatures imports it from here)
from training.data import DataError
from training.evaluate import detection_metrics, evaluate, score_rows, window_outputs
from training.transforms import ImageTrainTransform, load_image, sample_rng, text_train_batch

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "Context",
    "Dist",
    "build_optimizer",
    "cosine_schedule",
    "detection_metrics",
    "evaluate",
    "init_distributed",
    "score_rows",
    "train_one_epoch",
    "window_outputs",
]


# -------------------------------------------------------------------------------------------- batches
def epoch_order(n: int, epoch: int, seed: int, d: Dist, shuffle: bool = True) -> list[int]:
    """This rank's sample order for one epoch, as ``DistributedSampler`` makes it: one permutation seeded
    by (seed, epoch), padded by wrapping to a multiple of the world size, then every world-th index."""
    order = np.random.default_rng([seed, epoch]).permutation(n).tolist() if shuffle else list(range(n))
    if d.world > 1:
        total = math.ceil(n / d.world) * d.world
        order = (order * (total // max(n, 1) + 1))[:total]
        order = order[d.rank :: d.world]
    return order


def _load_image(row: dict[str, Any], tf: ImageTrainTransform) -> Image.Image:
    """The row's decoded image; a file that cannot be decoded is a DataError naming it."""
    try:
        return load_image(row, tf.spec)
    except Exception as e:  # aigc's decode errors name the problem, not the file
        raise DataError(f"training image {row.get('item')}: {e}") from e


def _image_batch(rows: list[dict[str, Any]], idx: list[int], tf: ImageTrainTransform, seed: int, epoch: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    xs = [tf(_load_image(rows[i], tf), sample_rng(seed, epoch, i)) for i in idx]
    return torch.from_numpy(np.stack(xs)), torch.tensor([rows[i]["label"] for i in idx], dtype=torch.long)


class _ImageTrainSet(torch.utils.data.Dataset):
    def __init__(self, rows: list[dict[str, Any]], tf: ImageTrainTransform, seed: int, epoch: int) -> None:
        self.rows, self.tf, self.seed, self.epoch = rows, tf, seed, epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.tf(_load_image(self.rows[i], self.tf), sample_rng(self.seed, self.epoch, i))
        return torch.from_numpy(x), int(self.rows[i]["label"])


def train_batches(rows: list[dict[str, Any]], ctx: Context, epoch: int, start_batch: int
                  ) -> Iterator[tuple[tuple[torch.Tensor, ...], torch.Tensor]]:
    """This rank's micro-batches of one epoch from ``start_batch`` on: (model inputs, labels)."""
    cfg = ctx.cfg
    bs = cfg.train.batch_size
    order = epoch_order(len(rows), epoch, cfg.train.seed, ctx.dist)
    n_batches = len(order) // bs if len(order) >= bs else 1  # drop the last partial batch (DDP ranks stay in step)
    order = order[start_batch * bs : n_batches * bs]
    if ctx.modality == "image":
        assert ctx.image_spec is not None
        tf = ImageTrainTransform(ctx.image_spec, cfg.data)
        ds = _ImageTrainSet(rows, tf, cfg.train.seed, epoch)
        loader = torch.utils.data.DataLoader(
            ds, batch_size=bs, sampler=order, num_workers=cfg.data.num_workers, drop_last=False,
            pin_memory=ctx.dist.device.type == "cuda",
        )
        for x, y in loader:
            yield (x,), y
        return
    assert ctx.text_spec is not None
    for b in range(0, len(order), bs):
        idx = order[b : b + bs]
        texts = [rows[i]["item"] for i in idx]
        rngs = [sample_rng(cfg.train.seed, epoch, i) for i in idx]
        ids, mask, kept = text_train_batch(ctx.tokenizer, texts, ctx.text_spec, rngs, cfg.data.train_window)
        y = torch.tensor([rows[idx[k]]["label"] for k in kept], dtype=torch.long)
        yield (torch.from_numpy(ids), torch.from_numpy(mask)), y


def n_train_batches(n_rows: int, ctx: Context) -> int:
    per_rank = math.ceil(n_rows / ctx.dist.world) if ctx.dist.world > 1 else n_rows
    bs = ctx.cfg.train.batch_size
    return per_rank // bs if per_rank >= bs else 1


# --------------------------------------------------------------------------------------------- optimiser
def build_optimizer(model: nn.Module, cfg: Config) -> torch.optim.Optimizer | None:
    """AdamW over the trainable parameters; no weight decay on biases and norm weights (1-d tensors)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    if not decay and not no_decay:
        return None
    t = cfg.train
    groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=t.lr, betas=(t.betas[0], t.betas[1]))


def cosine_schedule(total_steps: int, warmup: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """LR multiplier: linear warmup over ``warmup`` steps, then cosine decay to ``min_ratio`` at ``total_steps``."""

    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


# ---------------------------------------------------------------------------------------------- train
@dataclass
class TrainState:
    """Counters that a checkpoint carries so that a resumed run continues where it stopped."""

    epoch: int = 0
    batch: int = 0  # micro-batches of this epoch already consumed by this rank
    step: int = 0  # optimiser steps taken
    best_auroc: float = -math.inf
    best_step: int = -1
    bad_evals: int = 0
    stop: bool = False


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message says at which step."""


def train_one_epoch(
    model: nn.Module,
    rows: list[dict[str, Any]],
    ctx: Context,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    state: TrainState,
    total_steps: int,
    on_step: Callable[[TrainState, dict[str, float]], None],
) -> None:
    """One pass (or the rest of one, after a resume) over this rank's training batches.

    Accumulates ``grad_accum`` micro-batches per optimiser step, clips the gradient norm, steps the
    scheduler, and calls ``on_step(state, stats)`` after every optimiser step (evaluation, checkpoints
    and logging live there). Raises NonFiniteLossError naming the step when the loss is NaN/inf.
    """
    cfg = ctx.cfg.train
    accum = max(1, cfg.grad_accum)
    model.train()
    t0, seen, loss_sum, n_loss = time.perf_counter(), 0, 0.0, 0
    micro = 0
    optimizer.zero_grad(set_to_none=True)
    for inputs, y in train_batches(rows, ctx, state.epoch, state.batch):
        inputs = tuple(t.to(ctx.dist.device, non_blocking=True) for t in inputs)
        y = y.to(ctx.dist.device)
        if ctx.channels_last and ctx.modality == "image":
            inputs = (inputs[0].contiguous(memory_format=torch.channels_last),)
        last_micro = (micro + 1) % accum == 0
        sync = model.no_sync() if (ctx.dist.enabled and hasattr(model, "no_sync") and not last_micro) else _null()
        with sync:
            with autocast(ctx):
                logits = model(*inputs)  # (N, 2)
            loss = F.cross_entropy(logits.float(), y) if y.numel() else logits.sum() * 0.0
            bad = torch.tensor([0.0 if torch.isfinite(loss) else 1.0], device=ctx.dist.device)
            if ctx.dist.enabled:
                dist.all_reduce(bad)
            if bad.item() > 0:
                raise NonFiniteLossError(
                    f"loss is {loss.item()} at step {state.step + 1} (epoch {state.epoch}, batch {state.batch}) "
                    f"on rank {ctx.dist.rank}; the run stopped. Lower train.lr, set train.amp=bf16 or none, or "
                    "check the data of this batch"
                )
            scaled = loss / accum
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        micro += 1
        state.batch += 1
        seen += y.numel()
        loss_sum += float(loss.detach())
        n_loss += 1
        if not last_micro:
            continue
        if scaler is not None:
            scaler.unscale_(optimizer)
        gnorm = torch.nn.utils.clip_grad_norm_(
            [p for p in model.parameters() if p.requires_grad], cfg.clip_grad if cfg.clip_grad > 0 else float("inf")
        )
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        dt = time.perf_counter() - t0
        stats = {
            "loss": loss_sum / max(1, n_loss),
            "lr": float(scheduler.get_last_lr()[0]),
            "grad_norm": float(gnorm),
            "samples_per_s": seen * ctx.dist.world / dt if dt > 0 else 0.0,
            "elapsed_s": dt,
        }
        loss_sum, n_loss = 0.0, 0
        on_step(state, stats)
        if state.stop or (total_steps and state.step >= total_steps):
            return
    state.epoch += 1
    state.batch = 0


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> None:
        return None


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) random states, for a checkpoint."""
    st: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def atomic_write_text(path: Path, text: str, errors: str = "strict") -> None:
    """Write ``text`` (UTF-8, ``errors`` as in :func:`open`) to a temporary file beside ``path``, sync it, then
    move it over ``path`` in one step: a crash leaves the old file whole, never half a new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", errors=errors) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file beside ``path``, then rename: a reader never sees half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_jsonl_line(path: Path, obj: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(obj, default=float) + "\n")
