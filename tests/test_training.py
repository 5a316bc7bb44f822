"""The training room: registry, data sources and splits, transforms, every model trains two steps, run
folders load back (train and serve preprocessing agree), resume after an interruption, NaN stops."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
os.environ["HF_HUB_OFFLINE"] = "1"

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_helpers import (
    image_overrides,
    make_image_folder,
    make_text_jsonl,
    text_overrides,
    text_rows,
    tiny_bert_dir,
    tiny_clip_dir,
    tiny_llama_dir,
)

from training import create_model, list_models, load_config, load_run, read_split
from training.config import DataConfig, ModelConfig
from training.data import DataError, make_splits, read_image_folder
from training.registry import MODELS, register_model
from training.run import fit

pytestmark = pytest.mark.train


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("assets")
    return {
        "images": make_image_folder(root / "images"),
        "texts": make_text_jsonl(root / "texts.jsonl"),
        "bert": tiny_bert_dir(root / "bert"),
        "clip": tiny_clip_dir(root / "clip"),
    }


# ------------------------------------------------------------------------------------------ registry
def test_registry_lists_builtins() -> None:
    names = list_models()
    for n in ("timm:", "hf:", "clip-probe", "npr"):
        assert n in names
    assert set(list_models("image")) >= {"timm:", "clip-probe", "npr"}
    assert "hf:" in list_models("text")


def test_unknown_model_suggests() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'nrp'; did you mean 'npr'\? \(aigc list-models\)"):
        create_model("nrp")
    with pytest.raises(ValueError, match="aigc list-models"):
        create_model("timm")


def test_register_model_and_output_kind() -> None:
    @register_model("test-const-score", modality="text", output_kind="score", help="test only")
    def _f(cfg: ModelConfig) -> torch.nn.Module:
        return torch.nn.Identity()

    try:
        m = create_model("test-const-score")
        assert m.output_kind == "score" and m.modality == "text"
    finally:
        MODELS.pop("test-const-score")


def test_list_models_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from aigc.cli import main

    assert main(["list-models"]) == 0
    out = capsys.readouterr().out
    assert "timm:<name>" in out and "npr" in out and "efficientnet-lite0" in out


# ------------------------------------------------------------------------------------------ data
def test_image_folder_layouts(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "a", n_per_class=2)
    rows = read_image_folder(tmp_path / "a")
    assert {r["label"] for r in rows} == {0, 1}
    assert {r["generator"] for r in rows if r["label"] == 1} == {"gan", "diff"}
    # CNNDetection layout: <category>/0_real, <category>/1_fake
    from PIL import Image

    for cat in ("car", "cat"):
        for sub in ("0_real", "1_fake"):
            (tmp_path / "b" / "progan" / cat / sub).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(tmp_path / "b" / "progan" / cat / sub / "x.png")
    rows = read_image_folder(tmp_path / "b")
    assert len(rows) == 4 and {r["generator"] for r in rows if r["label"] == 1} == {"progan"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no real/"):
        read_image_folder(tmp_path / "empty")


def test_text_formats_and_label_names(tmp_path: Path) -> None:
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"body": r["text"], "who": "human" if r["label"] == 0 else "machine", "pair_id": r["pair_id"]}
            for r in text_rows(6)]
    with (tmp_path / "t.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["body", "who", "pair_id"])
        w.writeheader()
        w.writerows(rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    for name in ("t.csv", "t.parquet"):
        cfg = DataConfig(train=str(tmp_path / name), text_column="body", label_column="who",
                         labels={"human": 0, "machine": 1}, group_by="pair_id", dev_fraction=0.5)
        s = make_splits(cfg, "text")
        assert len(s["train"]) + len(s["dev"]) == 12
        assert not {r["group"] for r in s["train"]} & {r["group"] for r in s["dev"]}
    cfg = DataConfig(train=str(tmp_path / "t.csv"), text_column="body", label_column="who", labels={"human": 0})
    with pytest.raises(DataError, match=r"t.csv line 3: unknown label 'machine' in column 'who'"):
        make_splits(cfg, "text")


def test_hf_source_through_datasets(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    d = tmp_path / "ds"
    d.mkdir()
    with (d / "train.jsonl").open("w") as f:
        for r in text_rows(8):
            f.write(json.dumps({"content": r["text"], "y": r["label"], "pair_id": r["pair_id"]}) + "\n")
    cfg = DataConfig(train=f"hf:{d}", train_split="train", text_column="content", label_column="y",
                     group_by="pair_id", dev_fraction=0.25)
    s = make_splits(cfg, "text")
    assert len(s["train"]) + len(s["dev"]) == 16
    assert all(r["source"].startswith("hf:") for r in s["train"])
    with pytest.raises(DataError, match="split 'nope'"):
        make_splits(DataConfig(train=f"hf:{d}", train_split="nope"), "text")


def test_group_split_human_text_and_holdout(tmp_path: Path) -> None:
    # the same human text continued by two generators under two pair_ids must land in one split
    rows = []
    for i in range(20):
        h = f"human text number {i}"
        for g in ("gen-a", "gen-b") if i < 10 else ("gen-a",):
            pid = f"{g}-{i}"
            rows.append({"text": h, "label": 0, "generator": "human", "domain": ["d1", "d2"][i % 2], "pair_id": pid})
            rows.append({"text": f"{g} says {i}", "label": 1, "generator": g, "domain": ["d1", "d2"][i % 2],
                         "pair_id": pid})
    p = tmp_path / "x.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = DataConfig(train=str(p), group_by="pair_id", group_human_text=True, dev_fraction=0.3, test_fraction=0.2)
    s = make_splits(cfg, "text")
    texts = {k: {r["item"] for r in v if r["label"] == 0} for k, v in s.items()}
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"] and not texts["dev"] & texts["test"]
    assert s["test"] and s["dev"]
    # leave a domain out
    s = make_splits(DataConfig(train=str(p), group_by="pair_id", group_human_text=True, holdout_column="domain",
                               holdout_values=["d2"]), "text")
    assert {r["domain"] for r in s["test"]} == {"d2"} and {r["domain"] for r in s["train"] + s["dev"]} == {"d1"}
    # leave a generator out: test = its texts + the humans they continue; nothing of those groups trains
    s = make_splits(DataConfig(train=str(p), group_by="pair_id", group_human_text=True, holdout_column="generator",
                               holdout_values=["gen-b"], include={"domain": ["d1"]}), "text")
    assert {r["generator"] for r in s["test"]} == {"gen-b", "human"}
    assert "gen-b" not in {r["generator"] for r in s["train"] + s["dev"]} and s["train"]
    # the gen-a continuations of held-out humans are dropped, not trained on
    assert not {r["item"] for r in s["test"] if r["label"] == 0} & {r["item"] for r in s["train"] + s["dev"]}
    assert {r["domain"] for r in s["train"] + s["dev"] + s["test"]} == {"d1"}
    # any column can be held out, not only the ones every row carries (a vendor family, say)
    for r in rows:
        r["family"] = "fam-b" if r["generator"] == "gen-b" else ("none" if r["label"] == 0 else "fam-a")
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = make_splits(DataConfig(train=str(p), group_by="pair_id", group_human_text=True, holdout_column="family",
                               holdout_values=["fam-b"]), "text")
    assert {r["generator"] for r in s["test"]} == {"gen-b", "human"}
    assert "gen-b" not in {r["generator"] for r in s["train"] + s["dev"]}


# ------------------------------------------------------------------------------------------ transforms
def test_image_transforms_use_runtime_preprocessing(assets: dict[str, Path]) -> None:
    import random

    from aigc._image import ImageSpec, decode_image, preprocess_image
    from training.transforms import ImageTrainTransform, eval_image

    img = decode_image(next((assets["images"] / "real").glob("*.png"))).image
    spec = ImageSpec(size=(32, 32))
    np.testing.assert_array_equal(eval_image(img, spec), preprocess_image(img, spec))
    tf = ImageTrainTransform(spec, DataConfig(blur_prob=1.0, jpeg_prob=1.0))
    a, b = tf(img, random.Random(3)), tf(img, random.Random(3))
    assert a.shape == (3, 32, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)  # seeded per sample
    small = ImageTrainTransform(ImageSpec(size=(64, 64)), DataConfig())(img, random.Random(0))
    assert small.shape == (3, 64, 64)  # smaller than the crop: padded by the runtime's rule


# ------------------------------------------------------------------------------------------ models
def _model_cases(assets: dict[str, Path]) -> dict[str, list[str]]:
    return {
        "timm:": image_overrides(assets["images"], "timm:efficientnet_lite0"),
        "npr": image_overrides(assets["images"], "npr", ["model.width=8"]),
        "clip-probe": image_overrides(assets["images"], "clip-probe", [f"model.backbone={assets['clip']}"]),
        "hf:": text_overrides(assets["texts"], f"hf:{assets['bert']}"),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models() if not n.startswith("zeroshot:")])
def test_every_model_trains_two_steps(name: str, assets: dict[str, Path], tmp_path: Path) -> None:
    cases = _model_cases(assets)
    assert name in cases, f"registered model {name!r} has no tiny test case"
    cfg = load_config(None, cases[name])
    cfg.name = name.strip(":")
    run = fit(cfg, tmp_path / "run")
    # the run folder of docs/contracts.md
    for f in ("config.yaml", "run.json", "preprocessing.json", "metrics.jsonl", "checkpoints/best.pt",
              "checkpoints/last.pt", "splits/train.jsonl", "splits/dev.jsonl"):
        assert (run / f).is_file(), f
    info = json.loads((run / "run.json").read_text())
    assert info["data_fingerprint"].startswith("sha256:") and "torch" in info["packages"] and info["source_revision"]
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert last["step"] == 2 and "optimizer" in last and "scheduler" in last and "rng" in last
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(x["kind"] == "dev" and x["step"] == 2 for x in lines)
    dev = read_split(run, "dev")
    assert dev and set(dev[0]) >= {"item", "label", "generator", "domain", "source", "group"}

    # load_run rebuilds the model offline and, fed by the runtime's preprocessing, reproduces training's scores
    lr = load_run(run)
    assert lr.output_kind == "logits" and not lr.model.training
    preds = [json.loads(x) for x in (run / "predictions" / "dev.jsonl").read_text().splitlines()]
    if lr.modality == "image":
        from aigc._image import ImageSpec, decode_image, preprocess_image

        spec = ImageSpec.from_dict(lr.preprocessing)
        x = np.stack([preprocess_image(decode_image(r["item"]).image, spec) for r in dev])
        with torch.no_grad():
            out = lr.model(torch.from_numpy(x)).numpy()
        assert lr.input_names == ["pixel_values"] and lr.tokenizer_file is None
    else:
        from aigc._text import TextSpec, encode_windows, load_tokenizer, pad_windows

        spec = TextSpec.from_dict(lr.preprocessing)
        assert spec.prefix_ids and spec.suffix_ids  # [CLS] .. [SEP]
        tok = load_tokenizer(lr.tokenizer_file)
        out = []
        for enc in encode_windows(tok, [r["item"] for r in dev], spec):
            ids, mask = pad_windows(enc.windows, spec.pad_id)
            with torch.no_grad():
                lg = lr.model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
            out.append([0.0, float(np.mean(lg[:, 1] - lg[:, 0]))])
        out = np.asarray(out)
        assert lr.input_names == ["input_ids", "attention_mask"] and lr.tokenizer_file.name == "tokenizer.json"
    np.testing.assert_allclose(out[:, 1] - out[:, 0], [p["score"] for p in preds], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_zeroshot_model_fits_nothing_but_writes_a_run(tmp_path: Path, assets: dict[str, Path]) -> None:
    pytest.importorskip("training.zeroshot")
    lm = tiny_llama_dir(tmp_path / "lm")
    cfg = load_config(None, text_overrides(assets["texts"], "zeroshot:loglik", [f"model.backbone={lm}"]))
    run = fit(cfg, tmp_path / "run")
    ck = torch.load(run / "checkpoints" / "best.pt", weights_only=False)
    # log-likelihood has nothing but its LM, which the checkpoint names rather than copies (training.frozen)
    assert ck["model"] == {} and list(ck["frozen_lms"]) == ["lm"] and ck["step"] == 0
    assert (run / "tokenizer" / "tokenizer.json").is_file() and (run / "splits" / "dev.jsonl").is_file()
    lr = load_run(run)
    assert lr.output_kind == "score"
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    assert lr.model(ids, torch.ones_like(ids)).shape == (1,)


# ------------------------------------------------------------------------------------------ loop
@pytest.mark.slow
def test_resume_continues_exactly(assets: dict[str, Path], tmp_path: Path) -> None:
    from training.run import _Interrupted

    ov = text_overrides(assets["texts"], f"hf:{assets['bert']}",
                        ["train.max_steps=4", "train.eval_every=2", "train.batch_size=3", "train.grad_accum=2"])
    fit(load_config(None, ov), tmp_path / "a")
    with pytest.raises(_Interrupted):
        fit(load_config(None, ov), tmp_path / "b", _interrupt_at=2)
    assert torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)["step"] == 2
    with pytest.raises(FileExistsError, match="--resume"):
        fit(load_config(None, ov), tmp_path / "b")
    fit(load_config(None, ov), tmp_path / "b", resume=True)
    a = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 4 and a["state"] == b["state"]
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=0)

    def dev_lines(p: Path) -> list[dict]:
        return [x for x in map(json.loads, (p / "metrics.jsonl").read_text().splitlines()) if x["kind"] == "dev"]

    assert [x["auroc"] for x in dev_lines(tmp_path / "a")] == [x["auroc"] for x in dev_lines(tmp_path / "b")]


def test_resume_logs_each_step_once(assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture) -> None:
    """A run killed after step 3 (checkpoint at step 2, lines of step 3 logged, a line torn by the kill):
    the resume cuts metrics.jsonl back to step 2 and its lines match an uninterrupted run's, once each."""
    from training.run import _Interrupted

    purges: list[int | None] = []
    monkeypatch.setattr("training.metrics_log._tensorboard", lambda run, purge_step=None: purges.append(purge_step))
    ov = image_overrides(assets["images"], "npr", ["model.width=8", "train.max_steps=6", "train.eval_every=2",
                                                   "train.log_every=1"])
    a = fit(load_config(None, ov), tmp_path / "a")
    with pytest.raises(_Interrupted):
        fit(load_config(None, ov), tmp_path / "b", _interrupt_at=3)
    log_b = tmp_path / "b" / "metrics.jsonl"
    crashed = log_b.read_text().splitlines()
    assert [(x["kind"], x["step"]) for x in map(json.loads, crashed)] == [
        ("train", 1), ("train", 2), ("dev", 2), ("train", 3)]
    with log_b.open("a") as f:
        f.write('{"kind": "train", "step": 4, "epoch": 0, "lo')  # the kill cut this write off
    fit(load_config(None, ov), tmp_path / "b", resume=True)

    def seq(p: Path) -> list[tuple]:
        return [(x["kind"], x.get("step"), x.get("epoch")) for x in map(json.loads, p.read_text().splitlines())]

    assert seq(log_b) == seq(a / "metrics.jsonl") and len(set(seq(log_b))) == len(seq(log_b))
    assert log_b.read_text().splitlines()[:3] == crashed[:3]  # the lines up to the checkpoint, as written
    assert purges == [None, None, 3]  # TensorBoard hides the killed run's steps from 3 on
    assert any("cut off by the crash" in r.getMessage() for r in caplog.records)
    assert not list((tmp_path / "b").glob(".metrics.jsonl.tmp*"))


