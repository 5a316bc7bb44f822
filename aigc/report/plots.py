"""Charts of the report, drawn with matplotlib (Agg backend, imported only here) and returned as SVG text.

Each function takes plain arrays or the ``metrics.json`` dicts and returns one SVG document; the HTML
renderer embeds it as a data URI, so the report needs no file beside it and no network.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import metrics as M
from ._escape import mpl_label as _label

__all__ = [
    "REPORT_EXTRA_HINT",
    "ReportDepsMissing",
    "comparison_chart",
    "fairness_chart",
    "pr_chart",
    "reliability_chart",
    "require_report_deps",
    "robustness_chart",
    "roc_chart",
    "score_chart",
    "slice_chart",
]

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
HUMAN_C, AI_C, SMALL_C = "#2b83ba", "#d7191c", "#bbbbbb"


REPORT_EXTRA_HINT = "pip install 'aigc-sentinel[report]'"


class ReportDepsMissing(ImportError):
    """Report rendering needs the ``report`` extra (matplotlib), which is not installed."""


def require_report_deps() -> None:
    """Raise :class:`ReportDepsMissing` naming the extra when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise ReportDepsMissing(
            f"drawing the report needs matplotlib, which is in the 'report' extra ({e}); {REPORT_EXTRA_HINT}"
        ) from None


def _plt() -> Any:
    require_report_deps()
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    # text.parse_math on and usetex off: _label's escaped "$" then draws as a literal "$", whatever matplotlibrc says
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "aigc-report", "font.size": 9, "axes.grid": True,
                         "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
                         "text.parse_math": True, "text.usetex": False})  # fmt: skip
    return plt


def _svg(fig: Any) -> str:
    plt = _plt()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue()


def _color(k: int) -> str:
    return COLORS[k % len(COLORS)]


def roc_chart(curves: Sequence[tuple[str, np.ndarray, np.ndarray]], points: Sequence[dict[str, tuple[float, float]]] | None = None) -> str:
    """ROC curves with a logarithmic FPR axis. ``curves``: (label, y, p) per bundle; ``points``: per bundle,
    threshold name -> (fpr, tpr) to mark the shipped operating points."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    lo = 1.0
    for k, (label, y, p) in enumerate(curves):
        fpr, tpr, _ = M.roc_curve(y, p)
        n_h = int((np.asarray(y) == 0).sum())
        floor = 0.5 / max(n_h, 1)
        lo = min(lo, floor)
        ax.step(np.maximum(fpr, floor), tpr, where="post", color=_color(k), lw=1.6, label=_label(f"{label} (AUROC {M.auroc(y, p):.3f})"))
        for name, (f, t) in (points[k] if points else {}).items():
            ax.plot([max(f, floor)], [t], "o", color=_color(k), ms=5, mfc="white")
            ax.annotate(_label(name), (max(f, floor), t), textcoords="offset points", xytext=(4, -10), fontsize=7, color=_color(k))
    for t in M.TARGET_FPRS:
        ax.axvline(t, color="grey", lw=0.6, ls=":")
    grid = np.logspace(math.log10(lo), 0, 50)
    ax.plot(grid, grid, color="grey", lw=0.8, ls="--", label="chance")
    ax.set_xscale("log")
    ax.set_xlim(lo, 1.0)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive rate (log scale; 0 drawn at the left edge)")
    ax.set_ylabel("true-positive rate")
    ax.set_title("ROC")
    ax.legend(loc="lower right", fontsize=8)
    return _svg(fig)


def pr_chart(curves: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> str:
    """Precision-recall curves of the AI class, one per bundle, with the AI share as the chance line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    for k, (label, y, p) in enumerate(curves):
        prec, rec, _ = M.precision_recall_curve(y, p)
        ax.step(np.r_[0.0, rec], np.r_[prec[0], prec], where="pre", color=_color(k), lw=1.6,
                label=_label(f"{label} (AP {M.average_precision(y, p):.3f})"))  # fmt: skip
    if curves:
        base = float(np.mean(curves[0][1]))
        ax.axhline(base, color="grey", ls="--", lw=0.8, label=f"chance ({base:.2f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("recall (AI items found)")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall")
    ax.legend(loc="lower left", fontsize=8)
    return _svg(fig)


