"""Export: tiny image model -> bundle round trip, parity (and its failure), variants, refusals, support.

One module-scoped image bundle (fp32 + int8 + fp16) is built with the dynamo exporter (a few
seconds); the other tests reuse it or fail before exporting.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from _export_tiny import IMG, image_run, make_texts, text_run, write_images

import aigc
from aigc._bundle import open_bundle, write_bundle
from aigc._calibration import CalibrationError, apply_calibration
from aigc._thresholds import ThresholdError
from export import (
    BuildOptions,
    ExportRefused,
    ParityError,
    build_bundle,
    check_parity,
    export_image_model,
    item_meta,
    torch_raw_scores,
)

pytestmark = [pytest.mark.train]


@pytest.fixture(scope="module")
def image_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("export_image")
    items, labels = write_images(root / "imgs")
    run = image_run()
    out = build_bundle(run, root / "bundle", items, labels, options=BuildOptions(variants=["int8", "fp16"]))
    return {"root": root, "items": items, "labels": labels, "run": run, "bundle": out}


@pytest.mark.slow
def test_image_round_trip(image_case: dict[str, Any]) -> None:
    b, run, items = image_case["bundle"], image_case["run"], image_case["items"]
    spec = open_bundle(b).spec
    assert sorted(spec["model"]["variants"]) == ["fp16", "fp32", "int8"]
    assert spec["provenance"]["exporter"] == "torch.onnx dynamo"
    cal = spec["calibration"]
    assert cal["method"] == "temperature" and cal["n"] == 220
    assert cal["after"]["nll"] < cal["before"]["nll"]
    assert set(spec["thresholds"]) == {"fpr@1%", "fpr@5%", "balanced"}
    for t in spec["thresholds"].values():
        assert t["n_human"] == 110 and t["fpr_upper_95"] >= t["achieved_fpr"]
    assert spec["thresholds"]["fpr@1%"]["achieved_fpr"] <= 0.01
    ev = spec["variants_eval"]
    assert set(ev) == {"fp32", "int8", "fp16"} and all(abs(v["auroc_delta"]) <= 0.005 for v in ev.values())
    assert ev["fp16"]["rank_agreement_fp32"] > 0.99 and ev["int8"]["rank_agreement_fp32"] > 0.95
    assert ev["int8"]["weight_range"] == 64 and "weight_range" not in ev["fp16"]
    assert spec["metrics"]["parity"]["max_abs_diff"] <= 1e-4

    # calibrated probabilities of the bundle == torch model + the bundle's calibration, on raw files
    det = aigc.load(b, providers="cpu")
    p = det.predict_proba(items[:12])[:, 1]
    raw, _ = torch_raw_scores(run.model, "image", run.preprocessing, items[:12], ["pixel_values"])
    np.testing.assert_allclose(p, apply_calibration(raw, cal), atol=1e-4)
    # batch 1 and an odd batch agree (the batch dimension did not specialize)
    det1 = aigc.load(b, providers="cpu", batch_size=1)
    np.testing.assert_allclose(det1.raw_scores(items[:5])[0], det.raw_scores(items[:5])[0], atol=1e-5)
    for v in ("int8", "fp16"):
        pv = aigc.load(b, providers="cpu", variant=v).predict_proba(items[:12])[:, 1]
        assert np.max(np.abs(pv - p)) < 0.02

    # aigc info can show it
    from aigc.cli._info import render_card

    card = render_card(spec)
    assert "calibration: temperature" in card and "fpr@1%" in card and "int8" in card
    # the CNN's int8 quantizes only its head: it says why it is there
    import onnx

    props = {p.key: p.value for p in onnx.load(str(b / "model.int8.onnx")).metadata_props}
    assert "runs at fp32's speed" in props["aigc.int8.note"] and "leave int8 out" in props["aigc.int8.note"]


@pytest.mark.slow
def test_image_support_flags_shifted_items(image_case: dict[str, Any]) -> None:
    from PIL import Image

    root: Path = image_case["root"]
    rng = np.random.default_rng(5)
    arr = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(root / "in.jpg", quality=90)
    Image.fromarray(arr).save(root / "in.png")
    big = (rng.random((300, 400, 3)) * 255).astype(np.uint8)
    Image.fromarray(big).save(root / "big.png")
    Image.fromarray(arr).save(root / "low.jpg", quality=20)
    Image.fromarray(arr).save(root / "other.webp")
    det = aigc.load(image_case["bundle"], providers="cpu")
    res = det.score([str(root / n) for n in ("in.jpg", "in.png", "big.png", "low.jpg", "other.webp")])
    assert [r.out_of_support for r in res] == [False, False, True, True, True], [r.support_reasons for r in res]
    assert "400 px wide, far above" in res[2].support_reasons[0]  # the combined score (support v1) names the feature
    assert res[3].support_reasons[0].startswith("20 JPEG quality, far below")
    assert "format WEBP: never seen" in res[4].support_reasons[0]
    o = open_bundle(image_case["bundle"]).spec["support"]["image"]["outlier"]
    assert o["version"] == 2 and o["target_rate"] == 0.01
    # data_hashes: the calibration items are recorded, so aigc eval can tell an overlap
    dh = open_bundle(image_case["bundle"]).spec["data_hashes"]
    assert dh["version"] == 1 and dh["calibration"]["n"] == len(image_case["items"]) and dh["training"] is None


@pytest.mark.slow
def test_parity_fails_when_a_preprocessing_step_changes(image_case: dict[str, Any], tmp_path: Path) -> None:
    run, items = image_case["run"], image_case["items"][:8]
    rep = check_parity(run.model, image_case["bundle"], items, run.preprocessing, ["pixel_values"])
    assert rep.ok and rep.max_abs_diff <= 1e-4
    for field, value in (("interpolation", "bicubic"), ("mean", [0.45, 0.5, 0.5])):
        bad = tmp_path / field
        shutil.copytree(image_case["bundle"], bad)
        spec = json.loads((bad / "bundle.json").read_text())
        spec["preprocessing"][field] = value
        write_bundle(bad, spec, overwrite=True)
        with pytest.raises(ParityError, match=r"\|P_bundle - P_torch\| = .* > 0.0001 on item \d+ \(.*\.(png|jpg)\)"):
            check_parity(run.model, bad, items, run.preprocessing, ["pixel_values"])


def _degrading_variant(variant: str, src: Any, out_dir: Any, modality: str | None = None, **_: Any) -> Path:
    """A stand-in for make_variant that ships a broken graph (the head's weights reversed)."""
    import onnx
    from onnx import numpy_helper

    from export.variants import VARIANT_FILES

    m = onnx.load(str(src))
    for init in m.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.shape == (2, 4) or a.shape == (4, 2):
            init.CopyFrom(numpy_helper.from_array(-a, init.name))
    dst = Path(out_dir) / VARIANT_FILES[variant]
    onnx.save(m, str(dst))
    return dst


@pytest.mark.slow
def test_variant_that_loses_auroc_is_refused_unless_forced(
    image_case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import export.bundle_build as bb

    monkeypatch.setattr(bb, "make_variant", _degrading_variant)
    items, labels = image_case["items"][:120], image_case["labels"][:120]
    out = tmp_path / "b"
    with pytest.raises(ExportRefused, match=r"int8: AUROC 0\.\d+ vs fp32 0\.\d+ on 120 calibration items \(drop"):
        build_bundle(image_run(), out, items, labels, options=BuildOptions(variants=["int8"], targets=[0.05]))
    assert not out.exists() and not list(tmp_path.glob(".b.tmp-*"))  # nothing half-written
    zp = tmp_path / "b.zip"  # a .zip output: the bundle folder zipped
    with caplog.at_level(logging.WARNING, logger="export.bundle_build"):
        build_bundle(image_run(), zp, items, labels, options=BuildOptions(variants=["int8"], targets=[0.05], force=True))
    assert zp.is_file() and not out.exists()
    ev = open_bundle(zp).spec["variants_eval"]["int8"]
    assert ev["forced"] is True and ev["auroc_delta"] < -0.005
    assert ev["rank_agreement_fp32"] < 0  # the reversed head orders the split backwards
    assert "int8 orders the calibration split differently from fp32" in caplog.text
    # whoever reads the forced variant's scores is told, as the gate told the exporter
    assert ev["forced_reason"].startswith("int8: AUROC") and "drop" in ev["forced_reason"]
    from aigc.cli._info import render_card

    assert f"int8: shipped with --force past the AUROC gate that refused it: {ev['forced_reason']}" in render_card(
        open_bundle(zp).spec)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="aigc"):
        aigc.load(zp, variant="int8")
    assert "int8 variant failed the export's AUROC gate and was shipped with --force: int8: AUROC" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="aigc"):
        aigc.load(zp)
    assert "AUROC gate" not in caplog.text  # fp32 passed: no warning
    # and an evaluation report of that variant carries it, where an analyst reads the figures
    from _eval_data import write_image_folder

    from aigc.cli import main as cli_main

    data = write_image_folder(tmp_path / "data", n_per_class=6, corrupt=False)
    rep = tmp_path / "rep"
    assert cli_main(["eval", str(zp), str(data), "--report", str(rep), "--variant", "int8", "--bootstrap", "0",
                     "--no-robustness", "--no-progress"]) == 0
    metrics = json.loads((rep / "metrics.json").read_text())
    assert "shipped with --force: int8: AUROC" in metrics["bundles"][0]["variant_warning"]
    for page in ("report.html", "summary.md"):
        assert "int8 variant failed the export&#x27;s AUROC gate" in (rep / page).read_text() or (
            "int8 variant failed the export's AUROC gate" in (rep / page).read_text())


