"""Run folders: ``fit`` (config -> trained run folder), ``load_run`` and ``read_split`` (run folder -> export).

Layout (docs/contracts.md)::

    RUN_DIR/config.yaml  run.json  preprocessing.json  tokenizer/  hf_model/  metrics.jsonl
            checkpoints/best.pt  checkpoints/last.pt  splits/{train,dev,test}.jsonl
            predictions/{dev,test}.jsonl   (raw scores of the best checkpoint)
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import json
import logging
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn

from aigc._image import ImageSpec
from aigc._text import TextSpec, load_tokenizer
from training.config import Config, config_from_dict, config_to_dict
from training.data import data_fingerprint, make_splits
from training.loop import (
    Context,
    Dist,
    TrainState,
    _barrier,
    _gather,
    atomic_save,
    build_optimizer,
    cosine_schedule,
    evaluate,
    init_distributed,
    n_train_batches,
    rng_state,
    set_rng_state,
    sliced_auroc,
    train_one_epoch,
    write_jsonl_line,
)
from training.registry import create_model, get_entry

__all__ = ["LoadedRun", "fit", "load_run", "read_split"]

log = logging.getLogger(__name__)

_PACKAGES = ("torch", "torchvision", "timm", "transformers", "tokenizers", "datasets", "numpy", "pillow",
             "onnx", "onnxruntime", "safetensors", "aigc-sentinel")
_BUILTIN_PREFIXES = ("timm:", "hf:", "clip-probe", "npr")


class _Interrupted(Exception):
    """Raised by tests (``_interrupt_at``) to simulate a run killed after a checkpoint."""


# ------------------------------------------------------------------------------------------ provenance
def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for p in _PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def source_revision() -> str:
    """``git describe``-like revision of the source tree (commit, plus ``-dirty``), or ``unknown``."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "training", "aigc"], cwd=here.parent,
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# -------------------------------------------------------------------------------------- preprocessing
def image_spec_for(model: nn.Module, cfg: Config) -> ImageSpec:
    """The ImageSpec of a run: the model's input size and its own mean/std, the config's resize policy."""
    dflt = getattr(model, "image_defaults", {})
    spec = ImageSpec(
        size=(cfg.model.input_size, cfg.model.input_size),
        resize=cfg.data.resize,
        mean=tuple(cfg.model.mean or dflt.get("mean", (0.485, 0.456, 0.406))),  # type: ignore[arg-type]
        std=tuple(cfg.model.std or dflt.get("std", (0.229, 0.224, 0.225))),  # type: ignore[arg-type]
        interpolation=cfg.data.interpolation,
    )
    spec.validate()
    return spec


def text_spec_for(model: nn.Module, cfg: Config) -> TextSpec:
    """The TextSpec of a run: the model's special ids (BERT: [CLS] .. [SEP], pad) and the config's windows."""
    d = cfg.data
    base = getattr(model, "text_spec", None)
    if base is not None:
        spec = dataclasses.replace(base, tokenizer="tokenizer.json", max_length=d.max_length, stride=d.stride,
                                   pooling=d.pooling, max_windows=d.max_windows)
    else:
        ids = getattr(model, "special_ids", None)
        if ids is None and getattr(model, "tokenizer", None) is not None and callable(model.tokenizer):
            from training.models import special_ids

            ids = special_ids(model.tokenizer)
        prefix, suffix, pad = ids or ([], [], 0)
        spec = TextSpec(max_length=d.max_length, stride=d.stride, pooling=d.pooling, max_windows=d.max_windows,
                        prefix_ids=tuple(prefix), suffix_ids=tuple(suffix), pad_id=int(pad))
    return TextSpec.from_dict(spec.to_dict())  # validates


