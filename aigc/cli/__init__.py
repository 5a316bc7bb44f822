"""The ``aigc`` command. Each subcommand lives in its own module with two functions:
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when their command runs,
so ``aigc score`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

__all__ = ["COMMANDS", "main"]

# name -> (module, one-line help, needs the train extra)
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "score": ("aigc.cli._score", "score images or texts with a bundle", False),
    "info": ("aigc.cli._info", "show a bundle's card", False),
    "eval": ("aigc.report.cli", "evaluate bundles on labelled data and write a report", False),
    "calibrate": ("aigc.cli._calibrate", "re-threshold a bundle on your own (human) data into a new bundle", False),
    "provenance": ("aigc.cli._provenance", "show what image files declare about their origin (C2PA, IPTC, EXIF, PNG)", False),
    "serve": ("aigc.serve.cli", "serve bundles over HTTP (the serve extra)", False),
    "export-triton": ("aigc.triton", "write a Triton Inference Server model repository for a bundle", False),
    "train": ("training.cli", "train a detector from a config", True),
    "continue-humans": ("training.continuations", "continue your own human texts with small local LMs into labelled "
                        "pairs for training (your domain's machine texts)", True),
    "list-models": ("training.cli_list", "list the registered model names", True),
    "export": ("export.cli", "export a trained run to a calibrated bundle", True),
    "quickstart": ("training.quickstart", "build demo data, train, export, score and report, offline", True),
}

_HEAVY = ("torch", "transformers", "timm", "datasets", "onnx", "onnxscript", "torchvision")


def _missing_extra() -> str | None:
    """The first package of the train extra that cannot be found, or None (nothing is imported)."""
    import importlib.util

    for m in ("torch", "transformers", "timm", "onnx"):
        try:
            if importlib.util.find_spec(m) is None:
                return m
        except (ModuleNotFoundError, ValueError):
            return m
    return None


def _load(name: str):  # type: ignore[no-untyped-def]
    module, _, heavy = COMMANDS[name]
    missing = _missing_extra() if heavy else None
    if missing is None:
        try:
            return importlib.import_module(module)
        except ModuleNotFoundError as e:
            root = (e.name or "").split(".")[0]
            if not (heavy and root in _HEAVY):
                raise
            missing = root
    print(
        f"aigc {name}: needs the train extra ({missing} is not installed): "
        "pip install torch==2.14.1 torchvision==0.29.1 && pip install 'aigc-sentinel[train]'",
        file=sys.stderr,
    )
    raise SystemExit(2)


class _OneLineErrors(argparse.ArgumentParser):
    """Argument errors as one line (``aigc score: argument --threads: ...``) and exit 2, without the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    def v(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    from aigc import __version__

    ort = next((f"{d} {v(d)}" for d in ("onnxruntime", "onnxruntime-gpu") if v(d) != "not installed"), "onnxruntime not installed")
    return f"aigc {__version__} (aigc-sentinel; {ort}; python {sys.version.split()[0]})"


class _VersionAction(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kw: object) -> None:
        print(_version())
        parser.exit(0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``aigc``; returns the exit code (tests call ``main([...])``).

    A closed standard output (``aigc info B | head``) ends the command quietly with 141 (128 + SIGPIPE).
    """
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader went away: send what Python still wants to flush to /dev/null, and say nothing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _OneLineErrors(prog="aigc", description="Detect AI-generated images and text.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_, _) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    # Parse the command name first, then let only that command's module build its parser.
    pre, _rest = parser.parse_known_args(argv)
    if pre.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO if pre.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    mod = _load(pre.command)
    cmd_parser = _OneLineErrors(prog=f"aigc {pre.command}", description=COMMANDS[pre.command][1])
    mod.add_arguments(cmd_parser)
    idx = argv.index(pre.command)
    args = cmd_parser.parse_args(argv[idx + 1 :])
    return int(mod.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
