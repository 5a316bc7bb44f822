"""``aigc list-models``: the registered model names, their modality and a line of help."""

from __future__ import annotations

import argparse

__all__ = ["PRESET_MODALITY", "add_arguments", "run"]

# the modality each weights preset serves (a test checks that every preset is listed; one that is not is
# shown for every modality)
PRESET_MODALITY = {"efficientnet-lite0": "image", "minilm-l6": "text", "smollm2": "text",
                   "qwen2.5-coder-0.5b": "text", "qwen2.5-coder-1.5b": "text", "gemma3-270m": "text"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--modality", choices=["image", "text"], default=None, help="only this modality")


def run(args: argparse.Namespace) -> int:
    from training.registry import MODELS, list_models
    from training.weights import list_presets

    names = list_models(args.modality)
    width = max((len(n) + 6 for n in names), default=10)
    for n in names:
        e = MODELS[n]
        shown = n + ("<name>" if e.family else "")
        print(f"{shown:<{width}} {e.modality:<6} {e.help}")
    print("\nweights presets (model.pretrained: preset:<name>, or hf:preset:<name>):")
    for k, v in list_presets().items():
        if args.modality is None or PRESET_MODALITY.get(k, args.modality) == args.modality:
            print(f"  {k:<20} {v}")
    return 0
