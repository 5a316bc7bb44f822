"""A zero-shot or features run does not copy its frozen LMs into its checkpoints: it names them and their
fingerprint, and loading the run refuses an LM whose weights changed since."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
sys.path.insert(0, str(Path(__file__).parent))

from test_zeroshot import make_lm, make_tokenizer, save_lm  # noqa: E402
from test_zeroshot_pipeline import _data, zs_config  # noqa: E402

pytestmark = pytest.mark.train


def test_features_checkpoint_names_its_lm_and_refuses_another(tmp_path: Path) -> None:
    from aigc.cli import main as aigc_main
    from training.frozen import FrozenLMError, weights_fingerprint
    from training.run_folder import load_run

    tok = make_tokenizer()
    lm_dir = save_lm(make_lm(len(tok), 0), tok, tmp_path / "lm")
    data = _data(tmp_path, make_lm(len(tok), 0), tok, 20)
    cfg = zs_config(tmp_path, data, {"name": "zeroshot:features", "backbone": str(lm_dir)}, "feat", dev=0.4)
    run = tmp_path / "run"
    assert aigc_main(["train", str(cfg), "--out", str(run)]) == 0
    for name in ("best.pt", "last.pt"):
        ck = torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=False)
        assert not [k for k in ck["model"] if k.startswith("lm.")]  # no LM tensor copied
        assert {"head_weight", "head_bias", "feat_mean", "feat_std"} <= set(ck["model"])  # the fitted head is kept
        assert list(ck["frozen_lms"]) == ["lm"] and str(lm_dir) in ck["frozen_lms"]["lm"]["source"]
    lr = load_run(run)
    assert weights_fingerprint(lr.model.lm) == ck["frozen_lms"]["lm"]["fingerprint"]
    torch.testing.assert_close(lr.model.head_weight, ck["model"]["head_weight"])
    assert int(lr.model.fitted) == 1

    save_lm(make_lm(len(tok), 1), tok, lm_dir)  # the backbone folder now holds other weights
    with pytest.raises(FrozenLMError, match=r"lm: the LM loaded from model.backbone=.* is not the one this run used"):
        load_run(run)
    assert aigc_main(["export", str(run), "--out", str(tmp_path / "b")]) == 2  # export says so, writes nothing
    assert not (tmp_path / "b").exists()


def test_fingerprint_tells_weights_apart() -> None:
    from training.frozen import weights_fingerprint

    a, b = make_lm(40, 0), make_lm(40, 0)
    assert weights_fingerprint(a) == weights_fingerprint(b)
    with torch.no_grad():
        next(b.parameters()).view(-1)[-1] += 1e-3  # one value, the last of its tensor
    assert weights_fingerprint(a) != weights_fingerprint(b)
