"""Run folders: what ``fit`` writes beside the checkpoints, and ``load_run`` / ``read_split`` for export.

Layout (docs/contracts.md)::

    RUN_DIR/config.yaml  run.json  preprocessing.json  tokenizer/  hf_model/  metrics.jsonl
            checkpoints/best.pt  checkpoints/last.pt  splits/{train,dev,test}.jsonl
            predictions/{dev,test}.jsonl   (raw scores of the best checkpoint)  .aigc-run (marker)

``fit`` writes only into an empty (or new) folder or into a run folder it wrote itself (the marker), and
replaces a run folder only when asked (``--overwrite``); those guards and the ``--resume`` config comparison
(``MARKER``, ``check_out_folder``, ``clear_run_folder``, ``resume_changes``, ``RESUME_MAY_CHANGE``) are in
``training.run_guard`` and re-exported here.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import yaml
from torch import nn

from aigc._image import ImageSpec
from aigc._text import COMPANION_TOKENIZER, TextSpec, load_tokenizer
from training.causal_lm import companion_length
from training.config import Config, config_from_dict
from training.frozen import load_model_state
from training.registry import create_model
from training.run_guard import (
    MARKER,
    RESUME_MAY_CHANGE,
    check_out_folder,
    clear_run_folder,
    input_paths,  # noqa: F401  (re-exported: it was defined here)
    is_run_folder,
    resume_changes,
    resume_history,
)

if TYPE_CHECKING:
    from training.context import Context

log = logging.getLogger(__name__)

__all__ = ["MARKER", "RESUME_MAY_CHANGE", "LoadedRun", "check_out_folder", "clear_run_folder", "image_spec_for",
           "is_run_folder", "load_run", "package_versions", "read_split", "resume_changes", "source_revision",
           "text_spec_for"]

_PACKAGES = ("torch", "torchvision", "timm", "transformers", "tokenizers", "datasets", "numpy", "pillow",
             "onnx", "onnxruntime", "safetensors", "aigc-sentinel")
_BUILTIN_PREFIXES = ("timm:", "hf:", "clip-probe", "npr")


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
        jpeg_draft=cfg.data.jpeg_draft,
        crop=cfg.data.crop,
        grid=(int(cfg.data.crop_grid[0]), int(cfg.data.crop_grid[-1])),
        pooling=cfg.data.crop_pooling,
    )
    spec.validate()
    return spec


def text_spec_for(model: nn.Module, cfg: Config) -> TextSpec:
    """The TextSpec of a run: the model's special ids (BERT: [CLS] .. [SEP], pad) and the config's windows."""
    d = cfg.data
    base = getattr(model, "text_spec", None)
    if base is not None:
        comp = base.companion and dataclasses.replace(
            base.companion, max_length=companion_length(d.max_length, len(base.companion.prefix_ids)))
        spec = dataclasses.replace(base, tokenizer="tokenizer.json", max_length=d.max_length, stride=d.stride,
                                   pooling=d.pooling, max_windows=d.max_windows, normalize=d.normalize,
                                   companion=comp)
    else:
        ids = getattr(model, "special_ids", None)
        if ids is None and getattr(model, "tokenizer", None) is not None and callable(model.tokenizer):
            from training.models import special_ids

            ids = special_ids(model.tokenizer)
        prefix, suffix, pad = ids or ([], [], 0)
        spec = TextSpec(max_length=d.max_length, stride=d.stride, pooling=d.pooling, max_windows=d.max_windows,
                        normalize=d.normalize, prefix_ids=tuple(prefix), suffix_ids=tuple(suffix), pad_id=int(pad))
    return TextSpec.from_dict(spec.to_dict())  # validates


# ---------------------------------------------------------------------------------------- run folder
def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_run_info(run: Path, cfg: Config, ctx: Context, splits: dict[str, list[dict[str, Any]]], fingerprint: str,
                   model: nn.Module, changes: dict[str, list[Any]] | None) -> None:
    """Rank 0: preprocessing.json and run.json (what export and provenance read). On resume (``changes``
    not None) run.json keeps its ``created`` and lists each resume under ``resumed`` with the changed keys."""
    if not ctx.dist.main:
        return
    history = resume_history(run, changes)
    spec = ctx.image_spec if ctx.modality == "image" else ctx.text_spec
    assert spec is not None
    write_json(run / "preprocessing.json", spec.to_dict())
    image = ctx.modality == "image"
    write_json(run / "run.json", {
        "modality": ctx.modality,
        "model": cfg.model.name,
        "output_kind": ctx.output_kind,
        "input_names": ["pixel_values"] if image else list(getattr(model, "input_names", ["input_ids", "attention_mask"])),
        "labels": ["real", "ai"] if image else ["human", "ai"],
        "packages": package_versions(),
        "source_revision": source_revision(),
        "data_fingerprint": fingerprint,
        "split_sizes": {k: len(v) for k, v in splits.items()},
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "world_size": ctx.dist.world,
        **history,
        "config_name": cfg.name,
    })


def write_splits(run: Path, splits: dict[str, list[dict[str, Any]]]) -> None:
    (run / "splits").mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        if name == "test" and not rows:
            continue
        tmp = run / "splits" / f".{name}.jsonl.tmp"
        with tmp.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps({k: v for k, v in r.items() if k != "image"}, ensure_ascii=False) + "\n")
        os.replace(tmp, run / "splits" / f"{name}.jsonl")


def save_tokenizer_and_config(run: Path, model: nn.Module) -> None:
    tok = getattr(model, "tokenizer", None)
    if tok is not None:
        if hasattr(tok, "save_pretrained"):
            tok.save_pretrained(run / "tokenizer")
        else:  # a tokenizers.Tokenizer
            (run / "tokenizer").mkdir(exist_ok=True)
            tok.save(str(run / "tokenizer" / "tokenizer.json"))
        if not (run / "tokenizer" / "tokenizer.json").is_file():
            raise RuntimeError(f"{run / 'tokenizer'}: the tokenizer saved no tokenizer.json (needs a fast tokenizer)")
    comp = getattr(model, "companion_tokenizer", None)
    if comp is not None:  # the second LM's, under the name the text spec gives it
        getattr(comp, "backend_tokenizer", comp).save(str(run / "tokenizer" / COMPANION_TOKENIZER))
    hf_config = getattr(model, "hf_config", None)
    if hf_config is not None:
        hf_config.save_pretrained(run / "hf_model")
        if tok is not None and hasattr(tok, "save_pretrained"):
            tok.save_pretrained(run / "hf_model")


def write_predictions(path: Path, rows: list[dict[str, Any]], scores: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for i, (r, s) in enumerate(zip(rows, scores, strict=True)):
            f.write(json.dumps({"index": i, "label": r["label"], "score": None if np.isnan(s) else float(s),
                                "generator": r.get("generator"), "domain": r.get("domain"),
                                "source": r.get("source"), "group": r.get("group")}) + "\n")
    os.replace(tmp, path)


def _runtime_copy(file: Path, tok: Any) -> Any:
    """The ``tokenizers.Tokenizer`` the runtime loads from ``file`` (rank 0 wrote it); on a node that does not
    share the run folder, the same serialisation taken from ``tok`` (a Hugging Face fast tokenizer or a
    ``tokenizers.Tokenizer``)."""
    if file.is_file():
        return load_tokenizer(file)
    from tokenizers import Tokenizer

    out = Tokenizer.from_str(getattr(tok, "backend_tokenizer", tok).to_str())
    out.no_truncation()
    out.no_padding()
    return out


def runtime_tokenizer(run: Path, model: nn.Module) -> Any:
    """The tokenizer the runtime will load: the run's tokenizer.json, else the model's own."""
    return _runtime_copy(run / "tokenizer" / "tokenizer.json", getattr(model, "tokenizer", None))


def runtime_companion_tokenizer(run: Path, model: nn.Module) -> Any:
    """The companion LM's tokenizer as the runtime loads it (the run's tokenizer_b.json, else the model's
    own); None for a model without one."""
    comp = getattr(model, "companion_tokenizer", None)
    f = run / "tokenizer" / COMPANION_TOKENIZER
    return _runtime_copy(f, comp) if f.is_file() or comp is not None else None


# ------------------------------------------------------------------------------------------- load_run
@dataclass
class LoadedRun:
    """A trained run, ready for export: the model in eval mode and everything needed to preprocess.

    ``model`` is loaded with the run; :meth:`release_model` drops it and the next access reloads it from
    the same checkpoint (export releases it while ONNX Runtime holds the graph's copy of the weights)."""

    modality: str
    preprocessing: dict[str, Any]
    tokenizer_file: Path | None
    input_names: list[str]
    output_kind: str
    config: dict[str, Any]
    provenance: dict[str, Any]
    loader: Callable[[], nn.Module] = field(repr=False)
    _model: nn.Module | None = field(default=None, repr=False)

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            log.info("reloading the run's model from %s", self.provenance.get("checkpoint"))
            self._model = self.loader()
        return self._model

    def release_model(self) -> None:
        """Drop this object's reference to the torch model (its memory is returned once nothing else
        holds it); the next ``model`` reloads it from the checkpoint."""
        self._model = None
        gc.collect()


def _load_weights(mcfg: Any, ck_path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The model built from ``mcfg`` with the checkpoint's weights, in eval mode, and the checkpoint's
    other entries (step, metrics)."""
    model = create_model(mcfg)
    ck = torch.load(ck_path, map_location="cpu", weights_only=False)
    load_model_state(model, ck)  # a zero-shot run's checkpoint names its frozen LMs rather than copying them
    ck.pop("model")
    model.eval()
    return model, ck


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
    model, ck = _load_weights(mcfg, ck_path)
    tok = run / "tokenizer" / "tokenizer.json"
    modality = info["modality"]
    return LoadedRun(
        loader=lambda: _load_weights(mcfg, ck_path)[0],
        _model=model,
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
