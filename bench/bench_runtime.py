"""End-to-end scoring of real-photo JPEGs (decode + preprocessing + model) against the model alone on ready
tensors, at 0.3, 2, 6 and 12 megapixels, for each decode/crop policy, measured side by side in one run.

    .venv/bin/python bench/bench_runtime.py [--mp 0.3 2 6 12] [--n 32] [--threads 2] [--repeats 3]

Photos: scikit-image's colour photos (astronaut, chelsea, coffee, rocket, motorcycle, hubble, IHC), cut
to 4:3, upscaled (bicubic) to each size and saved as JPEG quality 90 (4:2:0). Bundles: a 224-pixel
EfficientNet-Lite0 and a small one (MobileNetV3-Small-0.5 at 96 pixels), timm with random weights (speed
does not depend on them), exported here, so the script needs the train extra; the scoring runs on `aigc`.

Policies (each its own bundle.json over the same model.onnx):
- ``shorter/full``: resize the shorter side to the crop size from a full decode (bundles made before);
- ``shorter/draft``: the same with ``decode: {"jpeg_draft": true}`` (DCT-domain downscale first);
- ``crop/full``: centre crop at full resolution from a full decode (region decode switched off);
- ``crop/region``: the same crop from a lossless crop of its JPEG region (identical pixels);
- ``floor``: the lossless crop transform alone (libjpeg-turbo entropy-decodes the whole file to find
  the region's coefficients), on the same decode threads: no crop policy can beat it.
Targets (issue 16, 2 threads, Lite0): shorter/draft >= 0.8 of model-only at 2, 6, 12 MP; crop/region
time per image within 1.5x of floor + model (the bound when both share the cores).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = {"lite0-224": ("efficientnet_lite0", 224), "small-96": ("mobilenetv3_small_050", 96)}


def export_model(arch: str, size: int, out: Path, cache: Path | None = None) -> Path:
    """timm ``arch`` (random weights) at ``size`` as ``out/model.onnx``; copied from ``cache/<arch>-<size>.onnx``
    when that exists (machines without the exporter), else exported and, with ``cache``, kept there."""
    out.mkdir(parents=True, exist_ok=True)
    cached = cache / f"{arch}-{size}.onnx" if cache is not None else None
    if cached is not None and cached.is_file():
        shutil.copy(cached, out / "model.onnx")
        return out / "model.onnx"
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False, num_classes=2).eval()
    torch.onnx.export(model, (torch.randn(2, 3, size, size),), str(out / "model.onnx"), input_names=["pixel_values"],
                      output_names=["logits"], dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=17, dynamo=False)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "model.onnx", cached)
    return out / "model.onnx"


def make_bundle(onnx_file: Path, out: Path, preprocessing: dict[str, Any]) -> Path:
    from aigc._bundle import write_bundle

    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(onnx_file, out / "model.onnx")
    spec = {
        "format_version": 1, "name": f"bench-{out.name}", "modality": "image", "labels": ["real", "ai"],
        "model": {"variants": {"fp32": "model.onnx"}, "output_kind": "logits",
                  "inputs": [{"name": "pixel_values", "rank": 4, "dtype": "float32"}],
                  "outputs": [{"name": "logits", "rank": 2}]},
        "preprocessing": preprocessing,
        "calibration": {"method": "none", "params": {}},
        "thresholds": {"balanced": {"value": 0.5, "n_human": 0, "achieved_fpr": 0.0}},
        "provenance": {"note": "benchmark bundle, random weights"},
    }
    write_bundle(out, spec, overwrite=True)
    return out


def photos() -> list[np.ndarray]:
    """scikit-image's bundled colour photos (no download)."""
    from skimage import data

    return [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.stereo_motorcycle()[0],
            data.hubble_deep_field(), data.immunohistochemistry()]


