"""``summary.md``: the short Markdown account of an evaluation (headline numbers with their intervals and
"small" markers, comparisons, weakest slices, fairness, robustness drops, overlap with the bundle's data)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._escape import md, md_code, visible
from .provenance import provenance_markdown

__all__ = ["interval_sentence", "overlap_lines", "render_summary"]


def _primary(metrics: dict[str, Any], want: str | None) -> str | None:
    names: list[str] = []
    for b in metrics["bundles"]:
        for n in b["thresholds"]:
            if n not in names:
                names.append(n)
    if want and want in names:
        return want
    for n in ("fpr@1%", "fpr@5%", "balanced"):
        if n in names:
            return n
    return names[0] if names else None


def interval_sentence(settings: dict[str, Any]) -> str:
    """How the intervals were computed, in one sentence (says so when the bootstrap was off)."""
    lvl = f"{settings['level'] * 100:g}%"
    exact = f"FPR, TPR and precision at a threshold and rates of groups: exact {lvl} Clopper-Pearson intervals."
    if not settings.get("bootstrap"):
        return f"Bootstrap intervals were not computed (--bootstrap 0): AUROC, AP, calibration and the other figures are point values. {exact}"
    return (f"Intervals: {lvl} {settings['bootstrap_method']} bootstrap with {settings['bootstrap']} replicates "
            f"(seed {settings['seed']}); {exact}")


def overlap_lines(metrics: dict[str, Any], q: Callable[[Any], str] = visible) -> list[str]:
    """One warning line per bundle whose training or calibration data share items with the evaluated data,
    a note per bundle whose overlap cannot be checked, and a warning per bundle scored through a variant
    that ``aigc export --force`` shipped past the AUROC gate. ``q`` quotes every interpolated text (default:
    control characters made visible, for the console and HTML; :func:`~aigc.report._escape.md` for Markdown)."""
    out: list[str] = []
    for b in metrics.get("bundles", []):
        name = q(b["name"])
        if b.get("variant_warning"):
            out.append(f"WARNING: {name}: {q(b['variant_warning'])}")
        ov = b.get("overlap") or {}
        if ov.get("status") == "unknown":
            out.append(f"Overlap of {name}'s training and calibration data with this data: unknown ({q(ov.get('reason', ''))}).")
        for part in ("training", "calibration"):
            x = ov.get(part) or {}
            if ov.get("status") != "checked":
                continue
            note = q(x.get("note", ""))
            if x.get("n_overlap"):
                out.append(f"WARNING: {x['n_overlap']} of {ov['n_items']} evaluated items ({100 * x['share']:.1f}%) are in "
                           f"{name}'s {part} data{note}: figures on them are optimistic.")
            elif x.get("status") == "checked":
                out.append(f"None of the {ov['n_items']} evaluated items is in {name}'s {part} data "
                           f"({x['n_stored']} items){note}.")
            else:
                out.append(f"Overlap with {name}'s {part} data: unknown ({q(x.get('reason', 'not recorded'))}).")
    return out


_EXTRA_FILES = {"scores.jsonl": "each item's probability and flags"}


def render_summary(metrics: dict[str, Any], primary_threshold: str | None = None, extra: tuple[str, ...] = ()) -> str:
    """A short Markdown summary (headline numbers, worst slices, largest robustness drops, comparisons)."""
    thr = _primary(metrics, primary_threshold)
    d = metrics["data"]
    L = [f"# Evaluation: {', '.join(md(b['name']) for b in metrics['bundles'])}", ""]
    L.append(f"Data: {md_code(d['source'])} ({md(d['modality'])}), {d['n_items']} items ({d['n_human']} human, {d['n_ai']} AI), "
             f"{d['problems']['count']} unusable rows. {interval_sentence(metrics['settings'])} Figures from fewer than "
             f"{metrics['settings']['min_slice']} items of a needed class are marked (small).")  # fmt: skip
    L.append("")
    ov = overlap_lines(metrics, md)
    if ov:
        L += [*ov, ""]

    def v(x: dict[str, Any] | None, pct: bool = False, small: bool | None = None) -> str:
        if not x or x.get("value") is None:
            return "n/a" + (" (small)" if x and x.get("small") else "")
        f = (lambda z: f"{100 * z:.2f}%") if pct else (lambda z: f"{z:.3f}")
        ci = x.get("ci")
        s = f(x["value"]) + (f" [{f(ci[0])}, {f(ci[1])}]" if ci and None not in ci else "")
        return s + (" (small)" if (x.get("small") if small is None else small) else "")

    heads = ["bundle", "scored", "failed", "AUROC", "AP"]
    ok = [b for b in metrics["bundles"] if b.get("overall")]
    tkeys = list(ok[0]["overall"]["tpr_at_fpr"]) if ok else []
    heads += [f"TPR@FPR{k}" for k in tkeys] + ["ECE", "Brier"]
    if thr:
        heads += [f"TPR@{md(thr)}", f"FPR@{md(thr)}"]
    L.append("| " + " | ".join(heads) + " |")
    L.append("|" + "---|" * len(heads))
    for b in metrics["bundles"]:
        o = b.get("overall")
        if not o:
            L.append(f"| {md(b['name'])} | {b['n_scored']} | {b['failures']['count']} | {md(b.get('error', 'no metrics'))} |")
            continue
        cells = [md(b["name"]), str(b["n_scored"]), str(b["failures"]["count"]), v(o["auroc"]), v(o["ap"])]
        cells += [v(o["tpr_at_fpr"][k]["tpr"], small=o["tpr_at_fpr"][k].get("small")) for k in tkeys]
        cells += [v(o["calibration"]["ece"]), v(o["calibration"]["brier"])]
        if thr:
            t = o["thresholds"].get(thr)
            cells += [v(t["recall"]) if t else "-", v(t["fpr"], True) if t else "-"]
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    for c in metrics.get("comparisons") or []:
        L.append(f"## {md(c['candidate'])} vs {md(c['baseline'])} ({c['n']} common items)")
        L.append("")
        if c.get("error"):
            L += [md(c["error"]), ""]
            continue
        L.append("| metric | baseline | candidate | difference [95% paired CI] | verdict |")
        L.append("|---|---|---|---|---|")
        for m, x in c["deltas"].items():
            if x["significant"]:
                verdict = "better" if (x["delta"] > 0) == x["higher_is_better"] else "worse"
            else:
                verdict = "no significant difference"
            base = "n/a" if x["baseline"] is None else f"{x['baseline']:.3f}"
            cand = "n/a" if x["candidate"] is None else f"{x['candidate']:.3f}"
            L.append(f"| {md(m)} | {base} | {cand} | {v({'value': x['delta'], 'ci': x['ci']})} | {verdict} |")
        L.append("")
    for b in ok:
        worst: list[tuple[float, str]] = []
        for f, rows in b.get("slices", {}).items():
            for r in rows:
                a = r["auroc"]
                # a slice holding every scored item is the whole data set, not a weak part of it
                if a["value"] is not None and not a["small"] and r["n"] < b["n_scored"]:
                    worst.append((a["value"], f"{md(f)}={md(r['group'])}"))
        if worst:
            worst.sort()
            L.append(f"Weakest slices of {md(b['name'])} (AUROC): " + ", ".join(f"{g} {x:.3f}" for x, g in worst[:3]) + ".")
        for f, tab in b.get("fairness", {}).items():
            r = (tab.get("max_ratio") or {}).get(thr or "")
            if r and r >= 2:
                L.append(f"Fairness: at {md(thr)}, one {md(f)} group of human items is flagged {r:.1f}x as often as all human items.")
    rob = metrics.get("robustness") or {}
    if rob.get("enabled") and rob.get("perturbations"):
        for k, bname in enumerate(rob["bundles"]):
            drops = [(e["results"][k]["delta_auroc"]["value"], n) for n, e in rob["perturbations"].items()
                     if e["results"][k]["delta_auroc"]["value"] is not None]  # fmt: skip
            drops.sort()
            if drops:
                L.append(f"Largest AUROC drops of {md(bname)} under perturbation: "
                         + ", ".join(f"{md(n)} {x:+.3f}" for x, n in drops[:3]) + ".")
    L += ["", *provenance_markdown(metrics.get("provenance"))]
    more = "".join(f", `{n}` ({_EXTRA_FILES.get(n, 'written with the report')})" for n in extra)
    L += ["Files: `report.html` (charts and tables), `metrics.json` (every number, schema "
          f"v{metrics['schema_version']}), this `summary.md`{more}.", ""]  # fmt: skip
    return "\n".join(L)
