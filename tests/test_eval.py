"""Evaluation on arrays (metrics with intervals, paired comparison, robustness entries), data loading,
and the evaluation run with a fake detector (failures, per-group thresholds, common items)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from _eval_data import FakeDetector, write_image_folder, write_text_data

from aigc import metrics as M
from aigc.report import (
    EvalOptions,
    compare_scores,
    evaluate_scores,
    load_data,
    robustness_entry,
    run_evaluation,
)
from aigc.report.data import parse_label, stratified_sample


def _yp(seed: int = 0, n: int = 600, shift: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, 1 / (1 + np.exp(-(rng.normal(size=n) + shift * y - shift / 2)))


def test_evaluate_scores_points_match_metrics_and_intervals_cover() -> None:
    y, p = _yp()
    r = evaluate_scores(y, p, {"fpr@1%": 0.8, "balanced": 0.5}, n_boot=200, seed=0)
    assert r["n"] == y.size and r["n_human"] + r["n_ai"] == y.size
    assert r["auroc"]["value"] == pytest.approx(M.auroc(y, p))
    assert r["ap"]["value"] == pytest.approx(M.average_precision(y, p))
    for key, t in (("0.1%", 0.001), ("1%", 0.01), ("5%", 0.05)):
        tpr, fpr, _ = M.tpr_at_fpr(y, p, t)
        e = r["tpr_at_fpr"][key]
        assert e["tpr"]["value"] == pytest.approx(tpr) and e["achieved_fpr"]["value"] == pytest.approx(fpr)
        assert e["achieved_fpr"]["value"] <= t and e["target_fpr"] == t
        n_h = int((y == 0).sum())
        assert e["false_positives_allowed"] == int(n_h * t) and e["small"] == (n_h * t < 5)
    cal = r["calibration"]
    assert cal["ece"]["value"] == pytest.approx(M.ece(y, p))
    assert cal["ece_adaptive"]["value"] == pytest.approx(M.adaptive_ece(y, p))
    assert cal["mce"]["value"] == pytest.approx(M.mce(y, p))
    assert cal["brier"]["value"] == pytest.approx(M.brier(y, p))
    assert cal["nll"]["value"] == pytest.approx(M.nll(y, p))
    assert sum(cal["reliability"]["count"]) == y.size
    for name, t in (("fpr@1%", 0.8), ("balanced", 0.5)):
        e = r["thresholds"][name]
        want = M.threshold_metrics(y, p, t)
        for k in ("accuracy", "precision", "recall", "f1", "fpr"):
            assert e[k]["value"] == pytest.approx(want[k])
            lo, hi = e[k]["ci"]
            assert lo <= e[k]["value"] + 1e-12 and e[k]["value"] <= hi + 1e-12
        assert e["confusion"] == {"tn": want["tn"], "fp": want["fp"], "fn": want["fn"], "tp": want["tp"]}
        assert e["threshold"] == t
    for v in (r["auroc"], r["ap"], cal["ece"], cal["brier"]):
        assert v["ci"][0] <= v["value"] <= v["ci"][1]
    assert r == evaluate_scores(y, p, {"fpr@1%": 0.8, "balanced": 0.5}, n_boot=200, seed=0)  # deterministic
    assert evaluate_scores(y, p, {"b": 0.5}, n_boot=0)["auroc"]["ci"] is None
    json.dumps(r)  # JSON-ready


def test_evaluate_scores_refuses_nan_and_one_class() -> None:
    y, p = _yp()
    p[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_scores(y, p, {}, n_boot=0)
    with pytest.raises(ValueError, match="both classes"):
        evaluate_scores(np.ones(5, int), np.linspace(0, 1, 5), {}, n_boot=0)


def test_compare_identical_is_zero_and_not_significant() -> None:
    y, p = _yp()
    c = compare_scores(y, p, p, {"t": 0.5}, {"t": 0.5}, n_boot=100)
    for d in c["deltas"].values():
        assert d["delta"] == 0 and d["ci"] == [0, 0] and not d["significant"]
    assert "t recall" in c["deltas"] and "tpr@fpr1%" in c["deltas"]


def test_compare_paired_bootstrap_matches_explicit_resamples() -> None:
    y, p = _yp(1, n=300)
    rng = np.random.default_rng(5)
    q = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + rng.normal(0, 0.8, p.size))))  # a noisier detector
    c = compare_scores(y, p, q, {}, {}, n_boot=60, seed=9)
    d = c["deltas"]["auroc"]
    assert d["delta"] == pytest.approx(M.auroc(y, q) - M.auroc(y, p))
    W = np.concatenate(list(M.bootstrap_weights(y, 60, 9)))
    reps = []
    for w in W:
        idx = np.repeat(np.arange(y.size), w.astype(int))
        reps.append(M.auroc(y[idx], q[idx]) - M.auroc(y[idx], p[idx]))  # same resample for both: paired
    assert d["ci"] == pytest.approx(list(M.percentile_ci(np.array(reps))))
    assert d["delta"] < 0 and d["significant"] and d["higher_is_better"]
    assert not c["deltas"]["ece"]["higher_is_better"]


def test_compare_paired_interval_is_narrower_than_unpaired() -> None:
    """Two correlated detectors: the paired interval of the AUROC difference is much narrower than the
    width implied by their separate intervals, which is why the comparison is paired."""
    y, p = _yp(2, n=800)
    rng = np.random.default_rng(0)
    q = np.clip(p + rng.normal(0, 0.03, p.size), 0, 1)
    c = compare_scores(y, p, q, {}, {}, n_boot=200)["deltas"]["auroc"]
    a = evaluate_scores(y, p, {}, n_boot=200)["auroc"]["ci"]
    b = evaluate_scores(y, q, {}, n_boot=200, seed=1)["auroc"]["ci"]
    assert (c["ci"][1] - c["ci"][0]) < 0.5 * math.hypot(a[1] - a[0], b[1] - b[0])


def test_robustness_entry() -> None:
    y, p = _yp(3)
    same = robustness_entry(y, p, p, {"t": 0.5}, n_boot=50)
    assert same["delta_auroc"]["value"] == 0 and same["n_failed"] == 0
    assert same["thresholds"]["t"]["tpr"]["value"] == same["thresholds"]["t"]["tpr"]["clean"]
    rng = np.random.default_rng(0)
    noise = rng.uniform(size=p.size)
    noise[:7] = np.nan  # failed under the perturbation
    r = robustness_entry(y, p, noise, {"t": 0.5}, n_boot=100)
    assert r["n_failed"] == 7 and r["n"] == y.size - 7
    assert r["auroc"]["value"] == pytest.approx(M.auroc(y[7:], noise[7:]))
    assert r["delta_auroc"]["value"] == pytest.approx(M.auroc(y[7:], noise[7:]) - M.auroc(y[7:], p[7:]))
    assert r["delta_auroc"]["ci"][1] < 0
    t = r["thresholds"]["t"]["fpr"]
    assert t["ci"][0] <= t["value"] <= t["ci"][1]


@pytest.mark.parametrize(("v", "want"), [(0, 0), (1, 1), (True, 1), ("human", 0), ("AI", 1), ("fake", 1), ("real", 0),
                                          (" machine ", 1), ("1", 1), (2, None), ("maybe", None), (None, None)])  # fmt: skip
def test_parse_label(v: object, want: int | None) -> None:
    assert parse_label(v) == want


def test_parse_label_uses_bundle_labels() -> None:
    assert parse_label("Photo", ("photo", "render")) == 0 and parse_label("render", ("photo", "render")) == 1


def test_load_text_jsonl(tmp_path: Path) -> None:
    d = load_data(write_text_data(tmp_path / "d.jsonl", n=60), "text")
    assert len(d) == 61  # 60 rows and the empty text (it fails later, in scoring)
    assert [e for _, e in d.problems] == [
        "not valid JSON (Expecting property name enclosed in double quotes at column 2)",
        "label 'maybe' is neither human (0, human, real) nor AI (1, ai, fake)",
    ]
    assert d.problems[0][0] == "d.jsonl:61"
    assert set(d.fields) >= {"generator", "domain", "language", "native", "pair_id"}
    assert "pair_id" not in d.slice_fields() and "generator" in d.slice_fields()  # ids are not slices
    assert d.fields["native"][1] is None  # AI rows have no 'native'
    assert d.y.tolist()[:4] == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="no such file"):
        load_data(tmp_path / "missing.jsonl", "text")
    with pytest.raises(ValueError, match="folder is image data"):
        load_data(tmp_path, "text")


def test_load_text_custom_fields(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps({"body": "x", "is_ai": "ai"}) + "\n" + json.dumps({"text": "y", "is_ai": 0}) + "\n")
    d = load_data(f, "text", text_field="body", label_field="is_ai")
    assert d.items == ["x"] and "see --text-field" in d.problems[0][1]


def test_load_image_folder(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "imgs", n_per_class=6)
    d = load_data(root, "image")
    assert len(d) == 13 and int(d.y.sum()) == 7
    gen = dict(zip(d.ids, d.fields["generator"], strict=True))
    assert gen["ai/gan_0.png"] == "gan" and gen["ai/diffusion1_1.jpg"] == "diffusion1" and gen["real/indoor_0.png"] == "human"
    dom = dict(zip(d.ids, d.fields["domain"], strict=True))
    assert dom["real/outdoor_1.jpg"] == "outdoor" and dom["ai/gan_0.png"] is None
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match="real/"):
        load_data(tmp_path / "other", "image")


def test_load_image_subfolder_generators_and_lists(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "imgs", n_per_class=3, corrupt=False)
    (root / "ai" / "sdxl").mkdir()
    (root / "ai" / "gan_0.png").rename(root / "ai" / "sdxl" / "x.png")
    d = load_data(root, "image")
    assert dict(zip(d.ids, d.fields["generator"], strict=True))["ai/sdxl/x.png"] == "sdxl"
    rows = [{"path": "imgs/real/indoor_0.png", "label": "real", "camera": "a"}, {"path": str(root / "ai/sdxl/x.png"), "label": 1}]
    (tmp_path / "l.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    d = load_data(tmp_path / "l.jsonl", "image")
    assert d.items == [str(tmp_path / "imgs/real/indoor_0.png"), str(root / "ai/sdxl/x.png")]
    assert d.fields["camera"] == ["a", None]
    (tmp_path / "l.csv").write_text("path,label\nimgs/real/indoor_0.png,0\nimgs/ai/sdxl/x.png,fake\n")
    d = load_data(tmp_path / "l.csv", "image")
    assert d.y.tolist() == [0, 1] and d.items[0] == str(tmp_path / "imgs/real/indoor_0.png")


def test_stratified_sample() -> None:
    y = np.array([0] * 90 + [1] * 10)
    a = stratified_sample(y, 20, seed=1)
    assert a.size == 20 and (y[a] == 1).sum() == 2 and (np.diff(a) > 0).all()
    assert np.array_equal(a, stratified_sample(y, 20, seed=1))
    assert not np.array_equal(a, stratified_sample(y, 20, seed=2))
    assert stratified_sample(y, 500).size == 100
    b = stratified_sample(np.array([0] * 999 + [1]), 10)
    assert (np.array([0] * 999 + [1])[b] == 1).sum() == 1  # a rare class is kept


def _fake_data(n: int = 200, seed: int = 0) -> tuple[list[str], np.ndarray, dict[str, float]]:
    y, p = _yp(seed, n)
    items = [f"item{i}" for i in range(n)]
    return items, y, dict(zip(items, p.tolist(), strict=True))


def test_run_evaluation_reports_failures_and_compares_common_items(tmp_path: Path) -> None:
    from aigc.report.data import EvalData

    items, y, table = _fake_data()
    fields = {"domain": ["a" if i % 3 else "b" for i in range(len(items))]}
    data = EvalData("text", list(items), list(items), y, fields, [("row:9", "bad")], "mem")
    t2 = dict(table)
    for k in items[:5]:
        del t2[k]  # the second detector fails on five items
    t2 = {k: min(1.0, v * 1.1) for k, v in t2.items()}
    dets = [("A", "a", FakeDetector(table, name="A")), ("B", "b", FakeDetector(t2, name="B"))]
    opts = EvalOptions(n_boot=50, robustness=False, progress=False)
    m, scored, _ = run_evaluation(dets, data, opts)
    a, b = m["bundles"]
    assert a["failures"]["count"] == 0 and b["failures"]["count"] == 5
    assert b["failures"]["examples"][0] == {"id": "item0", "error": "unknown item"}
    assert b["failures"]["by_error"] == {"unknown item": 5}
    assert b["n_scored"] == len(items) - 5 and b["overall"]["n"] == len(items) - 5
    assert a["overall"]["auroc"]["value"] == pytest.approx(M.auroc(y, np.array([table[i] for i in items])))
    assert m["comparisons"][0]["n"] == len(items) - 5  # only the items both scored
    assert m["comparisons"][0]["baseline"] == "A" and m["comparisons"][0]["candidate"] == "B"
    assert m["data"]["slice_fields"] == ["domain"] and m["data"]["fairness_fields"] == ["domain"]
    assert m["schema_version"] == 1 and m["data"]["problems"]["count"] == 1
    assert np.isnan(scored[1].p[:5]).all()


def test_run_evaluation_bootstrap_cluster_resamples_copies_together() -> None:
    """Three near-copies of each text form one cluster: resampling them as independent items makes the
    report's AUROC intervals about sqrt(3) too narrow; ``bootstrap_cluster`` resamples each text once."""
    from aigc.report.data import EvalData

    rng = np.random.default_rng(3)
    items, ys, text_of, table = [], [], [], {}
    for k in range(120):
        label = k % 2
        score = rng.normal() + 0.8 * label
        for copy in range(3):
            name = f"t{k}-{copy}"
            items.append(name)
            ys.append(label)
            text_of.append(f"text{k}")
            table[name] = float(1 / (1 + np.exp(-(score + 0.01 * rng.normal()))))
    data = EvalData("text", items, items, np.asarray(ys), {"text_id": text_of, "domain": ["a"] * len(items)}, [], "mem")
    det = [("A", "a", FakeDetector(table))]

    def widths(**kw: object) -> tuple[float, float, dict]:
        m, _, _ = run_evaluation(det, data, EvalOptions(n_boot=300, robustness=False, progress=False, **kw))
        o = m["bundles"][0]
        lo, hi = o["overall"]["auroc"]["ci"]
        slo, shi = o["slices"]["domain"][0]["auroc"]["ci"]
        return hi - lo, shi - slo, m

    w_items, s_items, m0 = widths()
    w_text, s_text, m1 = widths(bootstrap_cluster="text_id")
    assert w_text > 1.4 * w_items and s_text > 1.4 * s_items
    assert m1["settings"]["bootstrap_cluster"] == "text_id" and "clusters" in m1["settings"]["bootstrap_method"]
    assert m0["settings"]["bootstrap_cluster"] is None
    assert m1["bundles"][0]["overall"]["auroc"]["value"] == m0["bundles"][0]["overall"]["auroc"]["value"]
    with pytest.raises(ValueError, match="bootstrap_cluster: the data has no field 'text'; did you mean 'text_id'"):
        run_evaluation(det, data, EvalOptions(n_boot=10, robustness=False, progress=False, bootstrap_cluster="text"))


