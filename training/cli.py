"""``aigc train CONFIG [--set k=v ...] [--out RUN_DIR] [--resume | --overwrite]`` (also ``python -m training`` / ``torchrun -m training``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["add_arguments", "main", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="YAML config (configs/*.yaml); with --resume, defaults to RUN_DIR/config.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--out", default=None, help="run folder: new or empty (default: train.out, else "
                        "runs/<config name>)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt "
                      "(only train.epochs, train.max_steps and settings that cannot change results may differ)")
    mode.add_argument("--overwrite", action="store_true", help="replace the run folder --out of an earlier aigc "
                      "train (never a folder it did not write)")


def run(args: argparse.Namespace) -> int:
    """Train; returns 0, or 2 with a one-line message for config, data and NaN errors."""
    from training.config import ConfigError, load_config
    from training.data import DataError
    from training.loop import NonFiniteLossError
    from training.run import fit

    try:
        config = args.config
        if config is None:
            if not (args.resume and args.out):
                print("aigc train: give a CONFIG file (or --resume --out RUN_DIR)", file=sys.stderr)
                return 2
            config = str(Path(args.out) / "config.yaml")
        cfg = load_config(config, args.overrides)
        out = fit(cfg, args.out, resume=args.resume, overwrite=getattr(args, "overwrite", False),
                  config_path=config)
    except (ConfigError, DataError, NonFiniteLossError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"aigc train: {e}", file=sys.stderr)
        return 2
    print(f"run folder: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m training`` and ``torchrun -m training``; tests call ``main([...])``."""
    parser = argparse.ArgumentParser(prog="python -m training", description="train a detector from a config")
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(parser.parse_args(argv))