# ---------------------------------------------------------------------------------------- run folder
def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _write_splits(run: Path, splits: dict[str, list[dict[str, Any]]]) -> None:
    (run / "splits").mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        if name == "test" and not rows:
            continue
        tmp = run / "splits" / f".{name}.jsonl.tmp"
        with tmp.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps({k: v for k, v in r.items() if k != "image"}, ensure_ascii=False) + "\n")
        os.replace(tmp, run / "splits" / f"{name}.jsonl")


def _save_tokenizer_and_config(run: Path, model: nn.Module) -> None:
    tok = getattr(model, "tokenizer", None)
    if tok is not None:
        if hasattr(tok, "save_pretrained"):
            tok.save_pretrained(run / "tokenizer")
        else:  # a tokenizers.Tokenizer
            (run / "tokenizer").mkdir(exist_ok=True)
            tok.save(str(run / "tokenizer" / "tokenizer.json"))
        if not (run / "tokenizer" / "tokenizer.json").is_file():
            raise RuntimeError(f"{run / 'tokenizer'}: the tokenizer saved no tokenizer.json (needs a fast tokenizer)")
    hf_config = getattr(model, "hf_config", None)
    if hf_config is not None:
        hf_config.save_pretrained(run / "hf_model")
        if tok is not None and hasattr(tok, "save_pretrained"):
            tok.save_pretrained(run / "hf_model")


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


