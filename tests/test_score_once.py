"""Each split is scored once: ``aigc train`` of a zero-shot model scores dev and test once each, and
``aigc export`` reuses the run's dev predictions for calibration once the bundle reproduces them on the
parity sample (the LM runs no real forward pass at export; ONNX Runtime scores only that sample).
Forward calls are counted on a tiny random Llama."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

from test_zeroshot import make_lm, make_tokenizer, save_lm  # noqa: E402
from test_zeroshot_pipeline import _data, zs_config  # noqa: E402

pytestmark = pytest.mark.train


class _Counter:
    """Counts the LM's real forward calls (not export tracing) and the windows they score."""

    def __init__(self) -> None:
        self.calls = 0
        self.windows = 0
        self.shapes: list[tuple[int, ...]] = []

    def wrap(self, forward: Any) -> Any:
        def counted(lm: Any, input_ids: Any = None, *a: Any, **kw: Any) -> Any:
            if _is_real(input_ids):
                self.calls += 1
                self.windows += int(input_ids.shape[0])
                self.shapes.append(tuple(input_ids.shape))
            return forward(lm, input_ids, *a, **kw)

        return counted


def _is_real(x: Any) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    if not isinstance(x, torch.Tensor) or isinstance(x, FakeTensor):
        return False
    try:
        return not (torch.compiler.is_compiling() or torch.jit.is_tracing())
    except AttributeError:  # pragma: no cover
        return not torch.jit.is_tracing()


def _n_windows(run: Path, split: str, only: list[int] | None = None) -> int:
    from aigc._text import TextSpec, TextWindows, encode_windows, load_tokenizer

    spec = TextSpec.from_dict(json.loads((run / "preprocessing.json").read_text()))
    tok = load_tokenizer(run / "tokenizer" / "tokenizer.json")
    rows = [json.loads(x) for x in (run / "splits" / f"{split}.jsonl").read_text().splitlines()]
    rows = rows if only is None else [rows[i] for i in only]
    return sum(len(e.windows) for e in encode_windows(tok, [r["item"] for r in rows], spec) if isinstance(e, TextWindows))


