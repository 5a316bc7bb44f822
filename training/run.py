"""``fit``: a config in, a trained run folder out (its layout: ``training.run_folder``; which ``--out`` it may
write into and what a ``--resume`` may change: ``training.run_guard``).

``fit`` reads top to bottom: open the run folder, make the splits and the model, write what export
needs, then either fit nothing (a zero-shot model; a closed-form head) or train, and finally score dev
and test once with the best weights into ``predictions/``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from aigc._text import lm_token_budget
from training.config import Config
from training.context import Context, Dist, barrier, broadcast, gather, init_distributed, main_decides
from training.data import data_fingerprint, make_splits
from training.evaluate import detection_metrics, evaluate, logits_per_token, progress_label, sliced_auroc
from training.frozen import load_model_state, slim_state
from training.loop import (
    TrainState,
    atomic_save,
    build_optimizer,
    cosine_schedule,
    n_train_batches,
    rng_state,
    set_rng_state,
    train_one_epoch,
)
from training.metrics_log import RunLog, clean_metrics
from training.registry import create_model, get_entry
from training.run_folder import (
    LoadedRun,
    image_spec_for,
    load_run,
    read_split,
    runtime_companion_tokenizer,
    runtime_tokenizer,
    save_tokenizer_and_config,
    text_spec_for,
    write_predictions,
    write_run_info,
    write_splits,
)
from training.run_guard import open_run_folder, prepare_run_folder, record_resume, write_config

__all__ = ["LoadedRun", "fit", "load_run", "make_context", "read_split"]

log = logging.getLogger(__name__)

Splits = dict[str, list[dict[str, Any]]]


class _Interrupted(Exception):
    """Raised by tests (``_interrupt_at``) to simulate a run killed after a checkpoint."""


# ------------------------------------------------------------------------------------------------ fit
def fit(cfg: Config, run_dir: str | Path | None = None, resume: bool = False, _interrupt_at: int = 0, *,
        overwrite: bool = False, config_path: str | Path | None = None) -> Path:
    """Train ``cfg`` into a run folder and return its path (the same on every rank).

    A new run goes into a new or empty folder; ``overwrite`` lets it replace a run folder written by an
    earlier ``fit`` (nothing else), and no run writes into a folder holding ``config_path`` (the config
    file read) or its data. With ``resume``, ``run_dir/checkpoints/last.pt`` is loaded and training
    continues exactly where it stopped (metrics.jsonl is first cut back to that checkpoint's step:
    ``training.metrics_log``); the data must have the same fingerprint and the config may differ
    from the run's config.yaml only in ``RESUME_MAY_CHANGE`` (the new values are recorded). A model without
    trainable parameters (zero-shot) is not optimised: it is evaluated and saved. ``_interrupt_at`` (tests)
    raises after that step's checkpoint, as a kill would.
    """
    d = init_distributed(cfg.train.device)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    run, modality, clear, changes = open_run_folder(cfg, run_dir, resume, overwrite, config_path, d)
    _seed_all(cfg.train.seed)
    splits = make_splits(cfg.data, modality)
    fingerprint = data_fingerprint(splits)
    model = create_model(cfg.model)
    _write_run_start(run, cfg, splits, fingerprint, model, resume, clear, changes, d)
    ctx, use_scaler = make_context(run, cfg, model, modality, d)
    write_run_info(run, cfg, ctx, splits, fingerprint, model, changes if resume else None)
    run_log = RunLog(run, d, resume)
    optimizer = build_optimizer(model, cfg)
    if optimizer is None:
        dev_scores = _fit_without_optimiser(model, splits, ctx, run, run_log)
    else:
        dev_scores = _train(model, optimizer, splits, ctx, run, run_log, resume, use_scaler, _interrupt_at)
    _finish(model, run, splits, ctx, run_log, dev_scores)
    run_log.close()
    return run


# ------------------------------------------------------------------------------------------- set-up
def _write_run_start(run: Path, cfg: Config, splits: Splits, fingerprint: str, model: nn.Module, resume: bool,
                     clear: bool, changes: dict[str, list[Any]], d: Dist) -> None:
    """Rank 0: the marker, config.yaml, the splits and the tokenizer (a new run, into a folder cleared
    first when ``clear``), or check the data fingerprint and record ``changes`` in config.yaml (resume).
    When rank 0 refuses (data that differ from the interrupted run's, a folder it cannot write), every rank
    raises its error (``main_decides``)."""

    def start() -> None:
        prepare_run_folder(run, clear)
        if not resume:
            (run / "metrics.jsonl").unlink(missing_ok=True)
            write_config(run, cfg)
            write_splits(run, splits)
            save_tokenizer_and_config(run, model)
        else:
            record_resume(run, cfg, fingerprint, changes)

    main_decides(d, start, None)


def make_context(run: Path, cfg: Config, model: nn.Module, modality: str, d: Dist) -> tuple[Context, bool]:
    """The loop's context (preprocessing spec, tokenizer, precision) and whether a grad scaler is needed;
    moves ``model`` to the device. Public for scripts that score more texts with a finished run's model exactly as
    its evaluation did (``bench/score_run_texts.py``); ``cfg.eval.max_tokens`` may be lowered to the LM budget."""
    output_kind = str(getattr(model, "output_kind", get_entry(cfg.model.name).output_kind))
    ctx = Context(cfg, modality, d, output_kind=output_kind)
    if modality == "image":
        ctx.image_spec = image_spec_for(model, cfg)
    else:
        ctx.text_spec = text_spec_for(model, cfg)
        ctx.tokenizer = runtime_tokenizer(run, model)
        if ctx.text_spec.companion is not None:
            ctx.companion_tokenizer = runtime_companion_tokenizer(run, model)
    lpt = logits_per_token(model)
    bounded = lm_token_budget(cfg.eval.max_tokens, lpt)
    if bounded < cfg.eval.max_tokens:  # as the runtime does: an LM batch holds (tokens x vocabulary) logits
        log.info("eval.max_tokens %d -> %d: the model holds %d logits per token", cfg.eval.max_tokens, bounded, lpt)
        cfg.eval.max_tokens = bounded
    ctx.amp_dtype, use_scaler = _resolve_device_amp(cfg, d)
    ctx.channels_last = modality == "image" and d.device.type == "cuda" and cfg.train.channels_last
    model.to(d.device)
    if ctx.channels_last:
        model.to(memory_format=torch.channels_last)
    return ctx, use_scaler


def _resolve_device_amp(cfg: Config, d: Dist) -> tuple[torch.dtype | None, bool]:
    if d.device.type != "cuda" or cfg.train.amp == "none":
        return None, False
    amp = cfg.train.amp
    if amp == "auto":
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if amp not in ("bf16", "fp16"):
        raise ValueError(f"train.amp: found {cfg.train.amp!r}, expected auto|bf16|fp16|none")
    return (torch.bfloat16 if amp == "bf16" else torch.float16), amp == "fp16"


def _seed_all(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------- nothing to train
def _fit_without_optimiser(model: nn.Module, splits: Splits, ctx: Context, run: Path, run_log: RunLog
                           ) -> np.ndarray:
    """A model with no trainable parameters: fit its closed-form head if it has one (zeroshot:features),
    score dev once, save the weights as both checkpoints (without the frozen LMs: ``training.frozen``);
    returns the dev scores."""
    if hasattr(model, "fit_head"):
        from training.lmfeatures import fit_head_on_split

        fit_head_on_split(model, splits["train"], ctx, run_log, run)
    else:
        log.info("%s has no trainable parameters: nothing to fit; evaluating and saving", ctx.cfg.model.name)
    m, scores = evaluate(model, splits["dev"], ctx, progress_label(ctx, "scoring the dev split"))
    run_log({"kind": "dev", "step": 0, "epoch": 0, **m})
    mc = ctx.cfg.model
    source = (f"model.backbone={mc.backbone}" + (f", model.reference_model={mc.reference_model}" if mc.reference_model else "")
              + (f", model.companion_model={mc.companion_model}" if mc.companion_model else ""))
    ck = {**slim_state(model, source), "step": 0, "epoch": 0, "metrics": m}  # the frozen LMs are not copied
    if ctx.dist.main:
        atomic_save(ck, run / "checkpoints" / "best.pt")
        atomic_save({**ck, "state": dataclasses.asdict(TrainState())}, run / "checkpoints" / "last.pt")
    return scores


# ------------------------------------------------------------------------------------------- training
@dataclass
class _Trainer:
    """The optimiser's companions and the checkpoints: what ``on_step`` and the epoch loop share."""

    model: nn.Module  # the unwrapped model (DDP wraps it for the forward pass only)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler | None
    state: TrainState
    run: Path
    ctx: Context
    run_log: RunLog
    best_dev_scores: np.ndarray | None = None  # dev scores of the weights in best.pt (scored this session)

    def save_last(self) -> None:
        d = self.ctx.dist
        rngs = gather(d, rng_state())
        if d.main:
            atomic_save({
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "rng": rngs,
                "state": dataclasses.asdict(self.state),
                "world_size": d.world,
                "step": self.state.step,
                "epoch": self.state.epoch,
            }, self.run / "checkpoints" / "last.pt")
        barrier(d)

    def evaluate_dev(self, dev: list[dict[str, Any]]) -> None:
        """Score dev; keep the weights (best.pt) and the scores when AUROC improves; count toward early stop."""
        st, cfg = self.state, self.ctx.cfg
        m, scores = evaluate(self.model, dev, self.ctx)
        self.model.train()
        self.run_log({"kind": "dev", "step": st.step, "epoch": st.epoch, **m})
        score = m["auroc"] if not math.isnan(m["auroc"]) else -m.get("loss", 0.0)
        if score > st.best_auroc or st.best_step < 0:
            st.best_auroc, st.best_step, st.bad_evals = score, st.step, 0
            self.best_dev_scores = scores
            if self.ctx.dist.main:
                atomic_save({"model": self.model.state_dict(), "step": st.step, "epoch": st.epoch,
                             "metrics": clean_metrics(m)}, self.run / "checkpoints" / "best.pt")
        else:
            st.bad_evals += 1
            if cfg.train.early_stop and st.bad_evals >= cfg.train.early_stop:
                log.info("early stop at step %d: dev AUROC has not improved for %d evaluations",
                         st.step, st.bad_evals)
                st.stop = True


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, splits: Splits, ctx: Context, run: Path,
           run_log: RunLog, resume: bool, use_scaler: bool, interrupt_at: int) -> np.ndarray | None:
    """Epochs of ``train_one_epoch`` with evaluation and checkpoints; ends with the best weights loaded
    into ``model``. Returns their dev scores when this session computed them (None after a resume that
    found best.pt already written)."""
    cfg, d = ctx.cfg, ctx.dist
    total, scheduler, scaler = _schedule(cfg, optimizer, len(splits["train"]), ctx, use_scaler)
    state = _resume(run, d, model, optimizer, scheduler, scaler) if resume else TrainState()
    tr = _Trainer(model, optimizer, scheduler, scaler, state, run, ctx, run_log)
    forward_model = _wrap_ddp(model, d)
    pbar = _progress(total, state.step, d.main and cfg.train.progress, cfg.name)
    on_step = _step_hook(tr, splits["dev"], pbar, interrupt_at)
    try:
        while not state.stop and state.step < total:
            if not cfg.train.max_steps and state.epoch >= cfg.train.epochs:
                break
            epoch_before = state.epoch
            train_one_epoch(forward_model, splits["train"], ctx, optimizer, scheduler, scaler, state, total, on_step)
            if state.epoch != epoch_before or state.step >= total or state.stop:
                if not (cfg.train.eval_every and state.step % cfg.train.eval_every == 0):
                    tr.evaluate_dev(splits["dev"])
                tr.save_last()
    finally:
        if pbar is not None:
            pbar.close()
    _log_ddp_agreement(model, d, state, run_log)
    _load_best(model, run, d)
    return tr.best_dev_scores


