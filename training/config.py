"""Training configs: dataclasses grouped by concern, loaded from flat YAML, overridden by ``--set``.

A config file has up to four sections (``data``, ``model``, ``train``, ``eval``), each a flat mapping
of field names to values; dotted keys at the top level (``train.epochs: 3``) work too. There is no
inheritance and nothing runs as code. Unknown keys are an error that names the key and suggests the
closest known one.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
]


class ConfigError(ValueError):
    """A config key or value is wrong; the message names it and says what would be right."""


@dataclass
class DataConfig:
    """Where the samples come from, how they are split, and how they are transformed."""

    train: str = ""
    """Training source: an image folder (``real/`` + ``ai/``, or ``0_real``/``1_fake``), a .jsonl/.csv/.parquet
    text file, or ``hf:org/name`` (a Hugging Face dataset)."""
    dev: str = ""
    """Given dev source (same kinds as ``train``); empty: dev is split off ``train`` by ``group_by``."""
    test: str = ""
    """Given test source; empty: none, unless ``test_fraction`` or ``holdout_column`` make one."""
    hf_config: str = ""
    """Hugging Face dataset config name (``hf:`` sources only)."""
    train_split: str = "train"
    """Split name read from an ``hf:`` train source."""
    dev_split: str = "validation"
    """Split name read from an ``hf:`` dev source."""
    test_split: str = "test"
    """Split name read from an ``hf:`` test source."""
    text_column: str = "text"
    """Column holding the text (text sources)."""
    image_column: str = "image"
    """Column holding the image (``hf:`` image datasets)."""
    label_column: str = "label"
    """Column holding the label."""
    labels: dict[str, int] = field(default_factory=lambda: {"0": 0, "1": 1})
    """Label value (as written in the data, compared as a string) -> 0 (human/real) or 1 (AI)."""
    generator_column: str = "generator"
    """Column naming the generator (missing: 'unknown'; image folders: the subfolder below ``ai/``)."""
    domain_column: str = "domain"
    """Column naming the domain (missing: 'unknown')."""
    source_column: str = "source"
    """Column naming the source (missing: the file or dataset name)."""
    group_by: str = ""
    """Column whose value groups samples that must stay in one split (empty: each sample its own group)."""
    group_human_text: bool = False
    """Merge groups whose human (label 0) text is the same, so one human text never straddles splits."""
    dev_fraction: float = 0.1
    """Fraction of groups put in dev when no dev source is given."""
    test_fraction: float = 0.0
    """Fraction of groups put in test when no test source is given (and no hold-out is set)."""
    holdout_column: str = ""
    """Column (domain, generator, ...) whose ``holdout_values`` form the test split (leave-out evaluation)."""
    holdout_values: list[str] = field(default_factory=list)
    """Values of ``holdout_column`` held out as the test split, with the human samples of their groups."""
    include: dict[str, list[str]] = field(default_factory=dict)
    """Keep only samples whose column value is listed, e.g. ``{domain: [xsum, squad]}`` (applied first)."""
    max_train: int = 0
    """Use at most this many training samples, drawn at random with ``seed`` (0: all)."""
    max_dev: int = 0
    """At most this many dev samples (0: all)."""
    max_test: int = 0
    """At most this many test samples (0: all)."""
    seed: int = 0
    """Seed of the split and the subsets."""
    # image transforms
    resize: str = "none"
    """Image resize before the crop: ``none`` (crop at full resolution), ``shorter`` or ``exact``."""
    random_crop: bool = True
    """Train crop at a random position (eval always crops at the centre)."""
    hflip: float = 0.5
    """Probability of a horizontal flip (train)."""
    blur_prob: float = 0.1
    """Probability of a Gaussian blur (CNNDetection); sigma drawn from ``blur_sigma``."""
    blur_sigma: list[float] = field(default_factory=lambda: [0.0, 3.0])
    """Range of the blur sigma."""
    jpeg_prob: float = 0.1
    """Probability of a JPEG re-compression (CNNDetection); quality drawn from ``jpeg_quality``."""
    jpeg_quality: list[int] = field(default_factory=lambda: [30, 100])
    """Range of the JPEG quality."""
    interpolation: str = "bicubic"
    """Interpolation of resizes (bilinear, bicubic, nearest, lanczos)."""
    jpeg_draft: bool = False
    """JPEG DCT-domain downscaling before a resize (bundle ``decode.jpeg_draft``); train and serve both use it."""
    crop: str = "center"
    """Evaluation/serving crops: ``center`` (one) or ``grid`` (``crop_grid`` crops, scores pooled by ``crop_pooling``)."""
    crop_grid: list[int] = field(default_factory=lambda: [1, 1])
    """Rows and columns of crops when ``crop: grid``."""
    crop_pooling: str = "mean"
    """How grid crop scores pool into the image's score: mean or max."""
    # text windows
    max_length: int = 256
    """Tokens per window, special tokens included."""
    stride: int = 128
    """How far each window moves, in content tokens."""
    pooling: str = "mean"
    """How window scores pool into a text's score: mean, max, first."""
    max_windows: int = 64
    """Windows scored per text at evaluation."""
    normalize: str = "nfc_strip_zw_fold"
    """What is done to a text before tokenising, in training and in the bundle (``preprocessing.normalize``,
    docs/bundle.md): ``nfc_strip_zw_fold`` reads Cyrillic/Greek look-alikes inside Latin words as Latin;
    ``nfc_strip_zw`` gives bundles that runtimes before that mode can read; ``none``."""
    train_window: str = "random"
    """Which window of a long text a training step sees: ``random`` (a new one each epoch) or ``first``."""
    num_workers: int = 0
    """DataLoader worker processes."""


