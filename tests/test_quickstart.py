"""The quickstart's offline demo data and its refusal to touch a folder it did not make."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")


def test_human_passages_are_prose() -> None:
    from training.demo_data import human_passages

    ps = human_passages(50)
    assert len(ps) == 50 and len(set(ps)) == 50
    for p in ps:
        assert 35 <= len(p.split()) <= 110
        assert ">>>" not in p and "\n" not in p


def test_demo_images_two_classes_from_disjoint_crops(tmp_path: Path) -> None:
    from training.demo_data import build_demo_images

    out = build_demo_images(tmp_path / "img", size=32, per_photo=4, ae_steps=3)
    real = sorted((out / "real").glob("*.png"))
    ai = sorted((out / "ai" / "autoencoder").glob("*.png"))
    assert len(real) == len(ai) > 0
    assert not {p.name for p in real} & {p.name for p in ai}
    for p in real[:2] + ai[:2]:
        arr = np.asarray(Image.open(p))
        assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8
    mtime = real[0].stat().st_mtime
    build_demo_images(out, size=32, per_photo=4, ae_steps=3)  # reused, not rebuilt
    assert real[0].stat().st_mtime == mtime


def test_quickstart_never_touches_a_foreign_folder(tmp_path: Path) -> None:
    from training.quickstart import add_arguments, run

    (tmp_path / "mine.txt").write_text("precious")
    p = argparse.ArgumentParser()
    add_arguments(p)
    with pytest.raises(SystemExit, match="was not made by the quickstart"):
        run(p.parse_args(["--out", str(tmp_path)]))
    assert (tmp_path / "mine.txt").read_text() == "precious"
