"""Every shipped config loads against the dataclasses; unknown keys and bad values are errors that say why."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
import _train_helpers  # noqa: F401  (puts this checkout's training package first)

from training.config import ConfigError, config_from_dict, config_to_dict, load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
CUT_DATA = "runs/data/text_cut.jsonl"


def test_configs_are_shipped() -> None:
    names = {p.stem for p in CONFIGS}
    for want in ("image_efficientnet_lite0", "image_npr", "image_clip_probe", "text_minilm_l6", "text_roberta_base"):
        assert want in names and f"{want}_shared" in names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_loads(path: Path) -> None:
    from training.registry import get_entry

    cfg = load_config(path)
    assert cfg.name == path.stem
    entry = get_entry(cfg.model.name)  # the model name is registered
    assert cfg.data.train
    # round trip: the resolved config (what a run folder stores) loads back to the same config
    assert config_to_dict(config_from_dict(config_to_dict(cfg))) == config_to_dict(cfg)
    if cfg.data.train == CUT_DATA:  # openings cut: a pair's two texts stay in one split
        assert cfg.data.group_by == "group" and cfg.data.group_human_text
    if not path.stem.startswith(("image_", "text_")):
        return  # configs of other rooms (quickstart, zero-shot): loading them is the check
    if path.stem.endswith("_shared"):
        assert cfg.data.train.startswith("../shared/data/")
        if entry.modality == "text":
            assert cfg.data.group_by == "pair_id" and cfg.data.group_human_text
    elif path.stem.endswith("_cut_newer"):  # bench/textsets.py --out ... --newer-out ...: newer texts all train
        assert cfg.data.train == "runs/data/text_cut_rest.jsonl"
        assert cfg.data.extra_train == ["runs/data/text_cut_newer.jsonl"]
        assert cfg.data.group_by == "group" and cfg.data.group_human_text
    elif path.stem.endswith("_cut"):  # the shared sets with every shared opening cut (bench/textsets.py --out)
        assert cfg.data.train == CUT_DATA and cfg.data.group_by == "group" and cfg.data.group_human_text
    else:
        assert cfg.data.train.startswith("hf:")
    assert entry.modality == ("image" if path.stem.startswith("image_") else "text")


def test_overrides_and_types() -> None:
    cfg = load_config(None, ["train.epochs=3", "train.lr=3e-4", "data.labels={human: 0, machine: 1}",
                             "data.holdout_values=[xsum, squad]", "model.name=npr", "data.train=1"])
    assert cfg.train.epochs == 3 and cfg.train.lr == pytest.approx(3e-4)
    assert cfg.data.labels == {"human": 0, "machine": 1}
    assert cfg.data.holdout_values == ["xsum", "squad"]
    assert cfg.data.train == "1"  # a str field keeps what was written


def test_unknown_key_names_it_and_suggests() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'train.epoch'; did you mean 'train.epochs'\?"):
        load_config(None, ["train.epoch=3"])
    with pytest.raises(ConfigError, match="did you mean 'data.max_length'"):
        config_from_dict({"data": {"max_lenght": 3}})


def test_bad_value_names_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train.epochs: found 'three', expected int"):
        load_config(None, ["train.epochs=three"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(None, ["train.epochs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  nme: npr\n")
    with pytest.raises(ConfigError, match="did you mean 'model.name'"):
        load_config(bad)


@pytest.mark.shared
@pytest.mark.slow
def test_cut_configs_read_the_file_textsets_writes(shared_data: Path, tmp_path: Path) -> None:
    """bench/textsets.py writes the data of the ``*_cut`` configs: every set, openings cut, and the splits hold
    no human text on both sides."""
    import subprocess
    import sys

    from training.data import make_splits

    out = tmp_path / "text_cut.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "textsets.py"), "--out", str(out), "--fdg", "20,3",
                    "--glimpse", "3,5", "--evobench", "3,30"], check=True, capture_output=True, timeout=300)
    # an existing file is never overwritten
    again = subprocess.run([sys.executable, str(ROOT / "bench" / "textsets.py"), "--out", str(out)],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "exists" in again.stderr
    cfg = load_config(ROOT / "configs" / "text_lmfeatures_qwen05_cut.yaml", [f"data.train={out}"])
    splits = make_splits(cfg.data, "text")
    groups = [{r["group"] for r in splits[k]} for k in ("train", "dev")]
    assert not groups[0] & groups[1]
    gens = {r["generator"] for k in ("train", "dev") for r in splits[k]}
    assert any("gpt-4o" in g for g in gens) and "gpt-j-6B" in gens and "gemini-1.5-pro" in gens  # all three sets