def test_metrics_log_trim_keeps_lines_up_to_the_checkpoint(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from training.metrics_log import trim_metrics_log

    lines = [{"kind": "header", "note": "kept: written once"}, {"kind": "train", "step": 4, "epoch": 0},
             {"kind": "dev", "step": 4, "epoch": 1}, {"kind": "train", "step": 5, "epoch": 1},
             {"kind": "ddp", "step": 4}, {"kind": "final_dev", "auroc": 0.5}, {"kind": "other", "step": 3}]
    p = tmp_path / "metrics.jsonl"
    text = "".join(json.dumps(x) + "\n" for x in lines)
    p.write_text(text + '{"kind": "train", "st')  # a torn last line: dropped with a warning
    assert trim_metrics_log(p, (4, 0)) == 4
    assert [json.loads(x) for x in p.read_text().splitlines()] == [lines[0], lines[1], lines[6]]
    assert [r.levelname for r in caplog.records if "cut off by the crash" in r.getMessage()] == ["WARNING"]
    p.write_text(text)  # the end-of-epoch checkpoint (epoch 1) also keeps the dev line it follows
    trim_metrics_log(p, (4, 1))
    assert [json.loads(x) for x in p.read_text().splitlines()] == [lines[0], lines[1], lines[2], lines[6]]
    p.write_text(text)  # nothing to resume (no optimiser state): only the header stays
    trim_metrics_log(p, None)
    assert [json.loads(x) for x in p.read_text().splitlines()] == [lines[0]]
    p.write_text(text.replace('"ddp"', '"dd') + "\n")  # a broken line elsewhere is refused, the file kept
    with pytest.raises(ValueError, match=r"metrics.jsonl line 5 is not JSON"):
        trim_metrics_log(p, (4, 0))
    assert p.read_text() == text.replace('"ddp"', '"dd') + "\n"
    assert trim_metrics_log(tmp_path / "none.jsonl", (1, 0)) == 0 and not (tmp_path / "none.jsonl").exists()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_nan_loss_stops_with_the_step(assets: dict[str, Path], tmp_path: Path) -> None:
    from training.loop import NonFiniteLossError

    class NaNNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full((x.shape[0], 2), float("nan")) * self.w

    @register_model("test-nan", modality="image")
    def _nan(cfg: ModelConfig) -> torch.nn.Module:
        return NaNNet()

    try:
        cfg = load_config(None, image_overrides(assets["images"], "test-nan"))
        with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 1 \(epoch 0, batch 0\)"):
            fit(cfg, tmp_path / "run")
    finally:
        MODELS.pop("test-nan")


@pytest.mark.slow
def test_aigc_train_cli(assets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aigc.cli import main

    cfgfile = tmp_path / "c.yaml"
    cfgfile.write_text("model:\n  name: npr\n  width: 8\n")
    args = ["train", str(cfgfile), "--out", str(tmp_path / "run")]
    for o in image_overrides(assets["images"], "npr"):
        args += ["--set", o]
    assert main(args) == 0
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    assert main(["train", str(cfgfile), "--set", "train.epoch=2"]) == 2
    assert "did you mean 'train.epochs'" in capsys.readouterr().err


def test_metrics_and_schedule() -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from training.loop import cosine_schedule, detection_metrics

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = rng.normal(size=200) + y
    s[:20] = np.round(s[:20])  # ties
    m = detection_metrics(y, s)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, s))
    assert m["ap"] == pytest.approx(average_precision_score(y, s))
    assert m["accuracy"] == pytest.approx(np.mean((s > 0) == y))
    f = cosine_schedule(total_steps=10, warmup=2, min_ratio=0.1)
    assert [round(f(i), 3) for i in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert f(10) == pytest.approx(0.1) and f(6) < f(4)


def test_early_stop_and_best_checkpoint(assets: dict[str, Path], tmp_path: Path) -> None:
    # lr 0: dev AUROC never improves after the first evaluation, so early_stop=1 stops at the second
    cfg = load_config(None, image_overrides(assets["images"], "npr", [
        "model.width=8", "train.lr=0", "train.max_steps=6", "train.eval_every=1", "train.early_stop=1"]))
    run = fit(cfg, tmp_path / "run")
    dev = [x for x in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if x["kind"] == "dev"]
    assert [x["step"] for x in dev] == [1, 2]
    assert torch.load(run / "checkpoints" / "best.pt", weights_only=False)["step"] == 1
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=False)["step"] == 2
