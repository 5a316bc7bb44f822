"""``aigc export`` end to end on a tiny BERT text run: bundle, per-group thresholds, support, info, refusals.

The run is a stand-in for ``training.load_run`` (monkeypatched) so these tests do not need a trained
checkpoint; the calibration data comes from ``--calibration-data`` JSONL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from _export_tiny import FakeRun, make_texts, text_run, tiny_bert, write_jsonl

import aigc
from aigc._bundle import open_bundle
from aigc._calibration import apply_calibration
from aigc.cli import main
from export import BuildOptions, build_bundle, torch_raw_scores

pytestmark = [pytest.mark.train]


@pytest.fixture(scope="module")
def text_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("export_text")
    run = text_run(root / "run")
    texts, labels, groups = make_texts()
    cal = write_jsonl(root / "cal.jsonl", [{"text": t, "label": y, "domain": g} for t, y, g in zip(texts, labels, groups, strict=True)])
    (root / "run" / "checkpoints").mkdir(parents=True)
    (root / "run" / "splits").mkdir(parents=True)  # a training split: hashed into data_hashes.json
    write_jsonl(root / "run" / "splits" / "train.jsonl", [{"item": f"train text {i}", "label": i % 2} for i in range(30)])
    return {"root": root, "run": run, "texts": texts, "labels": labels, "groups": groups, "cal": cal}


@pytest.fixture(scope="module")
def text_bundle(text_case: dict[str, Any]) -> Path:
    mp = pytest.MonkeyPatch()
    import export.cli as ecli

    mp.setattr(ecli, "_load_run", lambda run_dir, checkpoint: text_case["run"])
    out = text_case["root"] / "bundle"
    try:
        rc = main(["export", str(text_case["root"] / "run"), "--out", str(out), "--calibration-data",
                   str(text_case["cal"]), "--group-column", "domain", "--worst-group", "domain"])
    finally:
        mp.undo()
    assert rc == 0
    return out


@pytest.mark.slow
def test_text_round_trip_through_the_cli(text_case: dict[str, Any], text_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = open_bundle(text_bundle).spec
    assert spec["modality"] == "text" and (text_bundle / "tokenizer.json").is_file()
    assert spec["provenance"]["calibration_data"]["file"].endswith("cal.jsonl")
    assert spec["provenance"]["exporter"] == "torch.onnx dynamo"
    assert spec["metrics"]["parity"]["ok"]
    run, texts = text_case["run"], text_case["texts"]
    det = aigc.load(text_bundle, providers="cpu")
    p = det.predict_proba(texts[:10])[:, 1]
    raw, _ = torch_raw_scores(run.model, "text", run.preprocessing, texts[:10], run.input_names, "logits", run.tokenizer_file)
    np.testing.assert_allclose(p, apply_calibration(raw, spec["calibration"]), atol=1e-4)
    # long texts span several windows; the pooled score still matches torch
    long = " ".join(texts[:6])
    raw_l, _ = torch_raw_scores(run.model, "text", run.preprocessing, [long], run.input_names, "logits", run.tokenizer_file)
    assert abs(det.raw_scores([long])[0][0] - raw_l[0]) < 1e-4

    # per-group thresholds: 55 humans per domain support 5% (19 needed) but not 1% (99 needed): their fpr@1% is
    # above all of them, never below the global one
    gt = spec["group_thresholds"]
    assert gt["column"] == "domain" and set(gt["groups"]) == {"news", "web"}
    assert set(gt["groups"]["news"]) == {"fpr@1%", "fpr@5%", "balanced"} and not gt["skipped"].get("news")
    for dom in ("news", "web"):  # both labels in each domain: its AUROC is recorded (this toy's is about 0.7: weak)
        d = gt["detection"][dom]
        assert (d["n_human"], d["n_ai"]) == (55, 55) and d["weak"] == (d["auroc"] < 0.75), gt["detection"]
    for dom in ("news", "web"):
        t1 = gt["groups"][dom]["fpr@1%"]
        assert t1["value"] >= spec["thresholds"]["fpr@1%"]["value"] and t1["achieved_fpr"] == 0.0
        assert t1["rule"] in ("above all 55 humans (fewer than 99)",
                              "the global threshold (above all 55 humans (fewer than 99): lower)"), t1["rule"]
    res = det.score(texts[:2], threshold="fpr@5%", groups=["news", None])
    assert res[0].threshold_name == "fpr@5%[domain=news]" and res[0].threshold == gt["groups"]["news"]["fpr@5%"]["value"]
    assert res[1].threshold_name == "fpr@5%" and res[1].threshold == spec["thresholds"]["fpr@5%"]["value"]

    # worst-group rule: each fpr@X is at least the pooled threshold and holds X on every domain's humans;
    # at 1% (55 humans per domain, 99 needed) it clears every human of each domain, and says so
    from aigc._thresholds import choose_thresholds

    p_all = det.predict_proba(texts)[:, 1]
    pooled = choose_thresholds(p_all, np.asarray(text_case["labels"]))
    g, y = np.asarray(text_case["groups"]), np.asarray(text_case["labels"])
    for name, target in (("fpr@5%", 0.05), ("fpr@1%", 0.01)):
        t = spec["thresholds"][name]
        assert t["rule"] == "conformal, worst group of domain" and t["value"] >= pooled[name]["value"] - 1e-9
        for dom in ("news", "web"):
            h = p_all[(g == dom) & (y == 0)]
            assert t["groups"][dom]["achieved_fpr"] == pytest.approx(float(np.mean(h >= t["value"])))
            assert t["groups"][dom]["achieved_fpr"] <= (target if name == "fpr@5%" else 0.0)
    assert spec["thresholds"]["fpr@1%"]["groups"]["news"]["rule"] == "above all 55 humans (fewer than 99)"
    assert spec["provenance"]["calibration_data"]["worst_group_column"] == "domain"

    # support: in-support texts unflagged; a short text, another script, odd characters per token flagged
    sup = spec["support"]["text"]
    assert sup["scripts"] == {"latin": 1.0}
    mid = "the of and to in is it was for on with as by at the a of and to in moreover."
    res = det.score([mid, "the", "Это совсем другой текст на русском языке, и довольно длинный к тому же.", "x" * 60])
    assert [r.out_of_support for r in res] == [False, True, True, True], [r.support_reasons for r in res]
    assert any("tokens, far below" in r for r in res[1].support_reasons), res[1].support_reasons
    assert any("script cyrillic: never seen" in r for r in res[2].support_reasons)
    # the run's training split and the calibration items are hashed for aigc eval's overlap check
    dh = spec["data_hashes"]
    assert dh["version"] == 1 and dh["calibration"]["n"] > 0 and dh["training"]["n"] == 30

    # aigc info shows calibration and thresholds
    capsys.readouterr()
    assert main(["info", str(text_bundle)]) == 0
    card = capsys.readouterr().out
    assert "calibration: temperature" in card and "fpr@1%" in card and "per-group thresholds by domain" in card
    assert "  domain=news: fpr@1% " in card and "above all 55 humans (fewer than 99)" in card
    assert "fpr@1% is the worst group's (conformal, worst group of domain); FPR per group: news 0.0% of" in card


@pytest.mark.slow
def test_cli_refusals(text_case: dict[str, Any], text_bundle: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    import export.cli as ecli

    monkeypatch.setattr(ecli, "_load_run", lambda run_dir, checkpoint: text_case["run"])
    run_dir, cal = str(text_case["root"] / "run"), str(text_case["cal"])
    before = (text_bundle / "bundle.json").read_bytes()
    assert main(["export", run_dir, "--out", str(text_bundle), "--calibration-data", cal]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (text_bundle / "bundle.json").read_bytes() == before
    notes = text_case["root"] / "notes"  # a folder of other things: never replaced, even with --overwrite
    notes.mkdir()
    (notes / "keep.txt").write_text("mine")
    monkeypatch.setattr(ecli, "_load_run", lambda run_dir, checkpoint: pytest.fail("refused after loading the run"))
    assert main(["export", run_dir, "--out", str(notes), "--calibration-data", cal, "--overwrite"]) == 1
    assert "not a bundle folder" in capsys.readouterr().err and (notes / "keep.txt").read_text() == "mine"
    monkeypatch.setattr(ecli, "_load_run", lambda run_dir, checkpoint: text_case["run"])
    out = str(text_case["root"] / "new")
    assert main(["export", run_dir, "--out", out, "--calibration-data", cal, "--targets", "0.001"]) == 1
    assert "needs at least 999 human calibration items, found 110" in capsys.readouterr().err
    assert main(["export", run_dir, "--out", out, "--calibration-data", cal, "--calibration", "isotonic"]) == 1
    assert "isotonic needs at least 1000 items, found 220" in capsys.readouterr().err
    assert main(["export", run_dir, "--out", out, "--calibration-data", cal, "--variants", "int4"]) == 2
    assert "unknown variant 'int4'" in capsys.readouterr().err
    bad = write_jsonl(text_case["root"] / "bad.jsonl", [{"text": "a", "label": 3}])
    assert main(["export", run_dir, "--out", out, "--calibration-data", str(bad)]) == 2
    assert "bad.jsonl:1: label 3" in capsys.readouterr().err
    assert main(["export", run_dir, "--out", out, "--calibration-data", cal, "--worst-group", "language"]) == 2
    assert "--worst-group language: no calibration row has that column" in capsys.readouterr().err
    assert not Path(out).exists()


@pytest.mark.slow
def test_score_model_defaults_to_platt(text_case: dict[str, Any], tmp_path: Path) -> None:
    """A zero-shot-like model outputs a statistic (N,), not logits: Platt by default, and the bundle says why."""
    import torch

    class Stat(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = tiny_bert()

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:  # (N,T) -> (N,)
            lg = self.m(input_ids, attention_mask)
            return 3.0 * (lg[:, 1] - lg[:, 0]) + 40.0  # far from 0: temperature cannot centre it

    base = text_case["run"]
    run = FakeRun(Stat(), "text", base.preprocessing, base.tokenizer_file, base.input_names, output_kind="score")
    out = build_bundle(run, tmp_path / "b", text_case["texts"], text_case["labels"], options=BuildOptions(targets=[0.05]))
    spec = open_bundle(out).spec
    assert spec["model"]["output_kind"] == "score" and spec["model"]["outputs"] == [{"name": "score", "rank": 1}]
    cal = spec["calibration"]
    assert cal["method"] == "platt" and "cannot centre" in cal["note"]
    assert cal["after"]["nll"] < cal["before"]["nll"] and cal["after"]["ece"] < 0.2
    assert json.dumps(spec)


@pytest.mark.slow
def test_text_parity_fails_when_special_tokens_change(text_case: dict[str, Any], text_bundle: Path, tmp_path: Path) -> None:
    """A bundle whose windows differ from the run's (no [CLS] prefix) no longer reproduces the model."""
    import shutil

    from aigc._bundle import write_bundle
    from export import ParityError, check_parity

    run = text_case["run"]
    texts = [t for t in text_case["texts"] if len(t.split()) > 14][:6]
    rep = check_parity(run.model, text_bundle, texts, run.preprocessing, run.input_names, "logits", run.tokenizer_file)
    assert rep.ok
    bad = tmp_path / "bad"
    shutil.copytree(text_bundle, bad)
    spec = json.loads((bad / "bundle.json").read_text())
    spec["preprocessing"]["prefix_ids"] = []
    spec["preprocessing"]["max_length"] = 15
    write_bundle(bad, spec, overwrite=True)
    with pytest.raises(ParityError, match=r"> 0.0001 on item \d+ \("):
        check_parity(run.model, bad, texts, run.preprocessing, run.input_names, "logits", run.tokenizer_file)


def test_parity_atol_is_bounded() -> None:
    from export.cli import _parity_atol

    assert _parity_atol(1e-3) == 1e-3
    for bad in (0.0, -1e-4, 0.05):
        with pytest.raises(SystemExit, match="parity-atol"):
            _parity_atol(bad)