def _schedule(cfg: Config, optimizer: torch.optim.Optimizer, n_train: int, ctx: Context, use_scaler: bool
              ) -> tuple[int, torch.optim.lr_scheduler.LambdaLR, torch.amp.GradScaler | None]:
    """Total optimiser steps, the warmup + cosine scheduler, and the fp16 grad scaler (or None)."""
    per_epoch = max(1, n_train_batches(n_train, ctx) // max(1, cfg.train.grad_accum))
    total = cfg.train.max_steps or per_epoch * cfg.train.epochs
    warmup = cfg.train.warmup_steps if cfg.train.warmup_steps >= 0 else round(0.05 * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_schedule(total, warmup, cfg.train.min_lr_ratio))
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    return total, scheduler, scaler


def _resume(run: Path, d: Dist, model: nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: torch.optim.lr_scheduler.LambdaLR, scaler: torch.amp.GradScaler | None) -> TrainState:
    """Restore everything last.pt holds; rank 0 reads, the others receive (no shared run folder needed)."""
    last_path = run / "checkpoints" / "last.pt"
    ck = broadcast(d, torch.load(last_path, map_location="cpu", weights_only=False) if d.main else None)
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    scheduler.load_state_dict(ck["scheduler"])
    if scaler is not None and ck.get("scaler"):
        scaler.load_state_dict(ck["scaler"])
    state = TrainState(**ck["state"])
    old_world = int(ck.get("world_size", 1))
    if old_world != d.world and state.batch:  # keep the position in samples when the world size changes
        state.batch = state.batch * old_world // d.world
    set_rng_state(ck["rng"][d.rank] if d.rank < len(ck["rng"]) else ck["rng"][0])
    log.info("resumed %s at step %d (epoch %d, batch %d)", run, state.step, state.epoch, state.batch)
    return state


def _wrap_ddp(model: nn.Module, d: Dist) -> nn.Module:
    if not d.enabled:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)


