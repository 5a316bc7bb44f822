"""``model: zeroshot:*`` through the whole pipeline: aigc train (records the statistic, fits nothing) ->
aigc export (ONNX of LM + statistic, Platt calibration, thresholds) -> aigc.load scores like torch.
Tiny random Llama models saved to a folder stand in for the LMs; the shipped configs are loaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

from test_zeroshot import WORDS, make_lm, make_tokenizer, save_lm  # noqa: E402

from training import zeroshot as zs  # noqa: E402

pytestmark = pytest.mark.train
REPO = Path(__file__).resolve().parents[1]


def test_shipped_zeroshot_configs_load() -> None:
    from training.config import load_config
    from training.registry import list_models

    files = sorted((REPO / "configs").glob("zeroshot-*.yaml"))
    assert {f.stem for f in files} >= {f"zeroshot-{s}-smollm2" for s in zs.STATISTICS}
    for f in files:
        cfg = load_config(f)
        assert cfg.model.name in list_models("text"), f.name
        assert cfg.model.name.split(":", 1)[1] in zs.STATISTICS
        if cfg.model.name == "zeroshot:binoculars":
            assert cfg.model.reference_model, f"{f.name}: binoculars needs model.reference_model"


def _data(tmp: Path, lm: object, tok: object, n_pairs: int, domains: tuple[str, ...] = ("toy",)) -> Path:
    """Pairs sharing a prefix, like fastdetectgpt.jsonl: the LM continues a prompt ('machine') and a
    random word string continues the same prompt ('human'); pair i is of domain ``domains[i % len(domains)]``."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_pairs):
        prompt = " ".join(rng.choice(WORDS, 2))
        ids = tok(prompt, return_tensors="pt")  # type: ignore[operator]
        with torch.no_grad():
            out = lm.generate(**ids, max_new_tokens=int(rng.integers(8, 24)), do_sample=True, top_k=4,  # type: ignore[attr-defined]
                              pad_token_id=0)
        machine = tok.decode(out[0], skip_special_tokens=True)  # type: ignore[attr-defined]
        human = prompt + " " + " ".join(rng.choice(WORDS, int(rng.integers(8, 24))))
        for label, text in ((0, human), (1, machine)):
            rows.append({"text": text, "label": label, "pair_id": f"p{i}", "domain": domains[i % len(domains)],
                         "generator": "human" if label == 0 else "tiny-llama", "source": "test"})
    path = tmp / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def zs_config(tmp: Path, data: Path, model: dict[str, object], name: str = "zs-test", dev: float = 0.5,
              test: float = 0.2, max_windows: int = 4, progress: bool = False) -> Path:
    """A ``zeroshot:*`` run config over ``_data`` (16-token windows, CPU), written to ``tmp/<name>.yaml``."""
    cfg = {
        "name": name,
        "data": {"train": str(data), "group_by": "pair_id", "dev_fraction": dev, "test_fraction": test,
                 "max_length": 16, "stride": 8, "max_windows": max_windows},
        "model": model,
        "train": {"device": "cpu", "progress": progress},
        "eval": {"batch_size": 8, "max_tokens": 128},
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def train_features_run(tmp: Path, model: dict[str, object], name: str, n_pairs: int, max_windows: int = 4,
                       domains: tuple[str, ...] = ("toy",)) -> tuple[object, Path, Path]:
    """``aigc train`` of a ``zeroshot:features`` run on a tiny random Llama (saved as ``tmp/lm``, the backbone)
    over ``_data``'s ``n_pairs`` pairs (of ``domains`` in turn), with the other ``model`` settings given; returns
    (tokenizer, data, run)."""
    from aigc.cli import main as aigc_main

    tok = make_tokenizer()
    backbone = save_lm(make_lm(len(tok), 0), tok, tmp / "lm")
    data = _data(tmp, make_lm(len(tok), 0), tok, n_pairs, domains)
    cfg_path = zs_config(tmp, data, {"name": "zeroshot:features", "backbone": str(backbone), **model}, name,
                         dev=0.3, max_windows=max_windows)
    run = tmp / "run"
    assert aigc_main(["train", str(cfg_path), "--out", str(run)]) == 0
    return tok, data, run


@pytest.mark.slow
def test_train_export_score(tmp_path: Path) -> None:
    pytest.importorskip("export.cli")
    from aigc._detector import load
    from aigc.cli import main as aigc_main
    from training.run import load_run

    tok = make_tokenizer()
    obs = save_lm(make_lm(len(tok), 0), tok, tmp_path / "obs")
    data = _data(tmp_path, make_lm(len(tok), 0), tok, 60)
    cfg_path = zs_config(tmp_path, data, {"name": "zeroshot:fast-detectgpt", "backbone": str(obs)})
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    assert aigc_main(["train", str(cfg_path), "--out", str(run)]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["output_kind"] == "score" and info["trainable_parameters"] == 0
    pre = json.loads((run / "preprocessing.json").read_text())
    assert pre["prefix_ids"] == [tok.bos_token_id] and pre["suffix_ids"] == [] and pre["max_length"] == 16
    dev = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"dev"' in x]
    assert dev and dev[0]["auroc"] > 0.8  # the LM's own samples vs random words

    assert aigc_main(["export", str(run), "--out", str(bundle), "--targets", "0.2"]) == 0
    det = load(bundle, providers="cpu")
    assert det.spec["model"]["output_kind"] == "score" and det.spec["calibration"]["method"] == "platt"
    texts = [r["text"] for r in map(json.loads, data.read_text().splitlines()[:10])]
    raw, errors = det.raw_scores(texts)
    assert errors == [None] * len(texts)
    lr = load_run(run)
    want = zs.score_texts(lr.model, tok, texts, det.text_spec)
    np.testing.assert_allclose(raw, want, rtol=1e-4, atol=1e-4)
    results = det.score(texts, threshold="balanced")
    assert all(r.label in ("human", "ai") for r in results)
