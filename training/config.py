"""Training configs: dataclasses grouped by concern, loaded from flat YAML, overridden by ``--set``.

A config file has up to four sections (``data``, ``model``, ``train``, ``eval``), each a flat mapping
of field names to values; dotted keys at the top level (``train.epochs: 3``) work too. There is no
inheritance and nothing runs as code. Unknown keys are an error that names the key and suggests the
closest known one.

This module holds the dataclasses, the key table (aliases for typo suggestions), the merging of a file's
sections and dotted keys, and ``--set``. Reading the YAML (duplicate keys refused, YAML 1.1 words kept as
written) and converting values to field types are in ``training.config_yaml``; ``ConfigError``,
``parse_yaml`` and ``read_config_file`` are re-exported from there.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from training.config_yaml import ConfigError, _coerce, _line, _Plain, _value, parse_yaml, read_config_file

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
    "parse_yaml",
    "read_config_file",
]


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
    extra_train: list[str] = field(default_factory=list)
    """More training sources (same kinds as ``train``) whose every sample goes to the training split: never held
    out (``holdout_values`` do not apply to them), split off as dev or test, or dropped by ``max_train``; e.g.
    your own domain's pairs from ``aigc continue-humans``. Their groups are their own (``group_by``); an item that
    is also in dev or test is counted and refused like any leak."""
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
    normalize: str = "nfc_strip_zw_fold_ws"
    """What is done to a text before tokenising, in training and in the bundle (``preprocessing.normalize``,
    docs/bundle.md): ``nfc_strip_zw_fold_ws`` reads Cyrillic/Greek look-alikes inside Latin words as Latin and
    makes whitespace runs one space; ``nfc_strip_zw`` gives bundles that runtimes before that mode can read;
    ``none``."""
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
    hidden_probe: str = ""
    """``zeroshot:features`` only: ``backbone`` or ``companion`` adds that LM's hidden states, averaged over each
    window's tokens, to the head's features (training/hidden_probe.py: far better ranking of unseen generators,
    thresholds that do not carry to unseen domains or languages; calibrate on your own humans)."""
    hidden_layer: int = 0
    """``hidden_probe``: the block whose output is read (0: the middle one)."""
    head_components: int = 0
    """``hidden_probe``: fit the head on the states' first N principal components (0: one weight per state)."""
    l2: float = 1.0
    """``zeroshot:features``: the closed-form head's L2 penalty on its standardised weights (a few hundred with
    ``hidden_probe`` and ``head_components`` 0); with ``l2_grid``, the fallback when fewer than two training
    domains hold 10 texts of each label."""
    l2_grid: list[float] = field(default_factory=list)
    """``zeroshot:features``: choose ``l2`` from these values by leave-one-domain-out on the training split (the
    highest mean AUROC on each domain left out; ties to the larger), again inside each fit of
    ``heldout_scores.json``; the choice goes to metrics.jsonl. Empty: ``l2`` as given."""
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
_CLASSES: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}

# other names people write for a field (matched on the field's own name, in any group)
_ALIASES: dict[str, tuple[str, ...]] = {
    "lr": ("learning_rate", "base_lr", "rate"), "batch_size": ("batch", "bs", "batchsize"),
    "epochs": ("epoch", "num_epochs", "num_train_epochs"), "max_steps": ("steps", "total_steps", "max_iters"),
    "grad_accum": ("gradient_accumulation_steps", "accum_steps"), "warmup_steps": ("warmup",),
    "weight_decay": ("wd",), "clip_grad": ("max_grad_norm", "grad_clip"), "amp": ("precision", "fp16", "bf16"),
    "early_stop": ("patience", "early_stopping"), "num_workers": ("workers",), "drop_rate": ("dropout",),
    "max_length": ("max_len", "max_seq_length", "seq_len"), "input_size": ("image_size", "img_size"),
}


