"""Every metric against an oracle: scikit-learn where it has one, a direct loop where it has not,
and the weighted (bootstrap) path against the plain metric on explicitly resampled data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aigc import metrics as M

sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn (dev extra) is the oracle")


def _data(seed: int, n: int = 300, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + 0.8 * y
    if ties:
        s = np.round(s, 1)
    p = 1 / (1 + np.exp(-s))
    return y, p


SEEDS = [0, 1, 2, 3]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_auroc_ap_match_sklearn(seed: int, ties: bool) -> None:
    y, p = _data(seed, ties=ties)
    assert M.auroc(y, p) == pytest.approx(sk.roc_auc_score(y, p), abs=1e-12)
    assert M.average_precision(y, p) == pytest.approx(sk.average_precision_score(y, p), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_curve_matches_sklearn(seed: int) -> None:
    y, p = _data(seed, ties=True)
    fpr, tpr, thr = M.roc_curve(y, p)
    f2, t2, th2 = sk.roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2)
    np.testing.assert_allclose(tpr, t2)
    np.testing.assert_allclose(thr[1:], th2[1:])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("target", [0.001, 0.01, 0.05, 0.2])
def test_tpr_at_fpr_matches_sklearn_curve(seed: int, target: float) -> None:
    y, p = _data(seed, n=2000, ties=seed % 2 == 1)
    tpr, fpr, thr = M.tpr_at_fpr(y, p, target)
    f2, t2, _ = sk.roc_curve(y, p, drop_intermediate=False)
    ok = f2 <= target
    assert tpr == pytest.approx(t2[ok].max())
    assert fpr <= target
    # the threshold reproduces the operating point
    if math.isfinite(thr):
        pred = p >= thr
        assert pred[y == 1].mean() == pytest.approx(tpr)
        assert pred[y == 0].mean() == pytest.approx(fpr)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("t", [0.3, 0.5, 0.8])
def test_threshold_metrics_match_sklearn(seed: int, t: float) -> None:
    y, p = _data(seed)
    pred = (p >= t).astype(int)
    m = M.threshold_metrics(y, p, t)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(sk.precision_score(y, pred, zero_division=np.nan))
    assert m["recall"] == pytest.approx(sk.recall_score(y, pred))
    assert m["f1"] == pytest.approx(sk.f1_score(y, pred))
    np.testing.assert_array_equal(M.confusion(y, p, t), sk.confusion_matrix(y, pred, labels=[0, 1]))
    tn, fp = sk.confusion_matrix(y, pred)[0]
    assert m["fpr"] == pytest.approx(fp / (fp + tn))


def test_threshold_metrics_per_item_thresholds() -> None:
    y, p = _data(5)
    t = np.where(np.arange(y.size) % 2 == 0, 0.4, 0.7)
    pred = (p >= t).astype(int)
    assert M.threshold_metrics(y, p, t)["f1"] == pytest.approx(sk.f1_score(y, pred))


def test_precision_nan_when_nothing_flagged() -> None:
    y = np.array([0, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4])
    m = M.threshold_metrics(y, p, 0.9)
    assert math.isnan(m["precision"]) and m["recall"] == 0 and m["fpr"] == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_brier_nll_match_sklearn(seed: int) -> None:
    y, p = _data(seed)
    assert M.brier(y, p) == pytest.approx(sk.brier_score_loss(y, p))
    assert M.nll(y, p) == pytest.approx(sk.log_loss(y, p))
    assert M.w_brier(y, p)[0] == pytest.approx(sk.brier_score_loss(y, p))
    assert M.w_nll(y, p)[0] == pytest.approx(sk.log_loss(y, p))


def _ece_loop(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> tuple[float, float]:
    edges = np.linspace(0, 1, n_bins + 1)
    e, m = 0.0, 0.0
    for b in range(n_bins):
        sel = (p >= edges[b]) & ((p < edges[b + 1]) if b < n_bins - 1 else (p <= 1))
        if sel.any():
            g = abs(p[sel].mean() - y[sel].mean())
            e += sel.sum() / y.size * g
            m = max(m, g)
    return e, m


def _adaptive_loop(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    o = np.argsort(p, kind="mergesort")
    total = 0.0
    for chunk in np.array_split(o, n_bins):
        if chunk.size:
            total += chunk.size * abs(p[chunk].mean() - y[chunk].mean())
    return total / y.size


@pytest.mark.parametrize("seed", SEEDS)
def test_ece_mce_against_loop_and_sklearn_curve(seed: int) -> None:
    from sklearn.calibration import calibration_curve

    y, p = _data(seed, n=1000)
    e, m = _ece_loop(y, p)
    assert M.ece(y, p) == pytest.approx(e)
    assert M.mce(y, p) == pytest.approx(m)
    assert M.adaptive_ece(y, p) == pytest.approx(_adaptive_loop(y, p))
    # sklearn's reliability curve agrees with ours on the non-empty bins
    frac, mean_p = calibration_curve(y, p, n_bins=15, strategy="uniform")
    rb = M.reliability_bins(y, p)
    ours = [(a, b) for a, b in zip(rb["frac_ai"], rb["mean_p"], strict=True) if a is not None]
    np.testing.assert_allclose([a for a, _ in ours], frac)
    np.testing.assert_allclose([b for _, b in ours], mean_p)
    assert sum(rb["count"]) == y.size


def test_ece_perfectly_calibrated_is_small() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    assert M.ece(y, p) < 0.01 and M.adaptive_ece(y, p) < 0.01


@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_equals_resampled(seed: int) -> None:
    """The bootstrap path (weights) gives the plain metric of the explicitly resampled data."""
    y, p = _data(seed, n=157, ties=True)
    rng = np.random.default_rng(seed)
    W = np.stack([np.bincount(rng.integers(0, y.size, y.size), minlength=y.size) for _ in range(6)]).astype(float)
    W[0] = 0
    W[0, :5] = 3  # a replicate with few distinct items
    W[0, y == 1] += 1
    W[0, np.flatnonzero(y == 0)[:3]] += 2
    fns = {
        "auroc": (M.w_auroc, M.auroc),
        "ap": (M.w_average_precision, M.average_precision),
        "brier": (M.w_brier, M.brier),
        "nll": (M.w_nll, M.nll),
        "ece": (M.w_ece, M.ece),
        "mce": (M.w_mce, M.mce),
        "aece": (M.w_adaptive_ece, M.adaptive_ece),
    }
    for r in range(W.shape[0]):
        idx = np.repeat(np.arange(y.size), W[r].astype(int))
        for name, (wf, f) in fns.items():
            assert wf(y, p, W)[r] == pytest.approx(f(y[idx], p[idx]), abs=1e-12), name
        for target in (0.01, 0.1):
            got = [a[r] for a in M.w_tpr_at_fpr(y, p, target, W)]
            want = M.tpr_at_fpr(y[idx], p[idx], target)
            np.testing.assert_allclose(got, want)
        got_t = {k: v[r] for k, v in M.w_threshold_metrics(y, p, 0.6, W).items()}
        want_t = M.threshold_metrics(y[idx], p[idx], 0.6)
        for k in want_t:
            np.testing.assert_allclose(got_t[k], want_t[k], err_msg=k)


def test_bootstrap_deterministic_stratified_and_covers() -> None:
    y, p = _data(0, n=400)
    chunks = list(M.bootstrap_weights(y, n_boot=50, seed=3, max_cells=400 * 7))
    assert sum(c.shape[0] for c in chunks) == 50 and len(chunks) > 1
    W = np.concatenate(chunks)
    assert (W[:, y == 1].sum(axis=1) == (y == 1).sum()).all()  # stratified: class sizes kept
    assert (W[:, y == 0].sum(axis=1) == (y == 0).sum()).all()
    W2 = np.concatenate(list(M.bootstrap_weights(y, n_boot=50, seed=3)))
    np.testing.assert_array_equal(W, W2)  # chunking does not change the draws
    r1 = M.bootstrap(y, lambda W: M.w_auroc(y, p, W), n_boot=300, seed=1)
    r2 = M.bootstrap(y, lambda W: M.w_auroc(y, p, W), n_boot=300, seed=1)
    np.testing.assert_array_equal(r1, r2)
    lo, hi = M.percentile_ci(r1)
    assert lo < M.auroc(y, p) < hi
    assert hi - lo < 0.15
    out = M.bootstrap(y, lambda W: {"a": M.w_auroc(y, p, W), "b": M.w_brier(y, p, W)}, n_boot=20)
    assert set(out) == {"a", "b"} and out["a"].shape == (20,)


def test_bootstrap_by_group_resamples_whole_groups() -> None:
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(60), 3)  # 60 groups of 3 items, one class per group
    y = np.repeat(np.r_[np.zeros(25, int), np.ones(35, int)], 3)
    W = np.concatenate(list(M.bootstrap_weights(y, n_boot=40, seed=1, groups=groups, max_cells=180 * 9)))
    per_group = W.reshape(40, 60, 3)
    assert (per_group == per_group[:, :, :1]).all()  # a group's items are drawn together
    assert (per_group[:, :, 0].sum(axis=1) == 60).all()  # 60 draws of groups each replicate
    assert (per_group[:, :25, 0].sum(axis=1) == 25).all()  # stratified: 25 human groups, 35 AI groups
    W2 = np.concatenate(list(M.bootstrap_weights(y, n_boot=40, seed=1, groups=list(groups))))
    np.testing.assert_array_equal(W, W2)  # labels as a list, other chunking: the same draws
    pairs = np.repeat(np.arange(90), 2)  # each group holds a human text and the machine text continuing it
    yp = np.tile([0, 1], 90)
    Wp = np.concatenate(list(M.bootstrap_weights(yp, n_boot=30, seed=2, groups=pairs)))
    assert (Wp[:, 0::2] == Wp[:, 1::2]).all() and (Wp.sum(axis=1) == 180).all()
    assert len({float(r) for r in Wp[:, yp == 1].sum(axis=1)}) == 1  # pairs keep the classes balanced
    s = rng.normal(size=180) + yp
    r = M.bootstrap(yp, lambda W: M.w_auroc(yp, s, W), n_boot=50, groups=pairs)
    assert r.shape == (50,) and np.isfinite(r).all()
    with pytest.raises(ValueError, match="3 group labels for 180 items"):
        next(M.bootstrap_weights(yp, groups=[0, 1, 2]))


def test_bootstrap_by_group_tracks_the_spread_of_a_paired_design() -> None:
    """Pairs whose two texts share a topic effect: the group bootstrap's spread is near the true sampling
    spread (Monte Carlo over fresh data sets); resampling items as independent overstates it."""

    def sample(rng: np.random.Generator, n: int = 80) -> tuple[np.ndarray, np.ndarray]:
        shared = np.repeat(rng.normal(size=n), 2)
        y = np.tile([0, 1], n)
        return y, shared + 0.8 * y + 0.5 * rng.normal(size=2 * n)

    rng = np.random.default_rng(0)
    true_sd = np.std([M.auroc(*sample(rng)) for _ in range(300)])
    y, s = sample(np.random.default_rng(1))
    pairs = np.repeat(np.arange(80), 2)
    sd_pairs = np.std(M.bootstrap(y, lambda W: M.w_auroc(y, s, W), n_boot=400, groups=pairs))
    sd_items = np.std(M.bootstrap(y, lambda W: M.w_auroc(y, s, W), n_boot=400))
    assert abs(sd_pairs - true_sd) < 0.25 * true_sd
    assert sd_items > 1.4 * true_sd


def test_bootstrap_by_group_widens_the_interval_of_correlated_items() -> None:
    """Each text scored three times (three near-copies in a group): resampling items as if independent
    gives an interval about sqrt(3) too narrow; resampling groups does not."""
    rng = np.random.default_rng(8)
    yg = np.r_[np.zeros(80, int), np.ones(80, int)]
    sg = rng.normal(size=160) + 0.8 * yg
    y, s = np.repeat(yg, 3), np.repeat(sg, 3) + rng.normal(scale=0.01, size=480)
    groups = np.repeat(np.arange(160), 3)

    def width(**kw: object) -> float:
        lo, hi = M.percentile_ci(M.bootstrap(y, lambda W: M.w_auroc(y, s, W), n_boot=400, seed=0, **kw))
        return hi - lo

    lo_g, hi_g = M.percentile_ci(M.bootstrap(yg, lambda W: M.w_auroc(yg, sg, W), n_boot=400, seed=0))
    assert width(groups=groups) > 1.4 * width()
    assert abs(width(groups=groups) - (hi_g - lo_g)) < 0.3 * (hi_g - lo_g)  # as wide as the 160 texts alone


def test_bootstrap_ci_coverage_roughly_nominal() -> None:
    """Simulated coverage of the AUROC percentile interval is near 95% (loose bounds, fixed seeds)."""
    rng = np.random.default_rng(11)
    true = 0.5 * (1 + math.erf(1.0 / 2))  # AUROC of N(0,1) vs N(1,1): Phi(1/sqrt(2))
    hits = 0
    trials = 60
    for t in range(trials):
        y = np.r_[np.zeros(150, int), np.ones(150, int)]
        s = rng.normal(size=300) + y
        lo, hi = M.percentile_ci(M.bootstrap(y, lambda W, y=y, s=s: M.w_auroc(y, s, W), n_boot=300, seed=t))
        hits += lo <= true <= hi
    assert 0.85 <= hits / trials <= 1.0


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (3, 1000), (0, 1), (37, 80)])
def test_clopper_pearson_and_wilson_match_scipy(k: int, n: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    lo, hi = M.clopper_pearson(k, n)
    want_lo = 0.0 if k == 0 else stats.beta.ppf(0.025, k, n - k + 1)
    want_hi = 1.0 if k == n else stats.beta.ppf(0.975, k + 1, n - k)
    assert lo == pytest.approx(want_lo, abs=1e-9) and hi == pytest.approx(want_hi, abs=1e-9)
    z = stats.norm.ppf(0.975)
    ph = k / n
    c = (ph + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    wl, wh = M.wilson_interval(k, n)
    assert wl == pytest.approx(max(0, c - h), abs=1e-9) and wh == pytest.approx(min(1, c + h), abs=1e-9)
    assert math.isnan(M.clopper_pearson(0, 0)[0])


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="both classes"):
        M.auroc(np.ones(3), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="NaN"):
        M.brier(np.array([0, 1]), np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="3 items"):
        M.auroc(np.array([0, 1, 1]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="0 .human. or 1"):
        M.auroc(np.array([0, 2]), np.array([0.1, 0.2]))
    # a weighted row lacking a class is NaN, not an exception (tiny bootstrap slices)
    assert math.isnan(M.w_auroc(np.array([0, 1]), np.array([0.1, 0.2]), np.array([[1.0, 0.0]]))[0])


def test_ranking_metrics_in_one_pass_agree() -> None:
    y, p = _data(4, n=500, ties=True)
    W = np.concatenate(list(M.bootstrap_weights(y, n_boot=7, seed=2)))
    r = M.w_ranking_metrics(y, p, W, targets=(0.01, 0.05))
    np.testing.assert_allclose(r["auroc"], M.w_auroc(y, p, W))
    np.testing.assert_allclose(r["ap"], M.w_average_precision(y, p, W))
    for t in (0.01, 0.05):
        tpr, fpr, _ = M.w_tpr_at_fpr(y, p, t, W)
        np.testing.assert_allclose(r[f"tpr@{t:g}"], tpr)
        np.testing.assert_allclose(r[f"fpr@{t:g}"], fpr)