def _predictions(path: Path, rows: list[dict[str, Any]], scores: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for i, (r, s) in enumerate(zip(rows, scores, strict=True)):
            f.write(json.dumps({"index": i, "label": r["label"], "score": None if np.isnan(s) else float(s),
                                "generator": r.get("generator"), "domain": r.get("domain"),
                                "source": r.get("source"), "group": r.get("group")}) + "\n")
    os.replace(tmp, path)


def _clean(m: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in m.items()}


# ------------------------------------------------------------------------------------------------ fit
def fit(cfg: Config, run_dir: str | Path | None = None, resume: bool = False, _interrupt_at: int = 0) -> Path:
    """Train ``cfg`` into a run folder and return its path (the same on every rank).

    With ``resume``, ``run_dir/checkpoints/last.pt`` is loaded and training continues exactly where it
    stopped; the data must have the same fingerprint. A model without trainable parameters (zero-shot)
    is not optimised: it is evaluated and saved. ``_interrupt_at`` (tests) raises after that step's
    checkpoint, as a kill would.
    """
    d = init_distributed(cfg.train.device)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    run = Path(run_dir or cfg.train.out or Path("runs") / (cfg.name or "run"))
    cfg.train.out = str(run)
    entry = get_entry(cfg.model.name)
    modality = entry.modality
    last_path = run / "checkpoints" / "last.pt"
    if resume and d.main and not last_path.is_file():
        raise FileNotFoundError(f"--resume: {last_path} does not exist (nothing to resume)")
    if not resume and (run / "checkpoints").exists() and any((run / "checkpoints").iterdir()):
        raise FileExistsError(f"{run} already holds checkpoints: pass --resume to continue, or another --out")

    _seed_all(cfg.train.seed)
    splits = make_splits(cfg.data, modality)
    fingerprint = data_fingerprint(splits)
    model = create_model(cfg.model)
    output_kind = str(getattr(model, "output_kind", entry.output_kind))
    if d.main:
        run.mkdir(parents=True, exist_ok=True)
        (run / "checkpoints").mkdir(exist_ok=True)
        if not resume:
            (run / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
            _write_splits(run, splits)
            _save_tokenizer_and_config(run, model)
        else:
            old = json.loads((run / "run.json").read_text(encoding="utf-8"))
            if old.get("data_fingerprint") != fingerprint:
                raise ValueError(
                    f"--resume: the data differ from the interrupted run's ({old.get('data_fingerprint')} vs "
                    f"{fingerprint}); resume with the same config and files"
                )
    _barrier(d)

    ctx = Context(cfg, modality, d, output_kind=output_kind)
    if modality == "image":
        ctx.image_spec = image_spec_for(model, cfg)
        pre = ctx.image_spec.to_dict()
    else:
        ctx.text_spec = text_spec_for(model, cfg)
        ctx.tokenizer = _runtime_tokenizer(run, model)
        pre = ctx.text_spec.to_dict()
    ctx.amp_dtype, use_scaler = _resolve_device_amp(cfg, d)
    ctx.channels_last = modality == "image" and d.device.type == "cuda" and cfg.train.channels_last
    model.to(d.device)
    if ctx.channels_last:
        model.to(memory_format=torch.channels_last)

    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if d.main:
        _write_json(run / "preprocessing.json", pre)
        _write_json(run / "run.json", {
            "modality": modality,
            "model": cfg.model.name,
            "output_kind": output_kind,
            "input_names": ["pixel_values"] if modality == "image" else ["input_ids", "attention_mask"],
            "labels": ["real", "ai"] if modality == "image" else ["human", "ai"],
            "packages": package_versions(),
            "source_revision": source_revision(),
            "data_fingerprint": fingerprint,
            "split_sizes": {k: len(v) for k, v in splits.items()},
            "parameters": n_params,
            "trainable_parameters": n_train,
            "world_size": d.world,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "config_name": cfg.name,
        })
    metrics_path = run / "metrics.jsonl"
    tb = _tensorboard(run) if d.main else None

    def log_line(obj: dict[str, Any]) -> None:
        if d.main:
            write_jsonl_line(metrics_path, _clean(obj))
            if tb is not None:
                for k, v in obj.items():
                    if isinstance(v, (int, float)) and k not in ("step", "epoch") and not math.isnan(float(v)):
                        tb.add_scalar(f"{obj.get('kind', 'train')}/{k}", v, obj.get("step", 0))

    raw_model = model
    optimizer = build_optimizer(model, cfg)
    state = TrainState()
    if optimizer is None:
        if hasattr(raw_model, "fit_head"):  # frozen features + a head fitted in closed form (zeroshot:features)
            from training.lmfeatures import fit_head_on_split

            fit_head_on_split(raw_model, splits["train"], ctx, log_line)
        else:
            log.info("%s has no trainable parameters: nothing to fit; evaluating and saving", cfg.model.name)
        m, _ = evaluate(model, splits["dev"], ctx)
        log_line({"kind": "dev", "step": 0, "epoch": 0, **m})
        ck = {"model": raw_model.state_dict(), "step": 0, "epoch": 0, "metrics": m}
        if d.main:
            atomic_save(ck, run / "checkpoints" / "best.pt")
            atomic_save({**ck, "state": dataclasses.asdict(state)}, last_path)
        _finish(raw_model, run, splits, ctx, cfg, log_line, d)
        return run

    per_epoch = max(1, n_train_batches(len(splits["train"]), ctx) // max(1, cfg.train.grad_accum))
    total = cfg.train.max_steps or per_epoch * cfg.train.epochs
    warmup = cfg.train.warmup_steps if cfg.train.warmup_steps >= 0 else round(0.05 * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_schedule(total, warmup, cfg.train.min_lr_ratio))
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None

    if resume:
        # rank 0 reads, the others receive (multi-node runs need no shared run folder to resume)
        ck = _broadcast(d, torch.load(last_path, map_location="cpu", weights_only=False) if d.main else None)
        raw_model.load_state_dict(ck["model"])
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

    if d.enabled:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[d.device.index] if d.device.type == "cuda" else None
        )

    def save_last() -> None:
        rngs = _gather(d, rng_state())
        if d.main:
            atomic_save({
                "model": raw_model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "rng": rngs,
                "state": dataclasses.asdict(state),
                "world_size": d.world,
                "step": state.step,
                "epoch": state.epoch,
            }, last_path)
        _barrier(d)

    def do_eval() -> None:
        m, _ = evaluate(raw_model, splits["dev"], ctx)
        raw_model.train()
        log_line({"kind": "dev", "step": state.step, "epoch": state.epoch, **m})
        score = m["auroc"] if not math.isnan(m["auroc"]) else -m.get("loss", 0.0)
        if score > state.best_auroc or state.best_step < 0:
            state.best_auroc, state.best_step, state.bad_evals = score, state.step, 0
            if d.main:
                atomic_save({"model": raw_model.state_dict(), "step": state.step, "epoch": state.epoch,
                             "metrics": _clean(m)}, run / "checkpoints" / "best.pt")
        else:
            state.bad_evals += 1
            if cfg.train.early_stop and state.bad_evals >= cfg.train.early_stop:
                log.info("early stop at step %d: dev AUROC has not improved for %d evaluations",
                         state.step, state.bad_evals)
                state.stop = True

    pbar = _progress(total, state.step, d.main and cfg.train.progress, cfg.name)

    def on_step(st: TrainState, stats: dict[str, float]) -> None:
        if pbar is not None:
            pbar.update(1)
            pbar.set_postfix(loss=f"{stats['loss']:.4f}", samples_s=f"{stats['samples_per_s']:.1f}")
        if cfg.train.log_every and st.step % cfg.train.log_every == 0:
            log_line({"kind": "train", "step": st.step, "epoch": st.epoch, **stats})
        evaluated = False
        if cfg.train.eval_every and st.step % cfg.train.eval_every == 0:
            do_eval()
            evaluated = True
        if evaluated or (cfg.train.save_every and st.step % cfg.train.save_every == 0):
            save_last()
        if _interrupt_at and st.step == _interrupt_at:
            raise _Interrupted(f"interrupted after step {st.step}")

    try:
        while not state.stop and state.step < total:
            if not cfg.train.max_steps and state.epoch >= cfg.train.epochs:
                break
            epoch_before = state.epoch
            train_one_epoch(model, splits["train"], ctx, optimizer, scheduler, scaler, state, total, on_step)
            if state.epoch != epoch_before or state.step >= total or state.stop:
                if not (cfg.train.eval_every and state.step % cfg.train.eval_every == 0):
                    do_eval()
                save_last()
    finally:
        if pbar is not None:
            pbar.close()
    if d.enabled:
        sums = _gather(d, float(sum(p.detach().double().sum().item() for p in raw_model.parameters())))
        log_line({"kind": "ddp", "world_size": d.world, "step": state.step, "param_sums": sums,
                  "ranks_agree": bool(np.allclose(sums, sums[0], rtol=0, atol=1e-9))})
    best = torch.load(run / "checkpoints" / "best.pt", map_location="cpu", weights_only=False) if d.main else None
    best = _broadcast(d, best)
    raw_model.load_state_dict(best["model"])
    _finish(raw_model, run, splits, ctx, cfg, log_line, d)
    if tb is not None:
        tb.close()
    return run


def _runtime_tokenizer(run: Path, model: nn.Module) -> Any:
    """The tokenizer the runtime will load: the run's tokenizer.json (rank 0 wrote it); on a node that does
    not share the run folder, the same serialisation taken from the model's own tokenizer."""
    f = run / "tokenizer" / "tokenizer.json"
    if f.is_file():
        return load_tokenizer(f)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str())
    tok.no_truncation()
    tok.no_padding()
    return tok


def _finish(model: nn.Module, run: Path, splits: dict[str, list[dict[str, Any]]], ctx: Context, cfg: Config,
            log_line: Any, d: Dist) -> None:
    """Score dev (and test) with the best weights: predictions/*.jsonl and the final metrics lines."""
    for name in ("dev", "test"):
        rows = splits[name]
        if not rows or (name == "test" and not cfg.eval.test_at_end):
            continue
        m, scores = evaluate(model, rows, ctx)
        s = np.asarray(scores)
        m["by_domain"] = sliced_auroc(rows, s, "domain")
        m["by_generator"] = sliced_auroc(rows, s, "generator")
        log_line({"kind": f"final_{name}", **m})
        if d.main:
            _predictions(run / "predictions" / f"{name}.jsonl", rows, s)
    _barrier(d)
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def _broadcast(d: Dist, obj: Any) -> Any:
    if not d.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _progress(total: int, start: int, show: bool, name: str) -> Any:
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc=f"train {name}", unit="step", dynamic_ncols=True)


