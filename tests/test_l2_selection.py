"""``model.l2_grid``: the ``zeroshot:features`` head's penalty chosen by leave-one-domain-out on the training
split (``training.lmhead.choose_l2``), in the shipped head and inside each fit of ``heldout_scores.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aigc.metrics import auroc  # noqa: E402
from training.heldout_scores import HELDOUT_FILE, domain_heldout_scores  # noqa: E402
from training.lmhead import choose_l2, fit_logistic  # noqa: E402

pytestmark = pytest.mark.train


def _noisy(n_per: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Four domains; feature 0 carries the label (each domain shifted), features 1-60 are noise that a weak
    penalty fits on ~120 training texts."""
    rng = np.random.default_rng(seed)
    xs, ys, ds = [], [], []
    for k, d in enumerate(("a", "b", "c", "d")):
        y = np.arange(n_per) % 2
        x = rng.normal(size=(n_per, 61))
        x[:, 0] += 1.0 * (2 * y - 1) + 0.5 * k
        xs.append(x)
        ys.append(y)
        ds += [d] * n_per
    return np.vstack(xs), np.concatenate(ys), ds


def _brute_force(x: np.ndarray, y: np.ndarray, dom: list[str], grid: list[float]) -> float:
    d = np.asarray(dom)
    best = None
    for lam in sorted(grid):
        aucs = []
        for name in sorted(set(dom)):
            mean, std, w, b = fit_logistic(x[d != name], y[d != name], lam)
            aucs.append(auroc(y[d == name], ((x[d == name] - mean) / std) @ w + b))
        if best is None or np.mean(aucs) >= best[0]:
            best = (float(np.mean(aucs)), lam)
    assert best is not None
    return best[1]


def test_choose_l2_takes_the_best_mean_held_out_domain_auroc() -> None:
    x, y, dom = _noisy()
    grid = [0.01, 1.0, 1000.0]
    l2, info = choose_l2(lambda a, b, lam: fit_logistic(a, b, lam), x, y, dom, grid, fallback=7.0)
    assert l2 == _brute_force(x, y, dom, grid)
    assert info["l2"] == l2 and info["chosen_by"].startswith("leave-one-domain-out")
    assert set(info["auroc"]) == {"0.01", "1", "1000"} and all(set(v) == {"a", "b", "c", "d"} for v in info["auroc"].values())
    means = {k: np.mean(list(v.values())) for k, v in info["auroc"].items()}
    assert means[f"{l2:g}"] == max(means.values())
    # the weakest penalty fits the noise: it is not the one chosen
    assert l2 > 0.01 and means["0.01"] < means[f"{l2:g}"]
    # worst=True (the benches' other criterion) takes the highest lowest held-out AUROC instead
    lw, info_w = choose_l2(lambda a, b, lam: fit_logistic(a, b, lam), x, y, dom, grid, fallback=7.0, worst=True)
    lows = {k: min(v.values()) for k, v in info_w["auroc"].items()}
    assert lows[f"{lw:g}"] == max(lows.values()) and info_w["chosen_by"] == "leave-one-domain-out lowest AUROC"


def test_choose_l2_ties_go_to_the_larger_penalty_and_one_domain_falls_back() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 1))
    y = (x[:, 0] + rng.normal(size=80) > 0).astype(int)
    dom = ["a", "b"] * 40
    # one feature: every penalty ranks the held-out texts alike, so all tie
    l2, info = choose_l2(lambda a, b, lam: fit_logistic(a, b, lam), x, y, dom, [0.1, 10.0, 3.0], fallback=7.0)
    assert l2 == 10.0 and len(set(map(lambda v: round(float(np.mean(list(v.values()))), 9), info["auroc"].values()))) == 1
    l2, info = choose_l2(lambda a, b, lam: fit_logistic(a, b, lam), x, y, ["a"] * 80, [0.1, 10.0], fallback=7.0)
    assert l2 == 7.0 and info["chosen_by"] == "model.l2" and "need 2" in info["why"]
    with pytest.raises(ValueError, match="grid of penalties is empty"):
        choose_l2(lambda a, b, lam: fit_logistic(a, b, lam), x, y, dom, [], fallback=1.0)
    with pytest.raises(ValueError, match="80 labels, 3 domains"):
        choose_l2(lambda a, b, lam: fit_logistic(a, b, lam), x, y, ["a", "b", "c"], [1.0], fallback=1.0)


def test_a_domain_too_small_to_rank_is_never_held_out_but_stays_in_every_fit() -> None:
    x, y, dom = _noisy()
    rng = np.random.default_rng(5)
    tiny = rng.normal(size=(4, x.shape[1]))
    x2, y2, dom2 = np.vstack([x, tiny]), np.concatenate([y, [0, 1, 0, 1]]), [*dom, *["tiny"] * 4]
    grid = [0.01, 1.0, 1000.0]
    seen_n: list[int] = []

    def fit_at(a: np.ndarray, b: np.ndarray, lam: float) -> Any:
        seen_n.append(len(b))
        return fit_logistic(a, b, lam)

    l2, info = choose_l2(fit_at, x2, y2, dom2, grid, fallback=7.0, min_per_label=3)
    assert all(set(v) == {"a", "b", "c", "d"} for v in info["auroc"].values())  # 2 of each label: not held out
    assert set(seen_n) == {len(y2) - 40}  # each fit leaves out one 40-text domain and keeps the tiny one
    _, with_tiny = choose_l2(fit_at, x2, y2, dom2, grid, fallback=7.0, min_per_label=2)
    assert all("tiny" in v for v in with_tiny["auroc"].values())
    # no domain holds 21 texts of each label: the choice falls back to model.l2 and says why
    l2, info = choose_l2(fit_at, x, y, dom, grid, fallback=7.0, min_per_label=21)
    assert l2 == 7.0 and "21 or more texts of each label" in info["why"]


