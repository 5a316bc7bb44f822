"""The provenance part of ``aigc eval``: items counted by verdict, and each bundle's score distribution within each.

This says how the detector behaves on files that declare their origin (do declared-AI files score high? do
declared captures score low?) and how often the decision policy changes the detector's label. It reads image
files given as paths; other items are counted as unread.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..provenance import DEFAULT_POLICY, VERDICTS, ProvenanceOptions, decide, read_provenance
from ._escape import html_text, md, md_code

__all__ = ["provenance_html", "provenance_markdown", "provenance_section"]

_EDGES = [round(x, 1) for x in np.linspace(0, 1, 11)]


def _dist(p: np.ndarray, thresholds: dict[str, float]) -> dict[str, Any]:
    p = p[np.isfinite(p)]
    if p.size == 0:
        return {"n_scored": 0}
    q = np.quantile(p, [0.1, 0.5, 0.9])
    counts, _ = np.histogram(p, bins=_EDGES)
    return {"n_scored": int(p.size), "mean": float(p.mean()), "p10": float(q[0]), "median": float(q[1]), "p90": float(q[2]),
            "histogram": {"edges": _EDGES, "counts": counts.tolist()},
            "share_at_or_above": {n: float((p >= t).mean()) for n, t in thresholds.items()}}  # fmt: skip


def provenance_section(items: Sequence[Any], y: np.ndarray, scored: Sequence[Any], labels: list[str],
                       options: ProvenanceOptions | None = None) -> dict[str, Any]:  # fmt: skip
    """The ``provenance`` entry of metrics.json. ``scored``: objects with ``name``, ``p`` (calibrated P(ai), NaN when
    failed), ``thresholds`` (name -> value, or per-item arrays, which are skipped) and ``detector`` (for its bundle's
    policy)."""
    opts = options or ProvenanceOptions()
    provs = [read_provenance(x, opts) for x in items]
    verdicts = np.array([p.verdict if p is not None else "unread" for p in provs])
    states = Counter((p.c2pa or {}).get("state") for p in provs if p is not None and p.c2pa)
    out: dict[str, Any] = {
        "n_items": len(items),
        "n_unread": int((verdicts == "unread").sum()),
        "c2pa_states": dict(states),
        "by_verdict": {},
        "note": "a verdict of none means nothing: most platforms strip metadata on upload",
    }
    for v in (*VERDICTS, "unread"):
        m = verdicts == v
        if not m.any():
            continue
        entry: dict[str, Any] = {"n": int(m.sum()), "n_human": int((y[m] == 0).sum()), "n_ai": int((y[m] == 1).sum()), "bundles": {}}
        for sb in scored:
            thr = {n: float(t) for n, t in sb.thresholds.items() if not isinstance(t, np.ndarray)}
            entry["bundles"][sb.name] = _dist(np.asarray(sb.p)[m], thr)
        out["by_verdict"][v] = entry
    out["policy"] = _policy_effect(provs, y, scored, labels, opts)
    return out


def _policy_effect(provs: list[Any], y: np.ndarray, scored: Sequence[Any], labels: list[str], opts: ProvenanceOptions) -> dict[str, Any]:
    """Per bundle: how many final labels the policy changed at the bundle's first named threshold, and the
    accuracy of detector labels and of final labels on the items it scored."""
    res: dict[str, Any] = {}
    for sb in scored:
        spec = getattr(getattr(sb, "detector", None), "spec", None) or {}
        policy = opts.policy or spec.get("provenance_policy") or DEFAULT_POLICY
        named = [(n, float(t)) for n, t in sb.thresholds.items() if not isinstance(t, np.ndarray)]
        if not named:
            continue
        tname, t = next(((n, v) for n, v in named if n == "fpr@1%"), named[0])
        changed = right_det = right_final = n = 0
        for i, prov in enumerate(provs):
            pi = float(sb.p[i])
            if prov is None or not np.isfinite(pi):
                continue
            det_label = labels[1] if pi >= t else labels[0]
            final = decide({"verdict": prov.verdict, "basis": prov.basis}, det_label, labels, policy)["label"]
            n += 1
            changed += final != det_label
            right_det += (det_label == labels[1]) == bool(y[i])
            right_final += (final == labels[1]) == bool(y[i])
        res[sb.name] = {"policy": policy, "threshold": tname, "n": n, "changed": changed,
                        "accuracy_detector": right_det / n if n else None, "accuracy_final": right_final / n if n else None}  # fmt: skip
    return res


def _f(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def provenance_markdown(section: dict[str, Any] | None) -> list[str]:
    """Lines of summary.md for the section (none when there is no section)."""
    if not section:
        return []
    L = ["## Provenance", "", f"{section['n_items']} items read for provenance; C2PA states: "
         + (", ".join(f"{md(k)} {md(v)}" for k, v in section["c2pa_states"].items()) or "no C2PA manifest") + ". " + md(section["note"]) + ".", "",
         "| verdict | items | human | AI | bundle | scored | mean P(ai) | median | share at/above thresholds |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for v, e in section["by_verdict"].items():
        for name, d in e["bundles"].items():
            share = ", ".join(f"{md(k)} {100 * x:.1f}%" for k, x in (d.get("share_at_or_above") or {}).items())
            L.append(f"| {md(v)} | {e['n']} | {e['n_human']} | {e['n_ai']} | {md(name)} | {d['n_scored']} | {_f(d.get('mean'))} | "
                     f"{_f(d.get('median'))} | {share} |")  # fmt: skip
    for name, pe in section.get("policy", {}).items():
        L.append(f"Policy {md_code(pe['policy'])} on {md(name)} at {md(pe['threshold'])}: changed {pe['changed']} of {pe['n']} labels; "
                 f"accuracy {_f(pe['accuracy_detector'])} (detector) -> {_f(pe['accuracy_final'])} (final).")  # fmt: skip
    return [*L, ""]


def provenance_html(section: dict[str, Any] | None) -> str:
    """The report.html section (empty when there is no section)."""
    if not section:
        return ""
    e = html_text
    rows = []
    for v, ent in section["by_verdict"].items():
        for name, d in ent["bundles"].items():
            hist = " ".join(str(c) for c in (d.get("histogram") or {}).get("counts", []))
            share = ", ".join(f"{e(k)} {100 * x:.1f}%" for k, x in (d.get("share_at_or_above") or {}).items())
            rows.append(f"<tr><td class=l>{e(v)}</td><td>{ent['n']}</td><td>{ent['n_human']}</td><td>{ent['n_ai']}</td>"
                        f"<td class=l>{e(name)}</td><td>{d['n_scored']}</td><td>{_f(d.get('mean'))}</td><td>{_f(d.get('median'))}</td>"
                        f"<td>{share}</td><td class=l>{hist}</td></tr>")  # fmt: skip
    pol = "".join(f"<li>{e(n)}: policy <code>{e(p['policy'])}</code> at {e(p['threshold'])} changed {p['changed']} of {p['n']} labels; "
                  f"accuracy {_f(p['accuracy_detector'])} (detector) &rarr; {_f(p['accuracy_final'])} (final)</li>"
                  for n, p in section.get("policy", {}).items())  # fmt: skip
    return ("<section id=provenance><h2>Provenance</h2>"
            f"<p class=note>What the files declare about their origin (C2PA, IPTC, generator metadata), beside the scores. "
            f"{e(section['note'])}.</p><table><tr><th class=l>verdict</th><th>items</th><th>human</th><th>AI</th><th class=l>bundle</th>"
            "<th>scored</th><th>mean P(ai)</th><th>median</th><th>share at/above</th><th class=l>histogram (10 bins of P(ai))</th></tr>"
            + "".join(rows) + f"</table><ul>{pol}</ul></section>")  # fmt: skip