def test_run_evaluation_group_thresholds() -> None:
    from aigc.report.data import EvalData

    items, y, table = _fake_data()
    lang = ["en" if i % 2 else "de" for i in range(len(items))]
    gt = {"column": "language", "groups": {"de": {"fpr@1%": {"value": 0.3}}}}
    det = FakeDetector(table, {"fpr@1%": 0.9}, gt)
    data = EvalData("text", items, items, y, {"language": lang}, [], "mem")
    m, _, _ = run_evaluation([("A", "a", det)], data, EvalOptions(n_boot=0, robustness=False, progress=False))
    e = m["bundles"][0]["overall"]["thresholds"]["fpr@1%"]
    assert e["threshold"] == "per-group" and m["bundles"][0]["group_thresholds"] == "language"
    p = np.array([table[i] for i in items])
    thr = np.where(np.array(lang) == "de", 0.3, 0.9)
    assert e["recall"]["value"] == pytest.approx(M.threshold_metrics(y, p, thr)["recall"])


def test_run_evaluation_limit_and_one_class() -> None:
    from aigc.report.data import EvalData

    items, y, table = _fake_data()
    data = EvalData("text", items, items, y, {}, [], "mem")
    m, _, d = run_evaluation([("A", "a", FakeDetector(table))], data, EvalOptions(n_boot=0, robustness=False, progress=False, limit=50))
    assert len(d) == 50 and m["data"]["n_items"] == 50 and m["data"]["n_read"] == 200
    one = EvalData("text", items[:3], items[:3], np.zeros(3, int), {}, [], "mem")
    with pytest.raises(ValueError, match="both classes"):
        run_evaluation([("A", "a", FakeDetector(table))], one, EvalOptions(n_boot=0, robustness=False, progress=False))


def test_run_evaluation_every_item_failing_is_reported_not_raised() -> None:
    from aigc.report.data import EvalData

    items, y, _ = _fake_data(20)
    data = EvalData("text", items, items, y, {}, [], "mem")
    m, _, _ = run_evaluation([("A", "a", FakeDetector({}))], data, EvalOptions(n_boot=0, robustness=False, progress=False))
    assert m["bundles"][0]["overall"] is None and "lack a class" in m["bundles"][0]["error"]
    assert m["bundles"][0]["failures"]["count"] == 20