def _step_hook(tr: _Trainer, dev: list[dict[str, Any]], pbar: Any, interrupt_at: int) -> Any:
    """``on_step`` for ``train_one_epoch``: progress, train log lines, evaluation and checkpoints on schedule."""
    cfg = tr.ctx.cfg

    def on_step(st: TrainState, stats: dict[str, float]) -> None:
        if pbar is not None:
            pbar.update(1)
            pbar.set_postfix(loss=f"{stats['loss']:.4f}", samples_s=f"{stats['samples_per_s']:.1f}")
        if cfg.train.log_every and st.step % cfg.train.log_every == 0:
            tr.run_log({"kind": "train", "step": st.step, "epoch": st.epoch, **stats})
        evaluated = False
        if cfg.train.eval_every and st.step % cfg.train.eval_every == 0:
            tr.evaluate_dev(dev)
            evaluated = True
        if evaluated or (cfg.train.save_every and st.step % cfg.train.save_every == 0):
            tr.save_last()
        if interrupt_at and st.step == interrupt_at:
            raise _Interrupted(f"interrupted after step {st.step}")

    return on_step


def _log_ddp_agreement(model: nn.Module, d: Dist, state: TrainState, run_log: RunLog) -> None:
    """Under DDP, log every rank's parameter sum: they must agree."""
    if not d.enabled:
        return
    sums = gather(d, float(sum(p.detach().double().sum().item() for p in model.parameters())))
    run_log({"kind": "ddp", "world_size": d.world, "step": state.step, "param_sums": sums,
             "ranks_agree": bool(np.allclose(sums, sums[0], rtol=0, atol=1e-9))})


