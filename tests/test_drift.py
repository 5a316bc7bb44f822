"""The calibration score histogram (aigc._drift): bins, PSI, the field written by export, old bundles."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from aigc._drift import EDGES, histogram_counts, psi, read_histogram, score_histogram


def test_edges_are_fixed_and_logit_spaced() -> None:
    assert len(EDGES) == 17 and EDGES[0] == 0.0 and EDGES[-1] == 1.0
    assert all(b > a for a, b in itertools.pairwise(EDGES))
    assert EDGES[8] == 0.5 and EDGES[1] == pytest.approx(1 / (1 + math.exp(7)), rel=1e-6)


def test_histogram_counts_edges_and_nan() -> None:
    c = histogram_counts([0.0, 0.5, 0.4999, 1.0, float("nan"), 0.99999])
    assert c.sum() == 5 and c[0] == 1 and c[8] == 1 and c[7] == 1 and c[-1] == 2


def test_psi_is_zero_for_the_same_distribution_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    a = histogram_counts(rng.beta(1, 8, 5000))
    b = histogram_counts(rng.beta(1, 8, 5000))
    c = histogram_counts(rng.beta(4, 2, 5000))
    assert psi(a, a) == 0.0
    assert psi(a, b) < 0.05 < 1.0 < psi(a, c)
    # by hand on two bins: (0.5-0.9) ln(0.5/0.9) + (0.5-0.1) ln(0.5/0.1)
    assert psi([9, 1], [5, 5]) == pytest.approx(-0.4 * math.log(0.5 / 0.9) + 0.4 * math.log(5.0), rel=1e-9)
    assert math.isnan(psi([1, 2], [0, 0]))
    # a NaN count gave NaN (with a RuntimeWarning) and a negative one a large "shift"; both are errors now
    for bad in ([float("nan"), 1.0], [-1.0, 5.0], [float("inf"), 1.0]):
        with pytest.raises(ValueError, match="NaN, infinite or negative"):
            psi(bad, [5, 5])
        with pytest.raises(ValueError, match="actual histogram"):
            psi([5, 5], bad)


def test_score_histogram_field_and_old_bundles() -> None:
    h = score_histogram([0.01, 0.02, 0.9, 0.95, 0.99], [0, 0, 1, 1, 0])
    assert h["version"] == 1 and h["n_human"] == 3 and h["n_ai"] == 2 and sum(h["ai"]) == 2
    assert read_histogram({"score_histogram": h}) is h
    assert read_histogram({}) is None  # a bundle exported before the field: drift unavailable
    assert read_histogram({"score_histogram": {**h, "version": 2}}) is None
    assert read_histogram({"score_histogram": {**h, "human": [1, 2]}}) is None
    with pytest.raises(ValueError, match="labels"):
        score_histogram([0.1, 0.2], [0])


@pytest.mark.train
@pytest.mark.slow
def test_export_writes_the_histogram_of_the_calibration_scores(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from _export_tiny import image_run, write_images

    import aigc
    from aigc._calibration import apply_calibration
    from export import BuildOptions, build_bundle

    items, labels = write_images(tmp_path / "imgs", n_per_class=60)
    out = build_bundle(image_run(), tmp_path / "b", items, labels, options=BuildOptions(targets=[0.05]))
    det = aigc.load(out)
    h = read_histogram(det.spec)
    assert h is not None and h["n_human"] == 60 and h["n_ai"] == 60
    raw, _ = det.raw_scores(items)
    p = apply_calibration(raw, det.spec["calibration"])
    y = np.array(labels)
    assert h["human"] == histogram_counts(p[y == 0]).tolist() and h["ai"] == histogram_counts(p[y == 1]).tolist()
