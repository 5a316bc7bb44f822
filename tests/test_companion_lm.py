"""A second LM of another tokenizer beside the first (``model.companion_model``, ``preprocessing.companion``).

Windows of the first tokenizer are tokenized again by the second over the same characters; the statistics
of both LMs go to one head; the bundle carries both tokenizers and the graph four inputs. Checked on a
word-level tokenizer beside a character-level one (their token counts differ), from the spec and windows
up to aigc train -> aigc export -> aigc.load agreeing with torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aigc._text import CompanionSpec, TextSpec, TextWindows, encode_windows, window_feeds

CHARS = list("abcdefghijklmnopqrstuvwxyz.,")


def char_tokenizer() -> Any:
    """A character-level fast tokenizer (BPE without merges) that adds its own BOS (<bos> = 3); pad 0."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "</s>", "<bos>", *CHARS])}
    t = Tokenizer(models.BPE(vocab, [], unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 3)])
    return t


def word_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = "the cat sat on mat a dog ran in park ,".split()
    t = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["<pad>", "<unk>", *words])}, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    return t


def spec(comp_max: int = 64) -> TextSpec:
    return TextSpec(max_length=5, stride=2, prefix_ids=(9,), pad_id=0,
                    companion=CompanionSpec(max_length=comp_max, prefix_ids=(3,), pad_id=0))


def test_each_companion_window_reads_the_same_characters_as_its_window() -> None:
    tok_a, tok_b = word_tokenizer(), char_tokenizer()
    text = "the cat sat on the mat, a dog ran in the park"
    enc = encode_windows(tok_a, [text], spec(), tok_b)[0]
    assert isinstance(enc, TextWindows) and enc.companion is not None
    assert len(enc.windows) == len(enc.companion) > 2 and not enc.warnings
    inv_a = {i: w for w, i in tok_a.get_vocab().items()}
    inv_b = {i: c for c, i in tok_b.get_vocab().items()}
    for w, c in zip(enc.windows, enc.companion, strict=True):
        assert w[0] == 9 and c[0] == 3  # each tokenizer's own leading special id
        assert "".join(inv_a[i] for i in w[1:]) == "".join(inv_b[i] for i in c[1:])
    # round trip through bundle.json's form
    assert TextSpec.from_dict(spec().to_dict()) == spec()


def test_a_companion_cut_at_its_length_warns_and_bad_specs_are_refused() -> None:
    tok_a, tok_b = word_tokenizer(), char_tokenizer()
    enc = encode_windows(tok_a, ["the cat sat on the mat"], spec(comp_max=6), tok_b)[0]
    assert isinstance(enc, TextWindows) and enc.companion is not None
    assert all(len(c) <= 6 for c in enc.companion)
    assert any("companion tokenizer's 6 tokens" in w for w in enc.warnings)
    with pytest.raises(ValueError, match="companion tokenizer"):
        encode_windows(tok_a, ["the cat"], spec(), None)
    with pytest.raises(ValueError, match="companion.max_length"):
        TextSpec.from_dict({**spec().to_dict(), "companion": {"max_length": 1, "prefix_ids": [3]}})
    # an empty text is an item error, not a crash of the batch
    out = encode_windows(tok_a, ["", "the dog"], spec(), tok_b)
    assert out[0] == "empty text" and isinstance(out[1], TextWindows)


def test_window_feeds_pad_each_tokenizer_with_its_own_pad() -> None:
    s = TextSpec(max_length=5, stride=2, pad_id=7, companion=CompanionSpec(max_length=8, pad_id=5))
    f = window_feeds(s, [[1, 2], [1]], [[4, 4, 4], [4]])
    assert list(f) == ["input_ids", "attention_mask", "input_ids_b", "attention_mask_b"]
    assert f["input_ids"].tolist() == [[1, 2], [1, 7]] and f["attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert f["input_ids_b"].tolist() == [[4, 4, 4], [4, 5, 5]] and f["attention_mask_b"].sum() == 4
    with pytest.raises(ValueError, match="companion windows"):
        window_feeds(s, [[1, 2]], None)


def _char_lm_folder(tmp: Path, torch: Any) -> Path:
    """A tiny random Llama over the character tokenizer, saved with it as a hub-style folder."""
    from test_zeroshot import make_lm
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=char_tokenizer(), bos_token="<bos>", eos_token="</s>",
                                  pad_token="<pad>", unk_token="<unk>")
    lm = make_lm(len(tok), 7)
    folder = tmp / "char_lm"
    lm.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.train
def test_the_companion_adds_its_seven_statistics_and_needs_its_inputs() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from test_zeroshot import make_lm, make_tokenizer

    from training.lmfeatures import COMPANION_FEATURE_NAMES, FEATURE_NAMES, LikelihoodFeatures

    tok = make_tokenizer()
    model = LikelihoodFeatures(make_lm(len(tok), 0), companion=make_lm(40, 1))
    assert model.feature_names == FEATURE_NAMES + COMPANION_FEATURE_NAMES
    assert model.input_names == ["input_ids", "attention_mask", "input_ids_b", "attention_mask_b"]
    ids = torch.tensor([[2, 5, 6, 7], [2, 8, 9, 0]])
    mask = (ids > 0).long()
    ids_b = torch.tensor([[3, 10, 11, 12, 13, 14], [3, 20, 21, 0, 0, 0]])
    f = model.features(ids, mask, ids_b, (ids_b > 0).long())
    assert f.shape == (2, 14) and torch.isfinite(f).all()
    # the companion's statistics are its own: other windows of the second tokenizer change only them
    g = model.features(ids, mask, torch.tensor([[3, 30, 31, 32, 33, 34], [3, 22, 23, 0, 0, 0]]), (ids_b > 0).long())
    assert torch.equal(f[:, :7], g[:, :7]) and not torch.allclose(f[:, 7:], g[:, 7:])
    with pytest.raises(ValueError, match="input_ids_b"):
        model.features(ids, mask)


