"""Shared fixtures: tiny torch-free bundles, the shared data folder, determinism."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

# The longest files, longest first (`--durations` on 2 cores: the text e2e ~320 s, then 25-65 s each). `make test`
# runs the suite on two workers, one file per worker at a time (xdist's loadfile, in collection order): starting these
# first keeps a long file from running alone at the end while the other worker idles.
LONGEST_FILES = (
    "test_e2e_shared_text.py", "test_heldout_thresholds.py", "test_zeroshot.py", "test_lmfeatures.py",
    "test_score_once.py", "test_companion_lm.py", "test_e2e_shared_images.py", "test_training_ddp.py",
    "test_zeroshot_bundle.py", "test_external_data.py", "test_variant_calibration.py", "test_eval_cli.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the longest files first; the rest keep their order."""
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda it: rank.get(it.path.name, len(rank)))


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip with the reason."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA} (CI has it beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_image_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnx")
    from _bundles import build_bundle

    return build_bundle(tmp_path_factory.mktemp("bundles") / "image", "image")


@pytest.fixture(scope="session")
def tiny_text_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnx")
    from _bundles import build_bundle

    return build_bundle(tmp_path_factory.mktemp("bundles") / "text", "text")
