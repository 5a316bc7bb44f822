"""training: turn a config into a trained run folder that export/ reads (docs/contracts.md).

>>> from training import load_run, read_split, list_models
>>> run = load_run("runs/minilm")           # LoadedRun: model, preprocessing, tokenizer_file, ...
>>> rows = read_split("runs/minilm", "dev")  # [{"item", "label", "generator", "domain", "source", "group"}]

Train with ``aigc train CONFIG [--set k=v ...] [--out RUN_DIR] [--resume]``, ``python -m training ...`` or
``torchrun --nproc-per-node N -m training ...``.
"""

from __future__ import annotations

from training.cli import main
from training.config import Config, ConfigError, load_config
from training.registry import create_model, list_models, register_model
from training.run import LoadedRun, fit, load_run, read_split

__all__ = [
    "Config",
    "ConfigError",
    "LoadedRun",
    "create_model",
    "fit",
    "list_models",
    "load_config",
    "load_run",
    "main",
    "read_split",
    "register_model",
]