@dataclass
class ModelConfig:
    """Which detector (``aigc list-models``) and its weights."""

    name: str = "timm:resnet18"
    """Registered model name: ``timm:<name>``, ``hf:<name or path>``, ``clip-probe``, ``npr``, ``zeroshot:*``."""
    pretrained: str = ""
    """Weights: empty (random init), ``hub`` (the hub's weights for the name), ``preset:<name>`` (offline
    weights, see training/weights.py), or a path to a checkpoint / folder."""
    backbone: str = ""
    """Backbone hub name or local folder (``clip-probe``: a CLIP model, default openai/clip-vit-large-patch14;
    ``zeroshot:*``: the causal LM)."""
    reference_model: str = ""
    """Second LM of a zero-shot statistic (Fast-DetectGPT's sampler, Binoculars' performer); for
    ``zeroshot:features`` the performer whose Binoculars terms join the seven statistics (same tokenizer)."""
    companion_model: str = ""
    """``zeroshot:features`` only: a second causal LM of any tokenizer (e.g. ``gemma3-270m`` beside
    ``qwen2.5-coder-1.5b``) whose own seven statistics join the first LM's; each window is tokenized again by
    its tokenizer over the same characters (the bundle carries both tokenizers)."""
    input_size: int = 224
    """Image models: the square input size (crop size)."""
    mean: list[float] = field(default_factory=list)
    """Image normalisation mean (empty: the model's own)."""
    std: list[float] = field(default_factory=list)
    """Image normalisation std (empty: the model's own)."""
    drop_rate: float = 0.0
    """Dropout before the classifier (timm models)."""
    freeze_backbone: bool = False
    """Train the head only (``clip-probe`` is always frozen)."""
    width: int = 64
    """``npr``: channels of the first stage of the residual network."""
    skip_tokens: int = 0
    """``zeroshot:features``: burn-in; the first N tokens of every window are context only, not scored (at
    most half a window's tokens). For texts that open with a known shared prompt (a quoted question, a
    template); on ../shared/data it helped only by hiding the human prefix that every machine text
    shares with its human text, and did nothing on texts without it (BENCHMARKS.md, "burn-in")."""


@dataclass
class TrainConfig:
    """The optimisation loop."""

    epochs: int = 1
    """Passes over the training data."""
    max_steps: int = 0
    """Stop after this many optimiser steps (0: ``epochs`` decide)."""
    batch_size: int = 32
    """Samples per step per process (before accumulation)."""
    grad_accum: int = 1
    """Micro-batches accumulated per optimiser step."""
    lr: float = 1e-4
    """Peak learning rate (AdamW)."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to biases and norms)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas."""
    warmup_steps: int = -1
    """Linear warmup steps before the cosine decay (-1: 5% of all steps)."""
    min_lr_ratio: float = 0.0
    """Cosine decays to ``lr * min_lr_ratio``."""
    clip_grad: float = 1.0
    """Clip the gradient norm to this (0: no clipping)."""
    amp: str = "auto"
    """Mixed precision on CUDA: ``auto`` (bf16 where supported, else fp16), ``bf16``, ``fp16``, ``none``."""
    channels_last: bool = True
    """Channels-last memory format for image models on CUDA."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``."""
    seed: int = 0
    """Seed of weights init, shuffling and augmentation."""
    eval_every: int = 0
    """Evaluate on dev every N optimiser steps (0: at the end of each epoch)."""
    early_stop: int = 0
    """Stop after this many evaluations without a better dev AUROC (0: never)."""
    log_every: int = 10
    """Write a training-loss line to metrics.jsonl every N optimiser steps."""
    save_every: int = 0
    """Also write last.pt every N optimiser steps (0: at each evaluation and epoch end only)."""
    threads: int = 0
    """torch CPU threads (0: torch's default)."""
    out: str = ""
    """Run folder (empty: runs/<config name>); ``--out`` sets it too."""
    progress: bool = True
    """Show tqdm progress bars (rank 0)."""


