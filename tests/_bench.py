"""Load a bench script's `main` by file name (bench/ is scripts, not a package)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1] / "bench"


def bench_main(name: str) -> Callable[[list[str]], int]:
    """`main` of bench/<name>.py, loaded afresh under the module name `name`."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec and spec.loader, f"bench/{name}.py not found"
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main  # type: ignore[no-any-return]


def e2e_summary(out: Path, *flags: str) -> dict[str, Any]:
    """Run bench/e2e_shared.py into ``out`` with ``flags`` (it must succeed) and return its summary.json."""
    assert bench_main("e2e_shared")(["--out", str(out), *flags]) == 0
    return json.loads((out / "summary.json").read_text())  # type: ignore[no-any-return]
