"""Hostile configs and run folders: repeated keys, YAML 1.1 words in string fields, ``--set`` literals,
typo suggestions; ``--out`` folders that hold other files or the input config; ``--resume`` with a
different config; ``--overwrite`` of an unfinished run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
os.environ["HF_HUB_OFFLINE"] = "1"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_helpers import make_text_jsonl, text_overrides, tiny_bert_dir

from training.config import Config, ConfigError, config_from_dict, load_config, parse_yaml

# ------------------------------------------------------------------------------------------- config


def _cfg(tmp_path: Path, text: str, overrides: list[str] | None = None) -> Config:
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    return load_config(p, overrides)


def test_repeated_section_is_refused_naming_both_lines(tmp_path: Path) -> None:
    text = "train: {lr: 1e-3, epochs: 3}\nmodel: {name: npr}\ntrain: {batch_size: 8}\n"
    with pytest.raises(ConfigError, match=r"'train' is given twice.*lines 1 and 3"):
        _cfg(tmp_path, text)
    with pytest.raises(ConfigError, match=r"'lr' is given twice.*lines 2 and 4"):
        _cfg(tmp_path, "train:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match="given twice"):
        parse_yaml("a: {x: 1, x: 2}")


def test_dotted_and_nested_same_field_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train.epochs is given twice: as 'train.epochs' \(line 1\) and as "
                                          r"'epochs' under 'train:' \(line 3\)"):
        _cfg(tmp_path, "train.epochs: 5\ntrain:\n  epochs: 2\n")
    with pytest.raises(ConfigError, match="train.epochs is given twice"):
        config_from_dict({"train.epochs": 5, "train": {"epochs": 2}})
    cfg = _cfg(tmp_path, "train.epochs: 5\ntrain:\n  lr: 0.5\n")  # different fields: fine
    assert cfg.train.epochs == 5 and cfg.train.lr == 0.5


def test_string_fields_keep_yaml11_words_as_written(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "name: yes\ndata:\n  include: {domain: [no, en], lang: [on]}\n"
                         "  holdout_values: [on, off, y]\n  train: 0123\n  labels: {no: 0, yes: 1}\n"
                         "  dev:\n  test: 2024-01-01\n  holdout_column: 1.0\n")
    assert cfg.name == "yes"
    assert cfg.data.include == {"domain": ["no", "en"], "lang": ["on"]}
    assert cfg.data.holdout_values == ["on", "off", "y"]
    assert cfg.data.train == "0123" and cfg.data.test == "2024-01-01" and cfg.data.holdout_column == "1.0"
    assert cfg.data.labels == {"no": 0, "yes": 1}
    assert cfg.data.dev == ""
    cfg = _cfg(tmp_path, "data: {holdout_values: no}\ntrain: {progress: no, epochs: 3, lr: 1e-3, betas: [0.8, 1]}\n")
    assert cfg.data.holdout_values == ["no"]  # a single value of a list field
    assert cfg.train.progress is False and cfg.train.epochs == 3 and cfg.train.betas == [0.8, 1.0]


def test_null_in_a_string_list_and_ambiguous_numbers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.holdout_values: a null .* quote it"):
        _cfg(tmp_path, "data: {holdout_values: [on, off, null]}\n")
    with pytest.raises(ConfigError, match=r"data.include: a null"):
        _cfg(tmp_path, "data: {include: {domain: [xsum, ~]}}\n")
    with pytest.raises(ConfigError, match=r"train.epochs: 010 is ambiguous.*giving 8"):
        _cfg(tmp_path, "train: {epochs: 010}\n")
    with pytest.raises(ConfigError, match=r"data.max_length: 1:30 is ambiguous"):
        _cfg(tmp_path, "data: {max_length: 1:30}\n")
    cfg = _cfg(tmp_path, "train: {epochs: 0, lr: 0.5, warmup_steps: -1, weight_decay: 0.0}\n")
    assert cfg.train.epochs == 0 and cfg.train.warmup_steps == -1


def test_set_takes_string_fields_literally() -> None:
    cfg = load_config(None, ["data.train=0123", "data.holdout_values=[on, off]", "data.include={domain: [no, en]}",
                             "name=no", "data.dev=", "data.labels={no: 0, yes: 1}", "train.progress=no",
                             "train.epochs=3", "data.blur_sigma=0,2"])
    assert cfg.data.train == "0123" and cfg.name == "no" and cfg.data.dev == ""
    assert cfg.data.holdout_values == ["on", "off"] and cfg.data.include == {"domain": ["no", "en"]}
    assert cfg.data.labels == {"no": 0, "yes": 1}
    assert cfg.train.progress is False and cfg.train.epochs == 3 and cfg.data.blur_sigma == [0.0, 2.0]
    assert load_config(None, ["data.holdout_values=no"]).data.holdout_values == ["no"]
    with pytest.raises(ConfigError, match="data.holdout_values: a null"):
        load_config(None, ["data.holdout_values=[a, null]"])
    with pytest.raises(ConfigError, match="train.epochs: 0123 is ambiguous"):
        load_config(None, ["train.epochs=0123"])


@pytest.mark.parametrize(("key", "want"), [
    ("train.lerning_rate", "train.lr"), ("train.learning_rate", "train.lr"), ("train.batch", "train.batch_size"),
    ("eval.batch", "eval.batch_size"), ("train.max_length", "data.max_length"), ("epochs", "train.epochs"),
    ("train.epoch", "train.epochs"), ("data.max_lenght", "data.max_length"), ("model.nme", "model.name"),
    ("model.dropout", "model.drop_rate"),
])
def test_typo_suggestions(key: str, want: str) -> None:
    with pytest.raises(ConfigError, match=rf"unknown config key '{key}'; did you mean '{want}'\?"):
        load_config(None, [f"{key}=1"])


def test_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        _cfg(tmp_path, "train: [\n")
    d = parse_yaml("a: &x {k: 1, j: 3}\nb:\n  <<: *x\n  k: 2\n")  # a merge key's value may be overridden
    assert str(d["b"]["k"]) == "2" and str(d["b"]["j"]) == "3"


# --------------------------------------------------------------------------------------- run folders
@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    return {"texts": make_text_jsonl(root / "texts.jsonl"), "bert": tiny_bert_dir(root / "bert")}


def _train(assets: dict[str, Path], cfg_file: Path, out: Path, *extra: str) -> int:
    from training.cli import main

    args = [str(cfg_file), "--out", str(out)]
    for o in text_overrides(assets["texts"], f"hf:{assets['bert']}"):
        args += ["--set", o]
    return main(args + list(extra))


def _cfg_file(tmp_path: Path) -> Path:
    p = tmp_path / "in" / "text.yaml"
    p.parent.mkdir(exist_ok=True)
    p.write_text("# my config\nname: hostile\n", encoding="utf-8")
    return p


@pytest.mark.train
def test_out_holding_the_input_config_or_other_files_is_refused(assets: dict[str, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    exp = tmp_path / "exp1"
    exp.mkdir()
    (exp / "config.yaml").write_text("# keep me\nname: exp1\n", encoding="utf-8")
    (exp / "predictions").mkdir()
    (exp / "predictions" / "dev.jsonl").write_text("mine\n")
    before = sorted(p.name for p in exp.rglob("*"))
    assert _train(assets, exp / "config.yaml", exp) == 2
    assert "is an input of this run" in capsys.readouterr().err
    assert _train(assets, exp / "config.yaml", exp, "--overwrite") == 2
    assert (exp / "config.yaml").read_text().startswith("# keep me")
    assert (exp / "predictions" / "dev.jsonl").read_text() == "mine\n"
    assert sorted(p.name for p in exp.rglob("*")) == before

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    for extra in ((), ("--overwrite",)):
        assert _train(assets, _cfg_file(tmp_path), other, *extra) == 2
        assert "not a run folder written by aigc train" in capsys.readouterr().err
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


@pytest.mark.train
@pytest.mark.slow
def test_unfinished_run_needs_overwrite_and_starts_metrics_fresh(assets: dict[str, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from training.run_folder import MARKER, is_run_folder

    cfg, run = _cfg_file(tmp_path), tmp_path / "empty"
    run.mkdir()  # an existing empty folder is fine
    assert _train(assets, cfg, run) == 0
    assert (run / MARKER).is_file() and is_run_folder(run)
    assert _train(assets, cfg, run) == 2
    assert "--resume to continue it, --overwrite" in capsys.readouterr().err
    for f in (run / "checkpoints").iterdir():  # as if it stopped before its first checkpoint
        f.unlink()
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "stale"}\n')
    assert _train(assets, cfg, run) == 2
    assert "stopped before its first checkpoint: pass --overwrite" in capsys.readouterr().err
    (run / "mine.txt").write_text("x")
    assert _train(assets, cfg, run, "--overwrite") == 2
    assert "mine.txt, which aigc train did not write" in capsys.readouterr().err
    (run / "mine.txt").unlink()
    assert _train(assets, cfg, run, "--overwrite") == 0
    kinds = [json.loads(x)["kind"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert "stale" not in kinds and kinds[0] in ("train", "dev")
    assert (run / "checkpoints" / "best.pt").is_file()
    (run / MARKER).unlink()  # a run folder from before the marker is still recognised by its run.json
    assert is_run_folder(run) and not is_run_folder(tmp_path / "in")


@pytest.mark.train
@pytest.mark.slow
def test_resume_refuses_a_changed_config_and_records_allowed_changes(assets: dict[str, Path], tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main
    from training.run import fit

    run = tmp_path / "t1"
    assert _train(assets, _cfg_file(tmp_path), run) == 0
    snapshot = {f: (run / f).read_text() for f in ("config.yaml", "preprocessing.json", "run.json")}
    bad = ["--resume", "--out", str(run), "--set", "train.max_steps=4", "--set", "train.lr=0.5",
           "--set", "data.max_length=32", "--set", "data.pooling=max"]
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "data.max_length: 16 -> 32" in err and "data.pooling: 'mean' -> 'max'" in err and "train.lr" in err
    assert "train.max_steps" not in err.split("may change only")[0]
    assert {f: (run / f).read_text() for f in snapshot} == snapshot  # nothing written

    assert main(["--resume", "--out", str(run), "--set", "train.max_steps=4", "--set", "train.log_every=1"]) == 0
    cfg = load_config(run / "config.yaml")
    assert cfg.train.max_steps == 4 and cfg.train.log_every == 1 and cfg.data.max_length == 16
    info = json.loads((run / "run.json").read_text())
    assert info["created"] == json.loads(snapshot["run.json"])["created"]
    assert info["resumed"][-1]["changed"] == {"train.max_steps": [2, 4], "train.log_every": [10, 1]}
    assert (run / "preprocessing.json").read_text() == snapshot["preprocessing.json"]

    with pytest.raises(SystemExit):
        main(["--resume", "--overwrite", "--out", str(run)])
    with pytest.raises(ValueError, match="give one of them"):
        fit(cfg, run, resume=True, overwrite=True)
