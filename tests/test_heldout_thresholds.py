"""Domain-held-out thresholds: ``zeroshot:features`` training writes ``heldout_scores.json`` (each training text
scored by a head fitted without its domain), and ``aigc export --worst-group domain --heldout-thresholds`` raises
each ``fpr@X`` to hold X on every domain's humans of those scores too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from export import threshold_fit  # noqa: E402
from training.heldout_scores import HELDOUT_FILE, domain_heldout_scores  # noqa: E402
from training.lmfeatures import fit_logistic  # noqa: E402

pytestmark = pytest.mark.train


def test_each_domain_is_scored_by_a_head_fitted_on_the_others() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 5))
    y = (x[:, 0] + 0.5 * rng.normal(size=90) > 0).astype(int)
    dom = ["a"] * 30 + ["b"] * 30 + ["c"] * 30
    s, skipped = domain_heldout_scores(lambda xx, yy, _d: fit_logistic(xx, yy, 2.0), x, y, dom)
    assert skipped == {} and np.isfinite(s).all()
    d = np.asarray(dom)
    for name in ("a", "b", "c"):
        mean, std, w, b = fit_logistic(x[d != name], y[d != name], 2.0)
        np.testing.assert_allclose(s[d == name], ((x[d == name] - mean) / std) @ w + b, rtol=0, atol=1e-12)
    # a domain whose complement lacks a class is left unscored, and says why
    y2 = y.copy()
    y2[d != "c"] = 0
    s2, skipped2 = domain_heldout_scores(lambda xx, yy, _d: fit_logistic(xx, yy, 2.0), x, y2, dom)
    assert list(skipped2) == ["c"] and "60 human and 0 ai" in skipped2["c"]
    assert np.isnan(s2[d == "c"]).all() and np.isfinite(s2[d != "c"]).all()


@pytest.mark.slow
def test_training_writes_heldout_scores_and_export_raises_thresholds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("export.cli")
    from test_zeroshot_pipeline import train_features_run

    import aigc
    from aigc._calibration import apply_calibration
    from aigc._thresholds import choose_worst_group_thresholds
    from aigc.cli import main as aigc_main
    from training.lmfeatures import LikelihoodFeatures
    from training.run import load_run

    seen: list[tuple[np.ndarray, np.ndarray]] = []
    fit_head = LikelihoodFeatures.fit_head

    def spy(self: LikelihoodFeatures, features: np.ndarray, labels: np.ndarray, domains: Any = None) -> dict[str, Any]:
        seen.append((np.array(features), np.array(labels)))
        return fit_head(self, features, labels, domains)

    monkeypatch.setattr(LikelihoodFeatures, "fit_head", spy)
    *_, run = train_features_run(tmp_path, {}, "heldout-test", 120, max_windows=2, domains=("news", "web"))
    monkeypatch.undo()
    (feats, y), = seen

    # the shipped head is the one fitted on every training text, as before
    lr = load_run(run)
    mean, std, w, b = fit_logistic(feats, y, lr.model.l2)
    assert torch.equal(lr.model.head_weight, torch.as_tensor(w, dtype=torch.float32))
    assert torch.equal(lr.model.feat_mean, torch.as_tensor(mean, dtype=torch.float32))
    assert torch.equal(lr.model.feat_std, torch.as_tensor(std, dtype=torch.float32))
    assert float(lr.model.head_bias) == float(torch.tensor(b, dtype=torch.float32))

    # one finite row per fitted training text, each scored by a head fitted without its domain
    doc = json.loads((run / HELDOUT_FILE).read_text())
    assert doc["by"] == "domain" and doc["method"].startswith("each training text scored by a head fitted without")
    rows = doc["rows"]
    assert len(rows) == len(y) and [r["label"] for r in rows] == y.tolist()
    assert all(np.isfinite(r["score"]) for r in rows) and {r["domain"] for r in rows} == {"news", "web"}
    train = [json.loads(x) for x in (run / "splits" / "train.jsonl").read_text().splitlines()]
    assert [r["domain"] for r in rows] == [r["domain"] for r in train]  # every training text has features here
    want, _ = domain_heldout_scores(lambda xx, yy, _d: fit_logistic(xx, yy, lr.model.l2), feats, y,
                                    [r["domain"] for r in rows])
    np.testing.assert_allclose([r["score"] for r in rows], want, rtol=0, atol=1e-12)

    # export: calibration on the dev and test splits (not training items), worst group by domain
    cal = tmp_path / "cal.jsonl"
    held_out = [json.loads(x) for name in ("dev", "test") for x in (run / "splits" / f"{name}.jsonl").read_text().splitlines()]
    cal.write_text("".join(json.dumps({"text": r["item"], "label": r["label"], "domain": r["domain"]}) + "\n"
                           for r in held_out), encoding="utf-8")
    base = ["export", str(run), "--calibration-data", str(cal), "--worst-group", "domain", "--targets", "0.05,0.2"]
    assert aigc_main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert aigc_main([*base, "--out", str(tmp_path / "held"), "--heldout-thresholds"]) == 0
    assert "domain-held-out training scores: threshold" in capsys.readouterr().out
    plain = json.loads((tmp_path / "plain" / "bundle.json").read_text())
    det = aigc.load(tmp_path / "held", providers="cpu")
    spec = det.spec
    assert spec["calibration"] == plain["calibration"]
    raw_h = np.asarray([r["score"] for r in rows])
    p_h = apply_calibration(raw_h, spec["calibration"])
    p_cal = det.predict_proba([r["item"] for r in held_out])[:, 1]
    y_cal = np.asarray([r["label"] for r in held_out])
    by_hand = choose_worst_group_thresholds(p_h, y, [r["domain"] for r in rows], "domain", (0.05, 0.2))
    for name in ("fpr@5%", "fpr@20%"):
        t, t0 = spec["thresholds"][name], plain["thresholds"][name]
        assert t["value"] == pytest.approx(max(t0["value"], by_hand[name]["value"]), rel=1e-12, abs=1e-15)
        assert t["value"] >= t0["value"]
        h = t["heldout"]
        assert h["value"] == pytest.approx(by_hand[name]["value"], rel=1e-12, abs=1e-15)
        assert h["n_human"] == int((y == 0).sum()) and set(h["groups"]) == {"news", "web"}
        assert h["set_by"] in {"news", "web", "all domains pooled"} and "left_out_domains" not in h
        assert max(g["threshold"] for g in h["groups"].values()) <= h["value"] + 1e-15
        assert h["source"] == threshold_fit.HELDOUT_SOURCE and "without their domain" in h["source"]
        assert t["rule"].startswith("the higher of the worst group of domain on the calibration split")
        # the record's statistics are those of the final value on the calibration split
        assert t["achieved_fpr"] == pytest.approx(float(np.mean(p_cal[y_cal == 0] >= t["value"])), abs=1e-9)
    # on this data the held-out scores raise fpr@5% (the unseen domain's humans score higher) and not fpr@20%
    assert spec["thresholds"]["fpr@5%"]["value"] > plain["thresholds"]["fpr@5%"]["value"]
    assert spec["thresholds"]["fpr@5%"]["rule"].endswith("(the held-out scores')")
    assert spec["thresholds"]["balanced"] == plain["thresholds"]["balanced"]
    from aigc.cli._info import render_card

    assert "fpr@5% vs the domain-held-out training scores (threshold" in render_card(spec)
    res = det.score([r["item"] for r in held_out[:4]], threshold="fpr@5%")
    assert [r.threshold for r in res] == [spec["thresholds"]["fpr@5%"]["value"]] * 4

    # one domain left out of the held-out scores: the thresholds rest on the other's humans, and say so
    assert aigc_main([*base, "--out", str(tmp_path / "skip"), "--heldout-thresholds", "--heldout-skip-domain", "news"]) == 0
    skip = json.loads((tmp_path / "skip" / "bundle.json").read_text())
    web = [r["domain"] == "web" for r in rows]
    by_web = choose_worst_group_thresholds(p_h[web], y[web], ["web"] * sum(web), "domain", (0.05, 0.2))
    n_news = sum(not w for w in web)
    for name in ("fpr@5%", "fpr@20%"):
        h = skip["thresholds"][name]["heldout"]
        assert set(h["groups"]) == {"web"} and h["n_human"] == int((y[web] == 0).sum())
        assert h["left_out_domains"] == {"news": f"left out by --heldout-skip-domain ({n_news} rows)"}
        assert h["value"] == pytest.approx(by_web[name]["value"], rel=1e-12, abs=1e-15)


def _export(run_dir: Path, *extra: str) -> int:
    from aigc.cli import main as aigc_main

    return aigc_main(["export", str(run_dir), "--out", str(run_dir.parent / "bundle"), *extra])


def test_flag_without_worst_group_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("export.cli")
    assert _export(tmp_path, "--heldout-thresholds") == 2
    err = capsys.readouterr().err
    assert "--heldout-thresholds" in err and "--worst-group" in err


def test_run_without_the_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("export.cli")
    run = tmp_path / "run"
    run.mkdir()
    assert _export(run, "--worst-group", "domain", "--heldout-thresholds") == 2
    err = capsys.readouterr().err
    assert f"the run has no {run / HELDOUT_FILE}" in err and "zeroshot:features" in err


@pytest.mark.parametrize(("content", "what"), [
    ("{not json", "is not readable JSON"),
    (json.dumps({"by": "group", "rows": []}), 'expected an object with "by": "domain"'),
    (json.dumps({"by": "domain", "rows": [{"domain": "a", "label": 2, "score": 0.1}]}), "rows[0] is"),
    (json.dumps({"by": "domain", "rows": [{"domain": "a", "label": 0, "score": None}]}), "a finite number"),
])
def test_malformed_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, what: str) -> None:
    pytest.importorskip("export.cli")
    run = tmp_path / "run"
    run.mkdir()
    (run / HELDOUT_FILE).write_text(content, encoding="utf-8")
    assert _export(run, "--worst-group", "domain", "--heldout-thresholds") == 2
    err = capsys.readouterr().err
    assert str(run / HELDOUT_FILE) in err and what in err


def test_build_options_refuse_too_few_heldout_humans() -> None:
    pytest.importorskip("export.cli")
    from aigc._thresholds import ThresholdError
    from export.build_options import BuildOptions, refuse_early

    y = np.asarray([0, 1] * 60)
    held = (np.zeros(10), np.zeros(10, dtype=np.int64), ["a"] * 10)
    with pytest.raises(ThresholdError, match=r"--heldout-thresholds: target FPR 0.05 needs at least 19 humans"):
        refuse_early(y, "platt", BuildOptions(targets=(0.05,), worst_group_column="domain", heldout_scores=held))
    with pytest.raises(ValueError, match="need worst_group_column"):
        refuse_early(y, "platt", BuildOptions(targets=(0.05,), heldout_scores=held))
    many = (np.zeros(60), np.zeros(60, dtype=np.int64), ["a"] * 10 + ["b"] * 50)
    refuse_early(y, "platt", BuildOptions(targets=(0.05,), worst_group_column="domain", heldout_scores=many))
    few = (np.zeros(60), np.zeros(60, dtype=np.int64), [f"d{i % 4}" for i in range(60)])  # 15 humans each
    with pytest.raises(ThresholdError, match=r"--heldout-thresholds \(the domain-held-out training scores\): .*no group"):
        refuse_early(y, "platt", BuildOptions(targets=(0.05,), worst_group_column="domain", heldout_scores=few))
