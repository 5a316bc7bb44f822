"""The model registry: one plain dict from name to factory, filled by a decorator.

A factory is a plain function ``fn(cfg: ModelConfig) -> nn.Module``. Image models take
``pixel_values`` (N,3,H,W) and return logits (N,2); text models take ``input_ids`` and
``attention_mask`` (N,T) and return logits (N,2). A module may declare ``output_kind = "score"``
(zero-shot statistics returning (N,)); the default is ``"logits"``.

Names with a prefix family (``timm:<name>``, ``hf:<name or path>``) resolve to the family's factory.
The optional modules ``training.zeroshot`` and ``training.lmfeatures`` are imported on first use so
that their ``zeroshot:*`` models register themselves.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["MODELS", "ModelEntry", "create_model", "get_entry", "list_models", "register_model"]


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its factory, modality (image/text), help line and output kind."""

    name: str
    fn: Callable[[Any], Any]
    modality: str
    help: str
    output_kind: str = "logits"
    family: bool = False  # a prefix family such as "timm:" (the name is "timm:")


MODELS: dict[str, ModelEntry] = {}
_plugins_loaded = False


def register_model(
    name: str, modality: str, help: str = "", output_kind: str = "logits"
) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Decorator registering ``fn(cfg) -> nn.Module`` under ``name`` (a name ending in ':' is a prefix family)."""
    if modality not in ("image", "text"):
        raise ValueError(f"register_model({name!r}): modality must be 'image' or 'text', found {modality!r}")
    if output_kind not in ("logits", "score"):
        raise ValueError(f"register_model({name!r}): output_kind must be 'logits' or 'score', found {output_kind!r}")

    def deco(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        MODELS[name] = ModelEntry(name, fn, modality, help or (fn.__doc__ or "").strip().split("\n")[0],
                                  output_kind, name.endswith(":"))
        return fn

    return deco


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    importlib.import_module("training.models")  # the built-in models
    for mod in ("training.zeroshot", "training.lmfeatures"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


def list_models(modality: str | None = None) -> list[str]:
    """Registered names, sorted (families shown as ``timm:<name>`` / ``hf:<name or path>``)."""
    _load_plugins()
    return sorted(n for n, e in MODELS.items() if modality is None or e.modality == modality)


def get_entry(name: str) -> ModelEntry:
    """The registry entry for a model name, resolving prefix families; ValueError with a suggestion."""
    _load_plugins()
    if name in MODELS and not MODELS[name].family:
        return MODELS[name]
    if ":" in name:
        prefix = name.split(":", 1)[0] + ":"
        if prefix in MODELS and MODELS[prefix].family and len(name) > len(prefix):
            return MODELS[prefix]
    options = [n for n in MODELS if not MODELS[n].family] + [n + "<name>" for n in MODELS if MODELS[n].family]
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown model {name!r}{hint} (aigc list-models)")


def create_model(cfg: Any) -> Any:
    """Build the model named by ``cfg.name`` (a ModelConfig, or a bare name string for defaults).

    The module gets ``modality`` and ``output_kind`` attributes (the entry's unless the factory set them).
    """
    from training.config import ModelConfig

    if isinstance(cfg, str):
        cfg = ModelConfig(name=cfg)
    entry = get_entry(cfg.name)
    model = entry.fn(cfg)
    if not hasattr(model, "output_kind"):
        model.output_kind = entry.output_kind
    model.modality = entry.modality
    return model