@pytest.mark.slow
def test_zeroshot_train_and_export_score_each_split_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("export.cli")
    from transformers import LlamaForCausalLM

    from aigc import _detector
    from aigc.cli import main as aigc_main

    tok = make_tokenizer()
    obs = save_lm(make_lm(len(tok), 0), tok, tmp_path / "obs")
    data = _data(tmp_path, make_lm(len(tok), 0), tok, 40)
    cfg_path = zs_config(tmp_path, data, {"name": "zeroshot:fast-detectgpt", "backbone": str(obs)}, "zs-once")
    run, bundle = tmp_path / "run", tmp_path / "bundle"

    lm_count = _Counter()
    monkeypatch.setattr(LlamaForCausalLM, "forward", lm_count.wrap(LlamaForCausalLM.forward))
    # training sizes LM eval batches by tokens x vocabulary as the runtime does; here a 32-token budget
    import training.run as tr
    from aigc._text import lm_token_budget

    monkeypatch.setattr(tr, "lm_token_budget", lambda m, lpt: lm_token_budget(m, lpt, budget_bytes=4 * lpt * 32))
    assert aigc_main(["train", str(cfg_path), "--out", str(run)]) == 0
    assert all(n * t <= 32 for n, t in lm_count.shapes) and max(n for n, _ in lm_count.shapes) >= 2
    n_dev, n_test = _n_windows(run, "dev"), _n_windows(run, "test")
    assert n_dev > 16 and n_test > 0
    assert lm_count.windows == n_dev + n_test  # dev once (evaluate; _finish reuses it), test once
    dev_line = next(json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"final_dev"' in x)
    preds = [json.loads(x) for x in (run / "predictions" / "dev.jsonl").read_text().splitlines()]
    assert len(preds) == dev_line["n"] + dev_line["n_failed"]

    lm_count.calls = lm_count.windows = 0
    onnx_items: list[int] = []
    real_score_batch = _detector.Detector._score_batch

    def counted(self: Any, feeds: dict[str, np.ndarray], idx: list[int], outs: list[Any]) -> Any:
        onnx_items.append(len(idx))
        return real_score_batch(self, feeds, idx, outs)

    monkeypatch.setattr(_detector.Detector, "_score_batch", counted)
    assert aigc_main(["export", str(run), "--out", str(bundle), "--targets", "0.2"]) == 0
    spec = json.loads((bundle / "bundle.json").read_text())
    assert spec["metrics"]["calibration_split"]["scored_by"] == "run predictions"
    assert spec["metrics"]["parity"]["reference"] == "run predictions"
    assert lm_count.calls == 0  # export ran the torch LM only to trace it
    from export.split_scores import parity_indices

    sample = parity_indices(np.asarray([p["label"] for p in preds]), spec["metrics"]["parity"]["n"])
    assert sum(onnx_items) == _n_windows(run, "dev", sample) < n_dev  # ONNX scored the parity sample only
    # the calibration equals a fit on scores the bundle computes itself
    from aigc import load

    rows = [json.loads(x) for x in (run / "splits" / "dev.jsonl").read_text().splitlines()]
    raw, _ = load(bundle, providers="cpu").raw_scores([r["item"] for r in rows])
    stored = np.asarray([np.nan if p["score"] is None else p["score"] for p in preds])
    np.testing.assert_allclose(raw, stored, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_export_rescores_when_predictions_disagree(tmp_path: Path) -> None:
    """Predictions that the bundle does not reproduce (here: shifted by 1) are not reused: parity is
    checked against the torch model and the split is scored by the bundle."""
    from _export_tiny import FakeRun

    from export import BuildOptions, build_bundle
    from training import zeroshot as zs

    tok = make_tokenizer()
    model = zs.FastDetectGPT(make_lm(len(tok), 0)).eval()
    tok_file = tmp_path / "tokenizer.json"
    tok.backend_tokenizer.save(str(tok_file))
    spec = zs.text_spec_for(tok, max_length=16, stride=8, max_windows=4)
    words = ("cat", "dog", "sun", "sea", "the", "of")
    texts = [f"the {a} of a {b} and {a}" for a in words for b in words]
    labels = [i % 2 for i in range(len(texts))]
    run = FakeRun(model, "text", spec.to_dict(), tok_file, ["input_ids", "attention_mask"], "score")
    truth = zs.score_texts(model, tok, texts, spec)
    # --max-text-tokens 5: the bundle records the cap and parity holds it on the torch side too
    out = build_bundle(run, tmp_path / "b", texts, labels, options=BuildOptions(targets=[0.2], max_text_tokens=5),
                       run_scores=np.asarray(truth) + 1.0)
    spec_out = json.loads((out / "bundle.json").read_text())
    got = spec_out["metrics"]
    assert got["parity"]["reference"] == "torch" and got["calibration_split"]["scored_by"] == "bundle fp32"
    assert spec_out["preprocessing"]["max_tokens"] == 5
    from aigc import load
    from aigc._text import TextSpec

    capped = TextSpec.from_dict({**spec.to_dict(), "max_tokens": 5})
    raw, _ = load(out, providers="cpu").raw_scores(texts)
    np.testing.assert_allclose(raw, zs.score_texts(model, tok, texts, capped), rtol=1e-4, atol=1e-4)
    assert not np.allclose(raw, truth, atol=1e-3)  # the cap changed what was scored


@pytest.mark.parametrize("agree", [True, False])
def test_export_releases_the_torch_model_while_onnx_runtime_runs(tmp_path: Path, agree: bool) -> None:
    """With the run's scores standing in for the torch model, export drops the model once the fp32 graph
    is written (ORT never runs beside a second copy of the weights); when those scores disagree with the
    bundle, the model is reloaded from its loader and parity is checked against it."""
    from export import BuildOptions, build_bundle
    from training import zeroshot as zs
    from training.run_folder import LoadedRun

    tok = make_tokenizer()
    tok_file = tmp_path / "tokenizer.json"
    tok.backend_tokenizer.save(str(tok_file))
    spec = zs.text_spec_for(tok, max_length=16, stride=8, max_windows=4)
    loads: list[int] = []

    def loader() -> Any:
        loads.append(1)
        return zs.FastDetectGPT(make_lm(len(tok), 0)).eval()  # seeded: the same weights on every load

    run = LoadedRun(modality="text", preprocessing=spec.to_dict(), tokenizer_file=tok_file,
                    input_names=["input_ids", "attention_mask"], output_kind="score", config={},
                    provenance={"checkpoint": "test"}, loader=loader)
    words = ("cat", "dog", "sun", "sea", "the", "of")
    texts = [f"the {a} of a {b} and {a}" for a in words for b in words]
    truth = np.asarray(zs.score_texts(loader(), tok, texts, spec))
    loads.clear()
    out = build_bundle(run, tmp_path / "b", texts, [i % 2 for i in range(len(texts))],
                       options=BuildOptions(targets=[0.2]), run_scores=truth if agree else truth + 1.0)
    par = json.loads((out / "bundle.json").read_text())["metrics"]["parity"]
    if agree:
        assert par["reference"] == "run predictions"
        assert len(loads) == 1 and run._model is None  # loaded to export, released, never reloaded
    else:
        assert par["reference"] == "torch" and par["max_abs_diff"] < 1e-4
        assert len(loads) == 2  # reloaded for the torch side of parity


def test_train_shows_progress_while_scoring_dev_and_test(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Scoring a split through an LM is the long part of a zero-shot or features run: it shows a bar."""
    from aigc.cli import main as aigc_main

    tok = make_tokenizer()
    obs = save_lm(make_lm(len(tok), 0), tok, tmp_path / "obs")
    data = _data(tmp_path, make_lm(len(tok), 0), tok, 16)
    model = {"name": "zeroshot:loglik", "backbone": str(obs)}
    cfg_path = zs_config(tmp_path, data, model, "zs-progress", dev=0.4, test=0.3, max_windows=2, progress=True)
    assert aigc_main(["train", str(cfg_path), "--out", str(tmp_path / "run")]) == 0
    err = capfd.readouterr().err
    assert "scoring the dev split" in err and "scoring the test split" in err
    cfg_path = zs_config(tmp_path, data, model, "zs-quiet", dev=0.4, test=0.3, max_windows=2)
    assert aigc_main(["train", str(cfg_path), "--out", str(tmp_path / "run2")]) == 0
    assert "scoring the" not in capfd.readouterr().err