def make_jpegs(folder: Path, megapixels: float, n: int) -> list[Path]:
    """``n`` JPEGs of ``megapixels`` (4:3), each a photo cut to 4:3, upscaled and saved at quality 90."""
    folder.mkdir(parents=True, exist_ok=True)
    h = round((megapixels * 1e6 * 3 / 4) ** 0.5)
    w = round(h * 4 / 3)
    srcs = photos()
    paths = []
    for i in range(n):
        a = srcs[i % len(srcs)]
        ah, aw = a.shape[:2]
        ch, cw = (ah, min(aw, ah * 4 // 3)) if aw * 3 >= ah * 4 else (min(ah, aw * 3 // 4), aw)
        y0, x0 = (ah - ch) // 2 + (i // len(srcs)) % 3, (aw - cw) // 2  # a pixel shift: no two files alike
        img = Image.fromarray(a[y0 : y0 + ch - 3, x0 : x0 + cw]).resize((w, h), Image.Resampling.BICUBIC)
        p = folder / f"photo_{i:03d}.jpg"
        img.save(p, "JPEG", quality=90)
        paths.append(p)
    return paths


def interleaved_rates(fns: dict[str, Callable[[], None]], n: int, repeats: int) -> dict[str, float]:
    """images/s of each path, best of ``repeats``; one pass of every path per round, so that all paths
    see the same machine load."""
    for fn in fns.values():
        fn()  # warm-up
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return {k: n / t for k, t in best.items()}


def measure(paths: list[Path], dets: dict[str, Any], tj: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Every path on the same files, interleaved; rates in images/s and the ratios."""
    import aigc._jpeg as jpeg
    from aigc._image import crop_origins

    n, bs = len(paths), args.batch_size
    sess = dets["crop"].session
    # the tensors end-to-end feeds (random inputs can drive random weights into slow denormals)
    ready = np.stack([jpeg.prepare_image(p, dets["shorter/full"].image_spec).arrays[0] for p in paths])
    w, h = Image.open(paths[0]).size
    spec = dets["crop"].image_spec
    boxes = jpeg._regions(crop_origins(w, h, spec), spec, (w, h), (16, 16))  # 4:2:0: 16x16 MCUs
    assert boxes is not None
    (x0, y0, x1, y1), _ = boxes[0]
    blobs = [p.read_bytes() for p in paths]
    region_fn = jpeg._region

    def model_only() -> None:
        for s in range(0, n, bs):
            sess.run(["logits"], {"pixel_values": ready[s : s + bs]})

    def e2e(det: Any) -> Callable[[], None]:
        def run() -> None:
            res = det.score(paths, threshold="balanced")
            assert all(r.error is None for r in res), res[0].error
        return run

    def floor() -> None:
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(lambda b: tj.crop_multiple(b, [(x0, y0, x1 - x0, y1 - y0)]), blobs))

    def crop_full() -> None:
        jpeg._region = lambda data, spec: None  # type: ignore[assignment]  # force the full decode
        try:
            e2e(dets["crop"])()
        finally:
            jpeg._region = region_fn  # type: ignore[assignment]

    r: dict[str, Any] = {"size": f"{w}x{h}"}
    r.update(interleaved_rates({"model_only": model_only, "shorter_full": e2e(dets["shorter/full"]),
                                "shorter_draft": e2e(dets["shorter/draft"]), "crop_full": crop_full,
                                "crop_region": e2e(dets["crop"]), "floor": floor}, n, args.repeats))
    bound = 1.0 / (1.0 / r["floor"] + 1.0 / r["model_only"])  # floor and model on the same cores
    r["draft_ratio"] = r["shorter_draft"] / r["model_only"]
    r["region_ratio"] = r["crop_region"] / r["model_only"]
    r["region_vs_bound"] = r["crop_region"] / bound
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mp", type=float, nargs="+", default=[0.3, 2, 6, 12])
    ap.add_argument("--n", type=int, default=32, help="JPEGs per size")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads and decode threads")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--onnx-cache", default=None, help="folder of exported models to reuse (or to fill)")
    args = ap.parse_args(argv)

    import aigc
    import aigc._jpeg as jpeg

    tj = jpeg._turbojpeg()
    if tj is None:
        raise SystemExit("PyTurboJPEG/libturbojpeg missing: pip install '.[jpeg]' and make libturbojpeg")
    tmp = Path(tempfile.mkdtemp(prefix="aigc-bench-"))
    rows: list[dict[str, Any]] = []
    print(f"ORT threads {args.threads}, decode threads {args.threads}, batch {args.batch_size}, {args.n} JPEGs per size, "
          f"best of {args.repeats}; rates in images/s")
    print(f"{'model':10} {'MP':>5} {'model':>7} {'sh/full':>8} {'sh/draft':>8} {'ratio':>6} {'crop/full':>9} "
          f"{'crop/reg':>8} {'ratio':>6} {'floor':>7} {'reg/bound':>9}")
    for key in args.models:
        arch, size = MODELS[key]
        onnx_file = export_model(arch, size, tmp / key, Path(args.onnx_cache) if args.onnx_cache else None)
        base = {"type": "image", "size": [size, size], "crop": "center", "mean": [0.5] * 3, "std": [0.5] * 3,
                "interpolation": "bicubic", "rgb_rule": "v1"}
        pre = {"shorter/full": {**base, "resize": "shorter"},
               "shorter/draft": {**base, "resize": "shorter", "decode": {"jpeg_draft": True}},
               "crop": {**base, "resize": "none"}}
        dets = {k: aigc.load(make_bundle(onnx_file, tmp / key / k.replace("/", "_"), v), threads=args.threads,
                             batch_size=args.batch_size, workers=args.threads) for k, v in pre.items()}
        for mp in args.mp:
            paths = make_jpegs(tmp / "jpegs" / f"{mp:g}", mp, args.n)
            r = measure(paths, dets, tj, args)
            r.update({"model": key, "megapixels": mp})
            rows.append(r)
            print(f"{key:10} {mp:5g} {r['model_only']:7.1f} {r['shorter_full']:8.1f} {r['shorter_draft']:8.1f} "
                  f"{r['draft_ratio']:6.2f} {r['crop_full']:9.1f} {r['crop_region']:8.1f} {r['region_ratio']:6.2f} "
                  f"{r['floor']:7.1f} {r['region_vs_bound']:9.2f}", flush=True)
            shutil.rmtree(tmp / "jpegs" / f"{mp:g}")
    print("ratio = end-to-end / model-only; reg/bound = crop/region against 1/(1/floor + 1/model) "
          "(>= 0.67 is within 1.5x of the floor)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
