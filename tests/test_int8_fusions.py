"""int8 of text encoders: exported with eager attention, ONNX Runtime's transformer fusions first, guarded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime.transformers.optimizer")

from tests._export_tiny import tiny_bert, tiny_cnn


def _run(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    from aigc._session import create_session

    return np.asarray(create_session(path, "cpu", 1).run(None, feeds)[0], np.float64)


def test_text_export_uses_eager_attention_and_restores_the_model(tmp_path: Path) -> None:
    from export.onnx_export import export_text_model

    model = tiny_bert()
    bert = model.model
    bert.set_attn_implementation("sdpa")
    export_text_model(model, ["input_ids", "attention_mask"], tmp_path / "m.onnx")
    assert bert.config._attn_implementation == "sdpa"  # put back after the export
    import onnx

    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert "Softmax" in ops and "Erf" in ops  # the eager attention and GELU, which the fusions recognise


def test_int8_of_a_text_encoder_quantizes_the_fused_graph(tmp_path: Path) -> None:
    import onnx

    from export.onnx_export import export_text_model
    from export.variants import _sample_text_feeds, fuse_text_encoder, make_variant

    export_text_model(tiny_bert(), ["input_ids", "attention_mask"], tmp_path / "model.onnx")
    stats = fuse_text_encoder(tmp_path / "model.onnx", tmp_path / "fused.onnx")
    assert stats and stats.get("SkipLayerNormalization", 0) >= 2, stats
    feeds = _sample_text_feeds(tmp_path / "model.onnx")
    assert feeds["input_ids"].max() < 100 and feeds["attention_mask"][1, -1] == 0
    ref = _run(tmp_path / "model.onnx", feeds)
    assert np.max(np.abs(_run(tmp_path / "fused.onnx", feeds) - ref)) <= 1e-4

    out = make_variant("int8", tmp_path / "model.onnx", tmp_path, modality="text")
    m = onnx.load(str(out))
    props = {p.key: p.value for p in m.metadata_props}
    assert "SkipLayerNormalization:" in props.get("aigc.int8.fusions", "")
    ops = {n.op_type for n in m.graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    assert np.max(np.abs(_run(out, feeds) - ref)) < 0.05  # int8 error on a random tiny model

    (tmp_path / "plain").mkdir()
    plain = make_variant("int8", tmp_path / "model.onnx", tmp_path / "plain")  # no modality: no fusions
    assert "aigc.int8.fusions" not in {p.key for p in onnx.load(str(plain)).metadata_props}


def test_fusions_are_skipped_for_a_graph_that_is_not_an_encoder(tmp_path: Path) -> None:
    from export.onnx_export import export_image_model
    from export.variants import fuse_text_encoder
    from tests._export_tiny import image_preprocessing

    export_image_model(tiny_cnn(), image_preprocessing(), tmp_path / "cnn.onnx")
    assert fuse_text_encoder(tmp_path / "cnn.onnx", tmp_path / "fused.onnx") is None
    assert not (tmp_path / "fused.onnx").exists()


def test_fusions_that_change_the_outputs_are_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard: a fused graph whose outputs differ from the plain graph's is not used."""
    import onnx
    from onnx import numpy_helper

    import export.variants as ev
    from export.onnx_export import export_text_model

    export_text_model(tiny_bert(), ["input_ids", "attention_mask"], tmp_path / "model.onnx")
    import onnxruntime.transformers.optimizer as opt_mod

    real = opt_mod.optimize_model

    def broken(*a: object, **k: object) -> object:
        om = real(*a, **k)
        for init in om.model.graph.initializer:  # every bias shifted by 1
            if "bias" in init.name and init.data_type == onnx.TensorProto.FLOAT:
                init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 1.0, init.name))
        return om

    monkeypatch.setattr(opt_mod, "optimize_model", broken)
    assert ev.fuse_text_encoder(tmp_path / "model.onnx", tmp_path / "fused.onnx") is None
    assert not (tmp_path / "fused.onnx").exists()
    out = ev.make_int8(tmp_path / "model.onnx", tmp_path / "q.onnx", fuse_text=True)
    assert "aigc.int8.fusions" not in {p.key for p in onnx.load(str(out)).metadata_props}