@pytest.mark.slow
def test_drop_refused_writes_the_bundle_without_the_refused_variant(
    image_case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An LM export takes 6-16 minutes before the gate speaks: --drop-refused keeps the fp32 bundle, says why
    the variant is missing, and holds no file of it."""
    import export.bundle_build as bb
    from aigc._bundle import BundleError
    from aigc.cli import main as cli_main
    from aigc.cli._info import render_card

    monkeypatch.setattr(bb, "make_variant", _degrading_variant)
    items, labels = image_case["items"][:120], image_case["labels"][:120]
    out = tmp_path / "b"
    build_bundle(image_run(), out, items, labels,
                 options=BuildOptions(variants=["int8"], targets=[0.05], drop_refused=True))
    spec = open_bundle(out).spec  # every listed file hashed and present
    assert set(spec["model"]["variants"]) == {"fp32"} and "variant_calibration" not in spec
    assert not (out / "model.int8.onnx").exists() and "model.int8.onnx" not in spec["files"]
    assert spec["variants_eval"]["int8"]["refused"].startswith("int8: AUROC")
    with pytest.raises(BundleError, match=r"no 'int8' variant in this bundle .*export refused it: int8: AUROC"):
        aigc.load(out, variant="int8")
    assert "int8: not in this bundle, refused at export: int8: AUROC" in render_card(spec)
    assert cli_main(["score", str(out), str(items[0]), "--out", str(tmp_path / "s.jsonl"), "--variant", "int8",
                     "--no-progress"]) == 2
    assert "--variant: this bundle has no 'int8' variant (it has fp32); export refused it: int8: AUROC" in (
        capsys.readouterr().err)
    assert aigc.load(out).predict_proba(items[:4]).shape == (4, 2)


def test_refusals_before_any_export(image_case: dict[str, Any], tmp_path: Path) -> None:
    items, labels = image_case["items"], image_case["labels"]
    with pytest.raises(CalibrationError, match="isotonic needs at least 1000 items, found 220"):
        build_bundle(image_run(), tmp_path / "a", items, labels, options=BuildOptions(calibration="isotonic"))
    with pytest.raises(ThresholdError, match=r"target FPR 0.001 \(fpr@0.1%\) needs at least 999 human .* found 110"):
        build_bundle(image_run(), tmp_path / "b", items, labels, options=BuildOptions(targets=[0.001]))
    with pytest.raises(FileExistsError, match="--overwrite"):
        build_bundle(image_run(), image_case["bundle"], items, labels)
    with pytest.raises(CalibrationError, match="both classes"):
        build_bundle(image_run(), tmp_path / "c", items[:130], [0] * 130, options=BuildOptions(targets=[0.05]))
    assert not any(tmp_path.iterdir())


def test_worst_group_refusal_before_any_export(image_case: dict[str, Any], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """No group with 20 humans is known from the labels: refused before minutes of export, not after."""
    import export.bundle_build as bb

    def exported(*a: Any, **kw: Any) -> Any:
        raise AssertionError("the export began before the worst-group refusal")

    monkeypatch.setattr(bb, "_build_in", exported)
    items, labels = image_case["items"], image_case["labels"]
    sources = [f"s{i % 11}" for i in range(len(items))]  # 110 humans over 11 sources: 10 each
    with pytest.raises(ThresholdError, match=r"by 'source': no group has 20 human calibration items \(found \{'s0': 10"):
        build_bundle(image_run(), tmp_path / "a", items, labels, worst_groups=sources,
                     options=BuildOptions(targets=[0.05], worst_group_column="source"))
    assert not any(tmp_path.iterdir())


def test_torchscript_fallback_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    real = torch.onnx.export

    def no_dynamo(*a: Any, **kw: Any) -> Any:
        if kw.get("dynamo"):
            raise RuntimeError("simulated dynamo failure")
        return real(*a, **kw)

    monkeypatch.setattr(torch.onnx, "export", no_dynamo)
    from _export_tiny import image_preprocessing, tiny_cnn

    path, exporter = export_image_model(tiny_cnn(), image_preprocessing(), tmp_path / "m.onnx")
    assert exporter == "torchscript" and path.is_file()
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 3):
        assert sess.run(None, {"pixel_values": np.zeros((n, 3, IMG, IMG), np.float32)})[0].shape == (n, 2)


def test_item_meta_matches_the_runtime(image_case: dict[str, Any], tmp_path: Path) -> None:
    det = aigc.load(image_case["bundle"], providers="cpu")
    items = image_case["items"][:6]
    assert [item_meta(it, "image") for it in items] == det.meta(items)
    # text: the same fields the Detector collects, from a tiny torch-free bundle
    from _bundles import build_bundle as build_tiny

    from aigc._text import TextSpec, load_tokenizer

    tb = build_tiny(tmp_path / "t", "text")
    tdet = aigc.load(tb, providers="cpu")
    texts = make_texts(3)[0] + ["Привет мир, это текст."]
    ts = TextSpec.from_dict(tdet.spec["preprocessing"])
    tok = load_tokenizer(tb / "tokenizer.json")
    assert [item_meta(t, "text", tok, ts) for t in texts] == tdet.meta(texts)


def test_text_run_helper_builds_a_consistent_tokenizer(tmp_path: Path) -> None:
    run = text_run(tmp_path)
    from aigc._text import TextSpec, encode_windows, load_tokenizer

    tok = load_tokenizer(run.tokenizer_file)
    enc = encode_windows(tok, ["the crucial tapestry of it"], TextSpec.from_dict(run.preprocessing))[0]
    assert enc.windows[0][0] == 2 and enc.windows[0][-1] == 3 and 1 not in enc.windows[0]


@pytest.mark.shared
@pytest.mark.slow
def test_real_images_round_trip(shared_data: Path, tmp_path: Path) -> None:
    """The 100 JPEGs of ../shared/data/images (varied sizes) through export and the runtime."""
    real = sorted((shared_data / "images" / "real").rglob("*.jp*g"))
    ai = sorted((shared_data / "images" / "ai").rglob("*.jp*g"))
    if len(real) < 20 or len(ai) < 20:
        pytest.skip(f"../shared/data/images has {len(real)} real and {len(ai)} ai JPEGs; expected 50 each")
    items = [str(p) for p in real + ai]
    labels = [0] * len(real) + [1] * len(ai)
    run = image_run()
    out = build_bundle(run, tmp_path / "b", items, labels, options=BuildOptions(targets=[0.05]))
    spec = open_bundle(out).spec
    assert spec["metrics"]["parity"]["ok"] and spec["support"]["image"]["formats"] == {"JPEG": 1.0}
    res = aigc.load(out, providers="cpu").score(items[:10], threshold="fpr@5%")
    assert all(r.error is None for r in res)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_agreement_is_spearman(seed: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    from export.bundle_build import rank_agreement

    rng = np.random.default_rng(seed)
    a = rng.normal(size=300)
    b = a + rng.normal(scale=0.7, size=300)
    a[:40] = np.round(a[:40])  # ties share their mean rank
    assert rank_agreement(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-4)
    assert rank_agreement(a, 3 * a + 1) == 1.0 and rank_agreement(a, -a) == -1.0
    assert np.isnan(rank_agreement(a[:1], b[:1])) and np.isnan(rank_agreement(np.ones(5), b[:5]))