def reliability_chart(label: str, y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> str:
    """Reliability diagram (equal-width bins: mean P(ai) against the share of AI items) over the histogram of P(ai)."""
    plt = _plt()
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(5.2, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    rb = M.reliability_bins(y, p, n_bins)
    centers = [(float(a or 0) + float(b or 0)) / 2 for a, b in zip(rb["lo"], rb["hi"], strict=True)]
    width = 1.0 / n_bins
    frac = [np.nan if f is None else f for f in rb["frac_ai"]]
    mean_p = [np.nan if f is None else f for f in rb["mean_p"]]
    ax.bar(centers, frac, width=width * 0.9, color="#4c72b0", alpha=0.8, label="share of AI items")
    ax.plot(mean_p, frac, "o", color="black", ms=3, label="bin mean P(ai)")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=0.8, label="perfect calibration")
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of AI items")
    ax.set_title(_label(f"Reliability: {label}  (ECE {M.ece(y, p, n_bins):.3f})"))
    ax.legend(loc="upper left", fontsize=7)
    bins = np.linspace(0, 1, n_bins + 1)
    y = np.asarray(y)
    axh.hist([p[y == 0], p[y == 1]], bins=bins, stacked=True, color=[HUMAN_C, AI_C], label=["human", "AI"])
    axh.set_yscale("log")
    axh.set_xlabel("P(ai)")
    axh.set_ylabel("items")
    axh.legend(fontsize=7)
    return _svg(fig)


def score_chart(curves: Sequence[tuple[str, np.ndarray, np.ndarray]], thresholds: Sequence[dict[str, float]]) -> str:
    """Distributions of P(ai) by class, one panel per bundle, with its named thresholds as vertical lines."""
    plt = _plt()
    n = max(1, len(curves))
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.4), squeeze=False)
    bins = np.linspace(0, 1, 41)
    for k, (label, y, p) in enumerate(curves):
        ax = axes[0][k]
        y = np.asarray(y)
        ax.hist(p[y == 0], bins=bins, color=HUMAN_C, alpha=0.6, label=f"human (n={int((y == 0).sum())})", density=True)
        ax.hist(p[y == 1], bins=bins, color=AI_C, alpha=0.6, label=f"AI (n={int((y == 1).sum())})", density=True)
        for j, (name, t) in enumerate(thresholds[k].items() if k < len(thresholds) else []):
            ax.axvline(t, color="black", lw=0.8, ls=["-", "--", ":", "-."][j % 4], label=_label(f"{name} = {t:.3g}"))
        ax.set_xlabel("P(ai)")
        ax.set_ylabel("density")
        ax.set_title(_label(label))
        ax.legend(fontsize=7)
    return _svg(fig)


def _errbar(v: dict[str, Any] | None) -> tuple[float, float, float]:
    if not v or v.get("value") is None:
        return (np.nan, 0.0, 0.0)
    x = float(v["value"])
    ci = v.get("ci") or [x, x]
    lo = x if ci[0] is None else ci[0]
    hi = x if ci[1] is None else ci[1]
    return x, max(0.0, x - lo), max(0.0, hi - x)


def _hbars(ax: Any, labels: list[str], series: list[tuple[str, list[dict[str, Any] | None], list[bool]]], xlabel: str) -> None:
    """Grouped horizontal bars with interval whiskers; small figures drawn grey and hatched."""
    n = len(series)
    h = 0.8 / max(n, 1)
    ypos = np.arange(len(labels))
    for k, (name, vals, small) in enumerate(series):
        for i, (v, sm) in enumerate(zip(vals, small, strict=True)):
            x, el, eh = _errbar(v)
            yy = ypos[i] - 0.4 + h * (k + 0.5)
            if math.isnan(x):
                ax.text(0.0, yy, " n/a", va="center", fontsize=7, color="grey")
                continue
            ax.barh(yy, x, height=h * 0.9, color=SMALL_C if sm else _color(k), hatch="//" if sm else None,
                    edgecolor="white" if not sm else "grey", label=_label(name) if i == 0 else None)  # fmt: skip
            ax.errorbar(x, yy, xerr=[[el], [eh]], fmt="o", color="black", ms=2.5, ecolor="black", elinewidth=0.8, capsize=2)
    ax.set_yticks(ypos)
    ax.set_yticklabels([_label(x) for x in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(_label(xlabel))


def slice_chart(field: str, per_bundle: Sequence[tuple[str, list[dict[str, Any]]]], threshold: str | None) -> str:
    """Per-slice AUROC (bootstrap interval) and TPR at ``threshold`` (exact interval), grouped by bundle.
    Grey hatched bars rest on too few items to be meaningful."""
    plt = _plt()
    groups: list[str] = []
    for _, rows in per_bundle:
        for r in rows:
            if r["group"] not in groups:
                groups.append(r["group"])
    labels = []
    for g in groups:
        r0 = next((r for r in per_bundle[0][1] if r["group"] == g), None)
        labels.append(f"{g} (h={r0['n_human']}, ai={r0['n_ai']})" if r0 else g)
    ncol = 2 if threshold else 1
    fig, axes = plt.subplots(1, ncol, figsize=(5.4 * ncol, 0.9 + 0.42 * len(groups) * max(1, len(per_bundle)) ** 0.5), squeeze=False)
    s_auc, s_tpr = [], []
    for name, rows in per_bundle:
        by = {r["group"]: r for r in rows}
        s_auc.append((name, [by[g]["auroc"] if g in by else None for g in groups], [by[g]["auroc"]["small"] if g in by else True for g in groups]))
        if threshold:
            tv = [by[g]["thresholds"].get(threshold, {}).get("tpr") if g in by else None for g in groups]
            s_tpr.append((name, tv, [True if v is None else bool(v["small"]) for v in tv]))
    _hbars(axes[0][0], labels, s_auc, "AUROC (95% CI)")
    axes[0][0].set_xlim(0, 1.05)
    axes[0][0].set_title(_label(f"AUROC by {field}"))
    if threshold:
        _hbars(axes[0][1], labels, s_tpr, f"TPR at {threshold} (95% CI)")
        axes[0][1].set_xlim(0, 1.05)
        axes[0][1].set_yticklabels([])
        axes[0][1].set_title(_label(f"TPR by {field}"))
    if len(per_bundle) > 1:
        axes[0][0].legend(fontsize=7, loc="lower right")
    return _svg(fig)


def fairness_chart(field: str, per_bundle: Sequence[tuple[str, dict[str, Any]]], threshold: str, target: float | None) -> str:
    """False-positive rate of each human group at ``threshold`` (exact interval), the overall rate and the target."""
    plt = _plt()
    groups: list[str] = []
    for _, tab in per_bundle:
        for r in tab["groups"]:
            if r["group"] not in groups:
                groups.append(r["group"])
    labels = []
    for g in groups:
        r0 = next((r for r in per_bundle[0][1]["groups"] if r["group"] == g), None)
        labels.append(f"{g} (h={r0['n_human']})" if r0 else g)
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.42 * len(groups) * max(1, len(per_bundle)) ** 0.5))
    series = []
    for name, tab in per_bundle:
        by = {r["group"]: r["fpr"].get(threshold) for r in tab["groups"]}
        series.append((name, [by.get(g) for g in groups], [True if by.get(g) is None else bool(by[g]["small"]) for g in groups]))
    _hbars(ax, labels, series, f"false-positive rate at {threshold} (95% exact CI)")
    for k, (_, tab) in enumerate(per_bundle):
        ov = tab["overall"].get(threshold, {}).get("value")
        if ov is not None:
            ax.axvline(ov, color=_color(k), ls="--", lw=0.9, label="all human items" if k == 0 else None)
    if target is not None:
        ax.axvline(target, color="black", ls=":", lw=0.9, label=f"target {target:g}")
    ax.set_title(_label(f"False positives on human items by {field}"))
    ax.legend(fontsize=7, loc="lower right")
    return _svg(fig)