def _load_best(model: nn.Module, run: Path, d: Dist) -> None:
    best = torch.load(run / "checkpoints" / "best.pt", map_location="cpu", weights_only=False) if d.main else None
    load_model_state(model, broadcast(d, best))


def _progress(total: int, start: int, show: bool, name: str) -> Any:
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc=f"train {name}", unit="step", dynamic_ncols=True)


# ----------------------------------------------------------------------------------------------- finish
def _finish(model: nn.Module, run: Path, splits: Splits, ctx: Context, run_log: RunLog,
            dev_scores: np.ndarray | None = None) -> None:
    """Score dev (and test) with the best weights: predictions/*.jsonl and the final metrics lines.

    ``dev_scores``: dev's scores under these same weights when already computed this session; they are
    reused, not recomputed (each split is scored once)."""
    d = ctx.dist
    for name in ("dev", "test"):
        rows = splits[name]
        if not rows or (name == "test" and not ctx.cfg.eval.test_at_end):
            continue
        if name == "dev" and dev_scores is not None:
            m, s = detection_metrics(np.asarray([r["label"] for r in rows]), dev_scores), np.asarray(dev_scores)
        else:
            m, scores = evaluate(model, rows, ctx, progress_label(ctx, f"scoring the {name} split"))
            s = np.asarray(scores)
        m["by_domain"] = sliced_auroc(rows, s, "domain")
        m["by_generator"] = sliced_auroc(rows, s, "generator")
        run_log({"kind": f"final_{name}", **m})
        if d.main:
            write_predictions(run / "predictions" / f"{name}.jsonl", rows, s)
    barrier(d)
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()
