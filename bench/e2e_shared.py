"""Real data, end to end: train -> export -> evaluate on ../shared/data, through the `aigc` commands.

    .venv/bin/python bench/e2e_shared.py --out runs/e2e            # the full run (CPU: about 30-40 min)
    .venv/bin/python bench/e2e_shared.py --out /tmp/e2e --small    # the subset CI runs (tests/test_e2e_shared_text.py and tests/test_e2e_shared_images.py)

Text (fastdetectgpt.jsonl): MiniLM-L6 (offline weights) trained on the five open generators
(gpt2-xl, opt-2.7b, gpt-neo-2.7B, gpt-j-6B, gpt-neox-20b) with the split made by the human text; the
newest generators (davinci, gpt-3.5-turbo, gpt-4) are held out with the human texts of their groups.
The run's dev split is halved by group: one half calibrates the bundle (export), the other is the
in-distribution test. Reports: in distribution, cross-generator (per generator and per domain), and
glimpse.jsonl (claude-3 / gemini-1.5 and six non-English languages: human FPR on sources never seen). Then the six
languages are added to the bundle from their own humans and ChatGPT answers (``aigc calibrate --group-field language
--groups-only``): what it records per language, and its thresholds and warnings on other texts of each.

Images (50 real / 50 AI photos): a few-shot linear probe on frozen EfficientNet-Lite0 ImageNet
features, 5-fold cross-validated (out-of-fold AUROC with a bootstrap interval, per generator); then a
bundle whose probe is fit on one stratified half and calibrated on the other, with its report.

Prints one table of headline figures and writes them to OUT/summary.json.
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
SHARED = (ROOT / ".." / "shared" / "data").resolve()
NEW_GENERATORS = ["davinci", "gpt-3.5-turbo", "gpt-4"]


def aigc(*argv: str) -> None:
    from aigc.cli import main

    print("$ aigc " + " ".join(argv), file=sys.stderr, flush=True)
    rc = main(list(argv))
    if rc != 0:
        raise SystemExit(f"`aigc {' '.join(argv)}` failed with exit code {rc}")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def overall(report: Path) -> dict[str, Any]:
    """The first bundle's overall metrics from a report's metrics.json."""
    m = json.loads((report / "metrics.json").read_text())
    return m["bundles"][0]["overall"] or {}


def value(d: Any) -> float | None:
    if isinstance(d, dict):
        d = d.get("value", d.get("estimate"))
    return float(d) if isinstance(d, (int, float)) else None


def halve_by_group(rows: list[dict[str, Any]], seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    groups = sorted({r["group"] for r in rows})
    rng = np.random.default_rng(seed)
    first = set(np.asarray(groups, dtype=object)[rng.permutation(len(groups))[: len(groups) // 2]].tolist())
    return [r for r in rows if r["group"] in first], [r for r in rows if r["group"] not in first]


# ----------------------------------------------------------------------------------------------- text
def text_pipeline(out: Path, small: bool, seed: int) -> dict[str, Any]:
    from training import read_split

    run, bundle = out / "text" / "run", out / "text" / "bundle"
    sizes = dict(max_train=960, max_dev=400, max_test=200, glimpse=150, robustness=40) if small else \
        dict(max_train=4000, max_dev=3000, max_test=3000, glimpse=2000, robustness=600)
    vals = "[" + ", ".join(NEW_GENERATORS) + "]"
    aigc("train", str(ROOT / "configs" / "text_minilm_l6_shared.yaml"), "--out", str(run),
         "--set", f"data.train={SHARED / 'text' / 'fastdetectgpt.jsonl'}",
         "--set", "data.holdout_column=generator", "--set", f"data.holdout_values={vals}",
         "--set", f"data.max_train={sizes['max_train']}", "--set", f"data.max_dev={sizes['max_dev']}",
         "--set", f"data.max_test={sizes['max_test']}", "--set", f"data.seed={seed}",
         "--set", "data.max_length=64", "--set", "data.stride=62", "--set", "data.max_windows=4",
         "--set", "eval.test_at_end=false",
         "--set", "train.progress=false", "--set", "train.epochs=1")
    cal, indist = halve_by_group(read_split(run, "dev"), seed)
    cal_f, indist_f = write_jsonl(out / "text" / "calibration.jsonl", cal), write_jsonl(out / "text" / "in_distribution.jsonl", indist)
    targets = "0.05,0.1" if small else "0.01,0.05"
    aigc("export", str(run), "--out", str(bundle), "--variants", "fp32,int8", "--calibration-data", str(cal_f),
         "--targets", targets, "--name", "minilm-l6-fastdetectgpt-open-generators", "--force")
    rep = out / "text" / "reports"
    common = ["--text-field", "item", "--bootstrap", "200" if small else "1000", "--seed", str(seed)]
    robust = ["--robustness-limit", str(sizes["robustness"])]
    aigc("eval", str(bundle), str(indist_f), "--report", str(rep / "in_distribution"), *common, *robust)
    aigc("eval", str(bundle), str(run / "splits" / "test.jsonl"), "--report", str(rep / "cross_generator"), *common,
         "--no-robustness", "--slice-by", "generator,domain")
    # glimpse: newer generators (English) and six languages; human FPR on sources never seen
    rows = [json.loads(x) for x in (SHARED / "text" / "glimpse.jsonl").read_text().splitlines() if x.strip()]
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(rows))[: sizes["glimpse"]]
    glimpse_f = write_jsonl(out / "text" / "glimpse_sample.jsonl", [rows[i] for i in sorted(pick)])
    aigc("eval", str(bundle), str(glimpse_f), "--report", str(rep / "glimpse"), *common[2:], "--no-robustness",
         "--slice-by", "generator,language", "--fairness-by", "language,domain")
    spec = json.loads((bundle / "bundle.json").read_text())
    res: dict[str, Any] = {"bundle": str(bundle), "thresholds": {k: v["value"] for k, v in spec["thresholds"].items()},
                           "variants_eval": spec.get("variants_eval"), "sizes": sizes}
    for name in ("in_distribution", "cross_generator", "glimpse"):
        res[name] = {"auroc": value(overall(rep / name).get("auroc")), "report": str(rep / name / "report.html")}
    res["languages"] = languages_step(bundle, out / "text", rows, small, seed)
    return res


def languages_step(bundle: Path, out: Path, rows: list[dict[str, Any]], small: bool, seed: int) -> dict[str, Any]:
    """glimpse's six languages added to the English bundle by ``aigc calibrate --group-field language
    --groups-only`` on each language's humans and ChatGPT answers (20 and 10 a language in the CI subset, 60 and 40
    in the full run): the thresholds and per-language detection the new bundle records, and, on 10 other humans and
    5 other machine texts a language scored with their language, how many carry the weak-group warning and how many
    humans each threshold flags (the language's own against the global one)."""
    import aigc as runtime

    n_cal = {0: 20, 1: 10} if small else {0: 60, 1: 40}
    n_check = {0: 10, 1: 5}
    cells: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        if str(r.get("domain", "")).startswith("m4-"):
            cells.setdefault((r["language"], int(r["label"])), []).append(r)
    rng = np.random.default_rng(seed + 1)
    cal: list[dict[str, Any]] = []
    check: list[dict[str, Any]] = []
    for (lang, label), cell in sorted(cells.items()):
        idx = rng.permutation(len(cell))
        pick = [{"text": cell[i]["text"], "label": label, "language": lang} for i in idx]
        cal += pick[: n_cal[label]]
        check += pick[n_cal[label]: n_cal[label] + n_check[label]]
    new = out / "bundle_languages"
    aigc("calibrate", str(bundle), str(write_jsonl(out / "languages.jsonl", cal)), "--out", str(new),
         "--group-field", "language", "--groups-only")
    det = runtime.load(new)
    gt = det.spec["group_thresholds"]
    own = det.score([r["text"] for r in check], groups=[r["language"] for r in check])
    glob = det.resolve_threshold(det.default_threshold)[1]  # the label each item would get without its language
    per: dict[str, dict[str, int]] = {}
    for r, o in zip(check, own, strict=True):
        c = per.setdefault(r["language"], {"checked": 0, "warned": 0, "humans": 0, "humans_flagged_own": 0,
                                           "humans_flagged_global": 0})
        c["checked"] += 1
        c["warned"] += any("says little" in w for w in o.warnings)
        if r["label"] == 0:
            c["humans"] += 1
            c["humans_flagged_own"] += o.label == det.labels[1]
            c["humans_flagged_global"] += o.probability >= glob
    return {"bundle": str(new), "threshold": det.default_threshold, "groups": sorted(gt["groups"]),
            "detection": gt.get("detection") or {}, "weak": det.spec["recalibration"]["group_thresholds"]["weak"],
            "check": per}


# --------------------------------------------------------------------------------------------- images
def _features(paths: list[Path]) -> tuple[np.ndarray, Any, dict[str, Any]]:
    import timm
    import torch

    from aigc._image import ImageSpec, decode_image, preprocess_image
    from training.weights import efficientnet_lite0_state_dict

    backbone = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0)
    missing = backbone.load_state_dict(efficientnet_lite0_state_dict(include_classifier=False), strict=False)
    assert not missing.missing_keys, missing.missing_keys
    backbone.eval()
    spec = ImageSpec(size=(224, 224), resize="shorter", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    feats = []
    with torch.no_grad():
        for s in range(0, len(paths), 16):
            x = np.stack([preprocess_image(decode_image(p).image, spec) for p in paths[s : s + 16]])
            feats.append(backbone(torch.from_numpy(x)).numpy())
    return np.concatenate(feats), backbone, spec.to_dict()


def fit_probe(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 500) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """L2-regularised logistic regression on standardised features (full-batch gradient descent)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w, b = np.zeros(z.shape[1]), 0.0
    lr = 0.5
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        g = p - y
        w -= lr * (z.T @ g / len(y) + l2 * w)
        b -= lr * float(g.mean())
    return w, b, mu, sd


def image_pipeline(out: Path, seed: int) -> dict[str, Any]:
    import torch
    from torch import nn

    from aigc.metrics import auroc
    from export import BuildOptions, build_bundle
    from training.data import read_image_folder

    rows = read_image_folder(SHARED / "images")
    paths = [Path(r["item"]) for r in rows]
    y = np.array([r["label"] for r in rows])
    # ai/gan_3.jpg, ai/diffusion2_7.jpg: the generator is the file name's prefix
    gens = np.array([Path(r["item"]).stem.split("_")[0] if r["label"] == 1 else "real" for r in rows])
    feats, backbone, pre = _features(paths)
    # 5-fold cross-validation, stratified by generator (real counts as one stratum)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for g in np.unique(gens):
        idx = np.flatnonzero(gens == g)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % 5
    oof = np.empty(len(y))
    for k in range(5):
        tr, te = fold != k, fold == k
        w, b, mu, sd = fit_probe(feats[tr], y[tr])
        oof[te] = ((feats[te] - mu) / sd) @ w + b
    boot = []
    for _ in range(1000):
        i0 = rng.choice(np.flatnonzero(y == 0), (y == 0).sum())
        i1 = rng.choice(np.flatnonzero(y == 1), (y == 1).sum())
        idx = np.concatenate([i0, i1])
        boot.append(auroc(y[idx], oof[idx]))
    per_gen = {g: auroc(np.r_[np.zeros((y == 0).sum()), np.ones((gens == g).sum())], np.r_[oof[y == 0], oof[gens == g]])
               for g in sorted(set(gens) - {"real"})}
    res: dict[str, Any] = {"cv_auroc": auroc(y, oof), "cv_auroc_ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
                           "cv_auroc_per_generator": per_gen, "n": len(y)}

    # a bundle: probe fit on one stratified half, calibrated and reported on the other
    half = fold % 2 == 0
    w, b, mu, sd = fit_probe(feats[half], y[half])
    head = nn.Linear(feats.shape[1], 2)
    with torch.no_grad():  # logit1 - logit0 = z @ w + b with z = (f - mu) / sd
        wz = torch.tensor(w / sd, dtype=torch.float32)
        head.weight.copy_(torch.stack([torch.zeros_like(wz), wz]))
        head.bias.copy_(torch.tensor([0.0, b - float((mu / sd) @ w)]))
    model = nn.Sequential(backbone, head).eval()

    from types import SimpleNamespace

    run = SimpleNamespace(  # what export needs from a run (export.bundle_build.RunLike)
        model=model, modality="image", preprocessing=pre, tokenizer_file=None, input_names=["pixel_values"],
        output_kind="logits", config={"model": "efficientnet_lite0 frozen + linear probe", "data": str(SHARED / "images")},
        provenance={"note": "few-shot probe fit on a stratified half of ../shared/data/images"},
    )
    cal_paths = [str(p) for p, h in zip(paths, half, strict=True) if not h]
    bundle = out / "images" / "bundle"
    build_bundle(run, bundle, cal_paths, y[~half].tolist(),
                 options=BuildOptions(variants=("fp32",), targets=(0.1,), name="lite0-probe-shared-images", overwrite=True))
    cal = out / "images" / "calibration_half.jsonl"
    write_jsonl(cal, [{"path": p, "label": int(lbl), "generator": g} for p, lbl, g in zip(cal_paths, y[~half], gens[~half], strict=True)])
    rep = out / "images" / "report"
    aigc("eval", str(bundle), str(cal), "--report", str(rep), "--bootstrap", "200", "--slice-by", "generator",
         "--robustness-limit", "50")
    res.update({"bundle": str(bundle), "report": str(rep / "report.html"),
                "half_auroc_in_report": value(overall(rep).get("auroc"))})
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/e2e")
    ap.add_argument("--small", action="store_true", help="the CI subset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-text", action="store_true")
    ap.add_argument("--skip-images", action="store_true")
    args = ap.parse_args(argv)
    if not (SHARED / "README.md").is_file():
        raise SystemExit(f"shared data not found at {SHARED}")
    out = Path(args.out).resolve()
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary: dict[str, Any] = {"small": args.small, "seed": args.seed}
    if not args.skip_text:
        summary["text"] = text_pipeline(out, args.small, args.seed)
    if not args.skip_images:
        summary["images"] = image_pipeline(out, args.seed)
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
