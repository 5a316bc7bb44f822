"""Commands that need the train extra say so in one line when it is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCK = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "timm", "transformers", "torchvision", "datasets"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
from aigc.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("cmd", [["train", "configs/x.yaml"], ["export", "run", "--out", "b"], ["list-models"]])
def test_train_extra_missing_is_one_line(cmd: list[str]) -> None:
    r = subprocess.run([sys.executable, "-c", BLOCK, *cmd], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert f"aigc {cmd[0]}: needs the train extra" in lines[0]
    assert "pip install" in lines[0]


def test_no_command_prints_help() -> None:
    r = subprocess.run([sys.executable, "-m", "aigc"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    for name in ("score", "info", "eval", "train", "export", "list-models", "quickstart"):
        assert name in r.stdout
