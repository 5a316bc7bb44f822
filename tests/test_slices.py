"""Slices and the fairness slice: counts, the AUROC reference for one-class groups, small-slice marking,
exact intervals, per-item thresholds, and the length / resolution buckets."""

from __future__ import annotations

import numpy as np
import pytest

from aigc import metrics as M
from aigc.report.slices import fairness_table, length_bucket, resolution_bucket, slice_table


def _data(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray, list[str | None], list[str | None]]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + 1.5 * y
    p = 1 / (1 + np.exp(-s))
    domain = [["news", "essays", "rare"][k] for k in rng.choice(3, size=n, p=[0.6, 0.37, 0.03])]
    gen: list[str | None] = ["human" if v == 0 else ("g1" if i % 2 else "g2") for i, v in enumerate(y)]
    domain[0] = None  # an item with no domain is in no domain group
    return y, p, domain, gen


def test_slice_counts_and_within_auroc() -> None:
    y, p, domain, _ = _data()
    rows = slice_table(y, p, domain, {"t": 0.5}, min_n=30, n_boot=200, seed=1)
    assert [r["group"] for r in rows] == ["news", "essays", "rare"]  # by size
    assert sum(r["n"] for r in rows) == y.size - 1
    d = np.array(domain, dtype=object)
    for r in rows:
        m = d == r["group"]
        assert r["n_human"] == int(((y == 0) & m).sum()) and r["n_ai"] == int(((y == 1) & m).sum())
        a = r["auroc"]
        assert a["reference"] == "within"
        assert a["value"] == pytest.approx(M.auroc(y[m], p[m]))
        assert a["ci"][0] <= a["value"] <= a["ci"][1]
        t = r["thresholds"]["t"]
        assert t["tpr"]["value"] == pytest.approx(((p >= 0.5) & m & (y == 1)).sum() / r["n_ai"])
        assert t["fpr"]["value"] == pytest.approx(((p >= 0.5) & m & (y == 0)).sum() / r["n_human"])
        assert list(t["fpr"]["ci"]) == pytest.approx(M.clopper_pearson(t["fpr"]["k"], t["fpr"]["n"]))
    rare = rows[-1]
    assert rare["auroc"]["small"] and rare["thresholds"]["t"]["tpr"]["small"]  # shown, marked, not dropped
    assert not rows[0]["auroc"]["small"]


def test_one_class_groups_ranked_against_the_other_class() -> None:
    y, p, _, gen = _data()
    rows = {r["group"]: r for r in slice_table(y, p, gen, {"t": 0.5}, n_boot=50)}
    g = np.array(gen, dtype=object)
    m = (g == "g1") | (y == 0)
    assert rows["g1"]["auroc"]["reference"] == "vs all human items"
    assert rows["g1"]["auroc"]["value"] == pytest.approx(M.auroc(y[m], p[m]))
    assert rows["human"]["auroc"]["reference"] == "vs all AI items"
    assert rows["human"]["auroc"]["value"] == pytest.approx(M.auroc(y, p))
    assert rows["g1"]["thresholds"]["t"]["fpr"]["value"] is None  # no human in a generator group
    assert rows["g1"]["thresholds"]["t"]["fpr"]["small"]


def test_slice_bootstrap_deterministic_and_none_when_zero() -> None:
    y, p, domain, _ = _data()
    a = slice_table(y, p, domain, {"t": 0.5}, n_boot=100, seed=3)
    b = slice_table(y, p, domain, {"t": 0.5}, n_boot=100, seed=3)
    assert a == b
    only_h = slice_table(np.zeros(5, int), np.linspace(0, 1, 5), ["x"] * 5, {"t": 0.5}, n_boot=10)
    assert only_h[0]["auroc"]["value"] is None and only_h[0]["auroc"]["small"]


def test_per_item_thresholds() -> None:
    y, p, domain, _ = _data()
    thr = np.where(np.array(domain, dtype=object) == "news", 0.7, 0.4)
    rows = {r["group"]: r for r in slice_table(y, p, domain, {"g": thr}, n_boot=10)}
    d = np.array(domain, dtype=object)
    m = d == "news"
    assert rows["news"]["thresholds"]["g"]["tpr"]["value"] == pytest.approx(((p >= 0.7) & m & (y == 1)).sum() / (m & (y == 1)).sum())
    m = d == "essays"
    assert rows["essays"]["thresholds"]["g"]["tpr"]["value"] == pytest.approx(((p >= 0.4) & m & (y == 1)).sum() / (m & (y == 1)).sum())


def test_fairness_fpr_of_every_human_group() -> None:
    y, p, domain, _ = _data()
    fair = fairness_table(y, p, domain, {"t": 0.5, "strict": 0.9}, min_n=30)
    d = np.array(domain, dtype=object)
    h = y == 0
    assert fair["overall"]["t"]["value"] == pytest.approx(((p >= 0.5) & h).sum() / h.sum())
    assert fair["overall"]["t"]["n"] == int(h.sum())
    groups = {r["group"]: r for r in fair["groups"]}
    assert set(groups) == {"news", "essays", "rare"}
    for g, r in groups.items():
        m = h & (d == g)
        assert r["n_human"] == int(m.sum())
        k = int(((p >= 0.5) & m).sum())
        assert r["fpr"]["t"]["k"] == k
        assert r["fpr"]["t"]["value"] == pytest.approx(k / m.sum())
        lo, hi = r["fpr"]["t"]["ci"]
        assert (lo, hi) == pytest.approx(M.clopper_pearson(k, int(m.sum())))
    assert groups["rare"]["fpr"]["t"]["small"] and not groups["news"]["fpr"]["t"]["small"]
    # the ratio ignores small groups
    big = [groups[g]["fpr"]["t"]["value"] for g in ("news", "essays")]
    assert fair["max_ratio"]["t"] == pytest.approx(max(big) / fair["overall"]["t"]["value"])


def test_fairness_ignores_ai_items_and_zero_counts_get_an_upper_bound() -> None:
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.9, 0.95])
    fair = fairness_table(y, p, ["a", "a", "b", "b", "c"], {"t": 0.5}, min_n=2)
    assert [r["group"] for r in fair["groups"]] == ["a", "b"]  # c holds only AI items
    a = fair["groups"][0]["fpr"]["t"]
    assert a["value"] == 0 and a["ci"][0] == 0 and 0.5 < a["ci"][1] < 1  # 0/2: upper bound still wide


@pytest.mark.parametrize(("n", "want"), [(None, None), (0, "<64 tok"), (63, "<64 tok"), (64, "64-127 tok"), (200, "128-255 tok"),
                                          (300, "256-511 tok"), (10_000, "512+ tok")])  # fmt: skip
def test_length_bucket(n: int | None, want: str | None) -> None:
    assert length_bucket(n) == want


def test_resolution_bucket() -> None:
    assert resolution_bucket(100, 4000) == "<256 px"
    assert resolution_bucket(256, 300) == "256-511 px"
    assert resolution_bucket(1000, 600) == "512-1023 px"
    assert resolution_bucket(4000, 3000) == "1024+ px"
    assert resolution_bucket(None, 10) is None