@dataclass
class EvalConfig:
    """Evaluation on dev (during training) and test (at the end)."""

    batch_size: int = 64
    """Images per batch / most windows per batch at evaluation."""
    max_tokens: int = 16384
    """Text: most padded tokens per evaluation batch."""
    test_at_end: bool = True
    """Evaluate the best checkpoint on the test split at the end, when there is one."""


@dataclass
class Config:
    """The whole config: four groups."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    name: str = ""
    """Run name (default: the config file's stem)."""


_GROUPS = ("data", "model", "train", "eval")


def _suggest(key: str, options: list[str]) -> str:
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(options))}"


def _all_keys() -> list[str]:
    keys = ["name"]
    for g in _GROUPS:
        cls = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}[g]
        keys += [f"{g}.{f.name}" for f in fields(cls)]
    return keys


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert a YAML / command-line value to the field's type, or raise ConfigError naming the key."""
    origin = get_origin(hint)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if hint is str:
            if value is None:
                return ""
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if origin is list:
            (inner,) = get_args(hint)
            if isinstance(value, str):
                value = yaml.safe_load(value) if value.strip().startswith("[") else [v for v in value.split(",") if v]
            if value is None:
                return []
            if not isinstance(value, list):
                value = [value]
            return [_coerce(v, inner, key) for v in value]
        if origin is dict:
            kt, vt = get_args(hint)
            if isinstance(value, str):
                value = yaml.safe_load(value)
            if value is None:
                return {}
            if not isinstance(value, dict):
                raise ValueError
            return {_coerce(k, kt, key): _coerce(v, vt, key) for k, v in value.items()}
    except (ValueError, TypeError, yaml.YAMLError):
        pass
    else:
        if origin is None and hint not in (bool, int, float, str):
            return value
    tname = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{key}: found {value!r}, expected {tname}")


def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def config_from_dict(d: dict[str, Any]) -> Config:
    """Build a Config from a mapping of groups (``{"train": {"epochs": 3}}``) and/or dotted keys."""
    cfg = Config()
    flat: dict[str, Any] = {}
    for k, v in (d or {}).items():
        k = str(k)
        if k in _GROUPS:
            if v is None:
                continue
            if not isinstance(v, dict):
                raise ConfigError(f"{k}: expected a mapping of {k} fields, found {type(v).__name__}")
            for kk, vv in v.items():
                flat[f"{k}.{kk}"] = vv
        else:
            flat[k] = v
    for k, v in flat.items():
        _set(cfg, k, v)
    return cfg


def _set(cfg: Config, key: str, value: Any) -> None:
    known = _all_keys()
    if key not in known:
        raise ConfigError(f"unknown config key {key!r}{_suggest(key, known)}")
    if key == "name":
        cfg.name = _coerce(value, str, key)
        return
    group, fname = key.split(".", 1)
    obj = getattr(cfg, group)
    hint = _hints(type(obj))[fname]
    setattr(obj, fname, _coerce(value, hint, key))


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``key=value`` overrides (``train.epochs=3``); values are parsed as YAML scalars/lists."""
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"--set {ov!r}: expected KEY=VALUE, e.g. train.epochs=3")
        key, raw = ov.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, (int, float, bool)) or value is None:
            # keep strings that YAML would turn into numbers when the field is a str (e.g. a path "1")
            hint = _field_hint(key)
            if hint is str:
                value = raw
        _set(cfg, key, value)
    return cfg


def _field_hint(key: str) -> Any:
    if key == "name":
        return str
    if "." not in key:
        return None
    group, fname = key.split(".", 1)
    cls = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}.get(group)
    return _hints(cls).get(fname) if cls else None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config file (or the defaults when ``path`` is None) and apply ``--set`` overrides.

    Relative source paths in ``data`` stay as written: they are resolved against the working
    directory when the data is read (shipped configs are written relative to the repository root).
    """
    d: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} not found")
        loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level, found {type(loaded).__name__}")
        d = loaded or {}
    cfg = config_from_dict(d)
    if not cfg.name and path is not None:
        cfg.name = Path(path).stem
    apply_overrides(cfg, overrides or [])
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain data (what config.yaml in a run folder holds)."""
    return dataclasses.asdict(cfg)
