"""End-to-end scoring of a folder of JPEGs (decode + preprocessing + model) against the model alone on
ready tensors, same bundle, batch size and threads, measured side by side in one run.

    .venv/bin/python bench/bench_runtime.py [--n 256] [--batch-size 32] [--threads 2] [--repeats 3]

The bundle is a 224-pixel EfficientNet-Lite0 (timm, random weights: speed does not depend on them)
exported to ONNX here, so the script needs the train extra; the scoring itself runs on `aigc` only.
Prints images/s for both paths and the ratio (target: end-to-end >= 0.8 of model-only).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_cnn_bundle(out: Path) -> Path:
    import onnx
    import timm
    import torch

    from aigc._bundle import write_bundle

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=2).eval()
    x = torch.randn(2, 3, 224, 224)
    torch.onnx.export(model, (x,), str(out / "model.onnx"), input_names=["pixel_values"], output_names=["logits"],
                      dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False)
    onnx.checker.check_model(str(out / "model.onnx"))
    spec = {
        "format_version": 1, "name": "bench-efficientnet-lite0", "modality": "image", "labels": ["real", "ai"],
        "model": {"variants": {"fp32": "model.onnx"}, "output_kind": "logits",
                  "inputs": [{"name": "pixel_values", "rank": 4, "dtype": "float32"}],
                  "outputs": [{"name": "logits", "rank": 2}]},
        "preprocessing": {"type": "image", "size": [224, 224], "resize": "none", "crop": "center",
                          "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bicubic", "rgb_rule": "v1"},
        "calibration": {"method": "none", "params": {}},
        "thresholds": {"balanced": {"value": 0.5, "n_human": 0, "achieved_fpr": 0.0}},
        "provenance": {"note": "benchmark bundle, random weights"},
    }
    write_bundle(out, spec, overwrite=True)
    return out


def make_jpegs(folder: Path, n: int, size: tuple[int, int] = (320, 256)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        arr = (rng.random((size[1] // 8, size[0] // 8, 3)) * 255).astype(np.uint8)
        img = Image.fromarray(arr).resize(size, Image.Resampling.BICUBIC).filter(ImageFilter.DETAIL)
        p = folder / f"img_{i:05d}.jpg"
        img.save(p, "JPEG", quality=90)
        paths.append(p)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--workers", type=int, default=None, help="decode threads (default: aigc's)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    import aigc
    from aigc._image import ImageSpec, decode_image, preprocess_image

    tmp = Path(tempfile.mkdtemp(prefix="aigc-bench-"))
    bundle = make_cnn_bundle(tmp / "bundle")
    paths = make_jpegs(tmp / "jpegs", args.n)
    det = aigc.load(bundle, threads=args.threads, batch_size=args.batch_size, workers=args.workers)
    spec = ImageSpec.from_dict(det.spec["preprocessing"])
    ready = np.stack([preprocess_image(decode_image(p).image, spec) for p in paths])
    sess, bs = det.session, args.batch_size

    def model_only() -> None:
        for s in range(0, len(ready), bs):
            sess.run(["logits"], {"pixel_values": ready[s : s + bs]})

    def end_to_end() -> None:
        res = det.score(paths, threshold="balanced")
        assert all(r.error is None for r in res)

    model_only()  # warm-up
    end_to_end()
    t_model, t_e2e = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        t0 = time.perf_counter()
        model_only()
        t_model.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        end_to_end()
        t_e2e.append(time.perf_counter() - t0)
    m, e = args.n / min(t_model), args.n / min(t_e2e)
    print(f"images: {args.n} JPEG 320x256 -> 224 crop; batch {bs}; ORT threads {args.threads}; decode workers {det.workers}")
    print(f"model only (ready tensors): {m:8.1f} images/s")
    print(f"end to end (decode+prep+model): {e:8.1f} images/s")
    print(f"ratio end-to-end / model-only: {e / m:.3f}  (target >= 0.8)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