def test_heldout_fits_choose_their_penalty_among_the_remaining_domains() -> None:
    from test_zeroshot import make_lm

    from training.lmfeatures import FEATURE_NAMES, LikelihoodFeatures

    x, y, dom = _noisy(seed=3)
    grid = [0.01, 1.0, 1000.0]
    model = LikelihoodFeatures(make_lm(40, 0), l2=5.0, l2_grid=grid)
    s, skipped = domain_heldout_scores(model.head_arrays, x, y, dom)
    assert skipped == {}
    d = np.asarray(dom)
    chosen = []
    for name in ("a", "b", "c", "d"):
        rest = [v for v in dom if v != name]
        lam = _brute_force(x[d != name], y[d != name], rest, grid)
        chosen.append(lam)
        mean, std, w, b = fit_logistic(x[d != name], y[d != name], lam)
        np.testing.assert_allclose(s[d == name], ((x[d == name] - mean) / std) @ w + b, rtol=0, atol=1e-10)
    x7 = x[:, :len(FEATURE_NAMES)]  # the module's buffers hold the seven statistics' head
    info = model.fit_head(x7, y, dom)
    assert info["l2"] == _brute_force(x7, y, dom, grid) and info["l2_selection"]["l2"] == info["l2"]
    # without l2_grid the penalty is model.l2 and the log says nothing of a choice
    plain = LikelihoodFeatures(make_lm(40, 0), l2=5.0)
    assert "l2_selection" not in plain.fit_head(x7, y, dom) and plain.fit_head(x7, y)["l2"] == 5.0
    with pytest.raises(ValueError, match="expected finite values >= 0"):
        LikelihoodFeatures(make_lm(40, 0), l2_grid=[-1.0, 1.0])
    assert LikelihoodFeatures(make_lm(40, 0), l2=0.0).l2 == 0.0  # an unpenalised head stays allowed, as before


@pytest.mark.slow
def test_training_with_l2_grid_logs_the_choice_and_ships_its_head(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("export.cli")
    from test_zeroshot_pipeline import train_features_run

    from training.lmfeatures import LikelihoodFeatures
    from training.run import load_run

    seen: list[tuple[np.ndarray, np.ndarray, Any]] = []
    fit_head = LikelihoodFeatures.fit_head

    def spy(self: LikelihoodFeatures, features: np.ndarray, labels: np.ndarray, domains: Any = None) -> dict[str, Any]:
        seen.append((np.array(features), np.array(labels), list(domains)))
        return fit_head(self, features, labels, domains)

    monkeypatch.setattr(LikelihoodFeatures, "fit_head", spy)
    grid = [0.01, 3.0, 300.0]
    *_, run = train_features_run(tmp_path, {"l2": 9.0, "l2_grid": grid}, "l2-grid", 90, max_windows=1,
                                 domains=("news", "web", "blog"))
    monkeypatch.undo()
    (feats, y, dom), = seen
    assert set(dom) == {"news", "web", "blog"}
    want = _brute_force(feats, y, dom, grid)
    line = next(json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines() if '"fit_head"' in s)
    assert line["l2"] == want and line["l2_selection"]["chosen_by"].startswith("leave-one-domain-out")
    assert set(line["l2_selection"]["auroc"]) == {f"{v:g}" for v in grid}
    lr = load_run(run)
    mean, std, w, b = fit_logistic(feats, y, want)
    np.testing.assert_allclose(lr.model.head_weight.numpy(), w, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(lr.model.feat_mean.numpy(), mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(lr.model.feat_std.numpy(), std, rtol=1e-6, atol=1e-6)
    assert abs(float(lr.model.head_bias) - b) < 1e-5
    assert lr.model.l2_grid == tuple(grid) and lr.model.l2 == 9.0
    rows = json.loads((run / HELDOUT_FILE).read_text())["rows"]
    ref, _ = domain_heldout_scores(lr.model.head_arrays, feats, y, dom)
    np.testing.assert_allclose([r["score"] for r in rows], ref[np.isfinite(ref)], rtol=0, atol=1e-9)


@pytest.mark.parametrize("l2", [0.5, 10.0, 1000.0])
def test_more_features_than_texts_gives_the_direct_solution(l2: float) -> None:
    """With more features than texts ``fit_logistic`` solves in the texts' span (an (n + 1)-square system a step);
    the same texts given twice (weights are rescaled to sum to the number of texts, so the loss counts double) at
    twice the penalty pose the same problem with more texts than features, which the direct (F + 1)-square form
    solves: both must give the same head."""
    rng = np.random.default_rng(3)
    n, f = 50, 80
    x = rng.normal(size=(n, f)) * rng.uniform(0.2, 4.0, f) + rng.normal(size=f)
    y = (x[:, 0] / x[:, 0].std() + rng.normal(size=n) > 0).astype(int)
    sw = rng.uniform(0.3, 2.0, n)
    mean, std, w, b = fit_logistic(x, y, l2, sample_weight=sw)
    mean2, std2, w2, b2 = fit_logistic(np.vstack([x, x]), np.r_[y, y], 2 * l2, sample_weight=np.r_[sw, sw])
    assert np.allclose(mean, mean2) and np.allclose(std, std2)
    assert np.abs(w - w2).max() < 1e-7 and abs(b - b2) < 1e-7
    assert np.abs(w).max() > 1e-3  # a head was fitted, not the zero start