def _suggest(key: str, options: list[str]) -> str:
    """'; did you mean X?' by, in order: the name or an alias in the same group, a close name there, the
    name or an alias in another group, a close name anywhere; else the known keys."""
    group, _, name = key.rpartition(".")

    def names(opt: str) -> tuple[str, ...]:
        field_name = opt.rpartition(".")[2]
        return (field_name, *_ALIASES.get(field_name, ()))

    def score(opt: str) -> float:
        return max(difflib.SequenceMatcher(None, name.lower(), n).ratio() for n in names(opt))

    same = [o for o in options if o.rpartition(".")[0] == group]
    tiers = ((same, 1.0), (same, 0.75), (options, 1.0), (options, 0.6))
    for opts, cutoff in tiers:
        scored = sorted(((score(o), o in same, o) for o in opts), reverse=True)
        if scored and scored[0][0] >= cutoff:
            return f"; did you mean {scored[0][2]!r}?"
    if group in _GROUPS:
        return f"; known {group} keys: {', '.join(sorted(same))}"
    return "; known top-level keys: name and the sections data, model, train, eval (or dotted: train.epochs)"


def _all_keys() -> list[str]:
    keys = ["name"]
    for g in _GROUPS:
        keys += [f"{g}.{f.name}" for f in fields(_CLASSES[g])]
    return keys


def config_from_dict(d: dict[str, Any]) -> Config:
    """Build a Config from a mapping of groups (``{"train": {"epochs": 3}}``) and/or dotted keys; a field
    given both ways (``train.epochs: 5`` and ``train: {epochs: 2}``) is an error."""
    cfg = Config()
    flat: dict[str, Any] = {}
    where: dict[str, str] = {}
    for k, v in (d or {}).items():
        if str(k) in _GROUPS:
            if _value(v) is None:
                continue
            if not isinstance(v, dict):
                raise ConfigError(f"{k}: expected a mapping of {k} fields, found {type(_value(v)).__name__}")
            items = [(f"{k}.{kk}", vv, f"{str(kk)!r} under '{k}:'{_line(kk)}") for kk, vv in v.items()]
        else:
            items = [(str(k), v, f"{str(k)!r}{_line(k)}")]
        for fk, fv, w in items:
            if fk in where:
                raise ConfigError(f"{fk} is given twice: as {where[fk]} and as {w}; keep one")
            where[fk], flat[fk] = w, fv
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
    hint = get_type_hints(type(obj))[fname]
    setattr(obj, fname, _coerce(value, hint, key))


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``key=value`` overrides (``train.epochs=3``); values are parsed as YAML scalars/lists, except
    that a string field takes the text as written (``data.train=0123`` is "0123", ``no`` is "no")."""
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"--set {ov!r}: expected KEY=VALUE, e.g. train.epochs=3")
        key, raw = ov.split("=", 1)
        key = key.strip()
        try:
            value = parse_yaml(raw, f"--set {key}") if raw.strip() else ""
        except ConfigError:
            value = raw
        if _field_hint(key) is str and (isinstance(value, _Plain) or value is None):
            value = raw
        _set(cfg, key, value)
    return cfg


def _field_hint(key: str) -> Any:
    if key == "name":
        return str
    if "." not in key:
        return None
    group, fname = key.split(".", 1)
    cls = _CLASSES.get(group)
    return get_type_hints(cls).get(fname) if cls else None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config file (or the defaults when ``path`` is None) and apply ``--set`` overrides.

    Relative source paths in ``data`` stay as written: they are resolved against the working
    directory when the data is read (shipped configs are written relative to the repository root).
    """
    try:
        cfg = config_from_dict(read_config_file(path) if path is not None else {})
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path is not None and not str(e).startswith(str(path)) else str(e)) from None
    if not cfg.name and path is not None:
        cfg.name = Path(path).stem
    apply_overrides(cfg, overrides or [])
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain data (what config.yaml in a run folder holds)."""
    return dataclasses.asdict(cfg)