def _tensorboard(run: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run / "tensorboard"))


# ------------------------------------------------------------------------------------------- load_run
@dataclass
class LoadedRun:
    """A trained run, ready for export: the model in eval mode and everything needed to preprocess."""

    model: nn.Module
    modality: str
    preprocessing: dict[str, Any]
    tokenizer_file: Path | None
    input_names: list[str]
    output_kind: str
    config: dict[str, Any]
    provenance: dict[str, Any]


def load_run(run_dir: str | Path, checkpoint: str = "best") -> LoadedRun:
    """Load a run folder: rebuild the model from its config (no hub access for the built-in models:
    the architecture comes from the run's own ``hf_model/``), load ``checkpoints/<checkpoint>.pt``.

    ``checkpoint``: ``best``, ``last``, or a path to a .pt file. Raises FileNotFoundError naming what is missing.
    """
    run = Path(run_dir)
    for f in ("config.yaml", "run.json", "preprocessing.json"):
        if not (run / f).is_file():
            raise FileNotFoundError(f"{run}: no {f}; is this a run folder written by aigc train?")
    cfg_dict = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    cfg = config_from_dict(cfg_dict)
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    ck_path = Path(checkpoint) if checkpoint not in ("best", "last") else run / "checkpoints" / f"{checkpoint}.pt"
    if not ck_path.is_file():
        raise FileNotFoundError(f"{ck_path}: no such checkpoint (best, last, or a path)")
    mcfg = dataclasses.replace(cfg.model)
    if mcfg.name.startswith(_BUILTIN_PREFIXES):
        mcfg.pretrained = "none"  # architecture only: the weights come from the checkpoint
        hf_dir = run / "hf_model"
        if (hf_dir / "config.json").is_file():
            if mcfg.name.startswith("hf:"):
                mcfg.name = f"hf:{hf_dir}"
            elif mcfg.name == "clip-probe":
                mcfg.backbone = str(hf_dir)
    model = create_model(mcfg)
    ck = torch.load(ck_path, map_location="cpu", weights_only=False)
    model.load_state_dict(ck["model"])
    model.eval()
    tok = run / "tokenizer" / "tokenizer.json"
    modality = info["modality"]
    return LoadedRun(
        model=model,
        modality=modality,
        preprocessing=json.loads((run / "preprocessing.json").read_text(encoding="utf-8")),
        tokenizer_file=tok if tok.is_file() else None,
        input_names=list(info.get("input_names") or (["pixel_values"] if modality == "image" else
                                                      ["input_ids", "attention_mask"])),
        output_kind=str(info.get("output_kind", getattr(model, "output_kind", "logits"))),
        config=cfg_dict,
        provenance={
            "config": cfg_dict,
            "data_fingerprint": info.get("data_fingerprint"),
            "source_revision": info.get("source_revision"),
            "packages": info.get("packages", {}),
            "created": info.get("created"),
            "checkpoint": str(ck_path),
            "step": ck.get("step"),
            "metrics": ck.get("metrics"),
        },
    )


def read_split(run_dir: str | Path, name: str) -> list[dict[str, Any]]:
    """The rows of ``splits/<name>.jsonl`` (item, label, generator, domain, source, group)."""
    p = Path(run_dir) / "splits" / f"{name}.jsonl"
    if not p.is_file():
        have = sorted(q.stem for q in (Path(run_dir) / "splits").glob("*.jsonl"))
        raise FileNotFoundError(f"{p}: no split {name!r} in this run (found: {have})")
    with p.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