@pytest.mark.train
@pytest.mark.slow
def test_train_export_and_runtime_agree_with_a_companion_of_another_tokenizer(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("export.cli")
    from test_zeroshot_pipeline import train_features_run

    from aigc._bundle import BundleError
    from aigc._detector import load
    from aigc.cli import main as aigc_main
    from training.run import load_run
    from training.zeroshot import score_texts

    tok, data, run = train_features_run(tmp_path, {"companion_model": str(_char_lm_folder(tmp_path, torch))},
                                        "lmfeat-companion-test", 40, max_windows=2)
    bundle = tmp_path / "bundle"
    assert (run / "tokenizer" / "tokenizer_b.json").is_file()
    info = json.loads((run / "run.json").read_text())
    assert info["input_names"] == ["input_ids", "attention_mask", "input_ids_b", "attention_mask_b"]
    fitted = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"fit_head"' in x]
    assert fitted and "w_b_lp_mean" in fitted[0] and "w_lp_mean" in fitted[0]
    lr = load_run(run)
    assert lr.model.companion is not None and len(lr.model.head_weight) == 14

    # the int8 variant may keep the companion in fp32; a module the model lacks is refused before any export
    assert aigc_main(["export", str(run), "--out", str(bundle), "--int8-fp32-modules", "companion"]) == 2
    assert aigc_main(["export", str(run), "--out", str(bundle), "--variants", "fp32,int8",
                      "--int8-fp32-modules", "companon"]) == 1 and not bundle.exists()
    assert aigc_main(["export", str(run), "--out", str(bundle), "--targets", "0.2", "--variants", "fp32,int8",
                      "--int8-fp32-modules", "companion", "--force"]) == 0
    spec = json.loads((bundle / "bundle.json").read_text())
    assert spec["variants_eval"]["int8"]["fp32_modules"] == ["companion"]
    import onnx

    int8_graph = onnx.load(str(bundle / "model.int8.onnx"), load_external_data=False)
    assert {p.key: p.value for p in int8_graph.metadata_props}["aigc.int8.fp32_modules"] == "companion"
    from export.variants import module_nodes

    ops = {n.name: n.op_type for n in int8_graph.graph.node}
    kept = module_nodes(bundle / "model.onnx", ("companion",))
    assert kept and all((ops.get(k) or ops.get(f"{k}_MatMul")) in ("MatMul", "Gemm") for k in kept)
    assert "MatMulInteger" in ops.values()  # the first LM in int8
    assert spec["preprocessing"]["companion"]["tokenizer"] == "tokenizer_b.json" and "tokenizer_b.json" in spec["files"]
    # the 16-token windows of the first LM leave the second a quarter more room, plus its BOS
    assert spec["preprocessing"]["companion"]["max_length"] == 16 + 4 + 1
    assert [x["name"] for x in spec["model"]["inputs"]][2:] == ["input_ids_b", "attention_mask_b"]
    det = load(bundle, providers="cpu")
    texts = [r["text"] for r in map(json.loads, data.read_text().splitlines()[:8])] + [""]
    raw, errors = det.raw_scores(texts)
    assert errors[:-1] == [None] * 8 and errors[-1] == "empty text"
    from aigc._text import load_tokenizer

    torch_raw = score_texts(lr.model, tok, texts[:-1], det.text_spec,
                            companion_tokenizer=load_tokenizer(bundle / "tokenizer_b.json"))
    np.testing.assert_allclose(raw[:-1], torch_raw, rtol=1e-4, atol=1e-4)

    # a bundle whose spec lost its companion, or whose second tokenizer changed, is refused by name
    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    s = json.loads((broken / "bundle.json").read_text())
    del s["preprocessing"]["companion"]
    (broken / "bundle.json").write_text(json.dumps(s))
    with pytest.raises(BundleError, match="input_ids_b"):
        load(broken, providers="cpu")
    shutil.rmtree(broken)
    shutil.copytree(bundle, broken)
    (broken / "tokenizer_b.json").write_text("{}")
    with pytest.raises(BundleError, match="tokenizer_b.json"):
        load(broken, providers="cpu")

    # Triton: both tokenizers travel with the model folder; its client scores as aigc.load does
    import importlib.util
    import sys

    import onnxruntime as ort

    assert aigc_main(["export-triton", str(bundle), "--out", str(tmp_path / "repo"), "--kind", "cpu"]) == 0
    d = next((tmp_path / "repo").iterdir())
    assert {"tokenizer.json", "tokenizer_b.json"} <= {p.name for p in d.iterdir()}
    mod_spec = importlib.util.spec_from_file_location(f"client_{d.name}_companion", d / "aigc_triton_client.py")
    assert mod_spec and mod_spec.loader
    client = importlib.util.module_from_spec(mod_spec)
    sys.modules[mod_spec.name] = client
    mod_spec.loader.exec_module(client)
    tdet = client.load(session=ort.InferenceSession(str(d / "1" / "model.onnx"), providers=["CPUExecutionProvider"]))
    got = [r.to_dict() for r in tdet.score(texts[:-1])]
    ref = [r.to_dict() for r in det.score(texts[:-1])]
    np.testing.assert_allclose([g["probability"] for g in got], [r["probability"] for r in ref], atol=1e-6)