def robustness_chart(rob: dict[str, Any], threshold: str | None) -> str:
    """AUROC (bootstrap interval) and TPR at ``threshold`` under each perturbation, clean first, per bundle."""
    plt = _plt()
    names = ["clean", *rob["perturbations"]]
    bundles = rob["bundles"]
    ncol = 2 if threshold else 1
    fig, axes = plt.subplots(1, ncol, figsize=(6.0 * ncol, 1.0 + 0.36 * len(names) * max(1, len(bundles)) ** 0.5), squeeze=False)
    s_auc, s_tpr = [], []
    for k, b in enumerate(bundles):
        entries = [rob["clean"][k], *[rob["perturbations"][n]["results"][k] for n in rob["perturbations"]]]
        s_auc.append((b, [e.get("auroc") for e in entries], [False] * len(entries)))
        if threshold:
            tv = [e.get("thresholds", {}).get(threshold, {}).get("tpr") for e in entries]
            s_tpr.append((b, tv, [bool(v and v.get("small")) for v in tv]))
    _hbars(axes[0][0], names, s_auc, "AUROC (95% CI)")
    axes[0][0].set_xlim(0, 1.05)
    axes[0][0].set_title("Robustness: AUROC")
    if threshold:
        _hbars(axes[0][1], names, s_tpr, f"TPR at {threshold} (95% CI)")
        axes[0][1].set_xlim(0, 1.05)
        axes[0][1].set_yticklabels([])
        axes[0][1].set_title(_label(f"Robustness: TPR at {threshold}"))
    if len(bundles) > 1:
        axes[0][0].legend(fontsize=7, loc="lower left")
    return _svg(fig)


def comparison_chart(comparisons: Sequence[dict[str, Any]]) -> str:
    """Forest plot of candidate - baseline differences with paired bootstrap intervals, one row per metric."""
    plt = _plt()
    rows: list[tuple[str, dict[str, Any], int]] = []
    for k, c in enumerate(comparisons):
        for m, d in c["deltas"].items():
            rows.append((f"{m}", d, k))
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.3 * max(len(rows), 1)))
    for i, (_m, d, _k) in enumerate(rows):
        x, el, eh = _errbar({"value": d["delta"], "ci": d["ci"]})
        if math.isnan(x):
            continue
        good = (x > 0) == d["higher_is_better"]
        col = ("#1a9641" if good else "#d7191c") if d["significant"] else "grey"
        ax.errorbar(x, i, xerr=[[el], [eh]], fmt="o", color=col, ms=4, elinewidth=1.2, capsize=2)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([_label(f"{m}  [{comparisons[k]['candidate']} - {comparisons[k]['baseline']}]" if len(comparisons) > 1 else m)
                        for m, _, k in rows], fontsize=8)  # fmt: skip
    ax.invert_yaxis()
    ax.set_xlabel("difference, candidate - baseline (95% paired bootstrap CI); green better, red worse, grey not significant")
    ax.set_title(_label(f"{comparisons[0]['candidate']} vs {comparisons[0]['baseline']}" if len(comparisons) == 1 else "Comparisons"))
    return _svg(fig)
