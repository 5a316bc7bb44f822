"""Write the report folder: ``report.html`` (self-contained: charts inlined as SVG data URIs, no external
URL, a Content-Security-Policy that forbids loading anything), ``metrics.json`` and ``summary.md``.

Here: the HTML (``render_html``, ``chart_ids``) and ``write_report``, which renders all three before
writing any. The writing side (``_clean``, ``_json_text``, ``_LONE``, ``_atomic_write_all``,
``_file_mode``) lives in :mod:`aigc.report.write`, re-exported here: every name imports from here as before.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import plots
from ._escape import html_text, visible
from .provenance import provenance_html
from .summary import _primary, interval_sentence, overlap_lines, render_summary
from .write import _LONE, _atomic_write_all, _clean, _file_mode, _json_text  # noqa: F401 - re-exported

__all__ = ["REPORT_FILES", "chart_ids", "render_html", "render_summary", "write_report"]

REPORT_FILES = ("report.html", "metrics.json", "summary.md")
_log = logging.getLogger(__name__)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:16px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;color:#cfd8dc;font-size:13px}
nav{padding:8px 28px;background:#eceff1;font-size:13px;position:sticky;top:0}nav a{margin-right:14px;color:#1e5f8a}
main{padding:8px 28px 40px;max-width:1400px}
section{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:10px 18px;margin:16px 0}
h2{font-size:18px;margin:6px 0 10px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 12px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f3f5f7}td.l,th.l{text-align:left}
.small{color:#999;font-style:italic}.bad{color:#b71c1c}.good{color:#1b5e20}.note{color:#555;font-size:12.5px}
figure.chart{display:inline-block;margin:6px 12px 6px 0;vertical-align:top}
figure.chart img{max-width:100%;height:auto;border:1px solid #eee;background:#fff}
figure.chart figcaption{font-size:12px;color:#555;max-width:640px}
table.cm td{min-width:46px}code{background:#f1f1f1;padding:0 3px}header code{background:#37474f;color:#fff}
"""

# Marks a chart that fails to decode and says so on the console (the browser test listens for it).
_SCRIPT = """
(function(){
  function check(){
    var figs=document.querySelectorAll('figure.chart'),ok=0,bad=[];
    figs.forEach(function(f){ var im=f.querySelector('img'); if(im&&im.complete&&im.naturalWidth>0){ok++;} else {bad.push(f.id);} });
    document.body.setAttribute('data-charts-total',String(figs.length));
    document.body.setAttribute('data-charts-ok',String(ok));
    if(bad.length){console.error('report: charts failed to load: '+bad.join(', '));}
  }
  if(document.readyState==='complete'){check();}else{window.addEventListener('load',check);}
})();
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def _e(x: Any) -> str:
    return html_text(x)


def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, str):
        return x
    return f"{x:.{digits}f}"


def _pct(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{100 * x:.2f}%"


def _vci(v: dict[str, Any] | None, pct: bool = False) -> str:
    """'0.953 [0.941, 0.962]' from {"value", "ci"}."""
    if not v or v.get("value") is None:
        return "n/a"
    f = _pct if pct else _f
    ci = v.get("ci")
    s = f(v["value"])
    if ci and None not in ci:
        s += f" <span class=note>[{f(ci[0])}, {f(ci[1])}]</span>"
    return s


def _small(v: dict[str, Any] | None, text: str, n: int | None = None) -> str:
    if v is not None and v.get("small"):
        return f"<span class=small title='too few items for a meaningful figure'>{text} (small{'' if n is None else f', n={n}'})</span>"
    return text


def _img(svg: str, cid: str, kind: str, caption: str) -> str:
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (f"<figure class=chart id='chart-{_e(cid)}' data-chart='{_e(kind)}'><img src='{uri}' alt='{_e(caption)}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")  # fmt: skip


def _chart(cid: str, kind: str, caption: str, draw: Callable[..., str], *args: Any) -> str:
    """``_img`` of ``draw(*args)``; a chart that cannot be drawn (or is not well-formed SVG) becomes a placeholder
    saying why, and the rest of the report is still written."""
    try:
        svg = draw(*args)
        ET.fromstring(svg)  # a chart the browser could not decode is a failure too
    except plots.ReportDepsMissing:
        raise
    except Exception as e:  # one chart never aborts the report
        why = f"{type(e).__name__}: {e}"
        why = why if len(why) <= 300 else why[:300] + "..."
        _log.warning("report: chart %s could not be drawn: %s", cid, visible(why))
        _log.debug("chart %s", cid, exc_info=True)
        return (f"<figure class=chart id='chart-{_e(cid)}' data-chart='{_e(kind)}' data-failed=1><p class=bad>chart could not "
                f"be drawn: {_e(why)}</p><figcaption>{_e(caption)}</figcaption></figure>")  # fmt: skip
    return _img(svg, cid, kind, caption)


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in s.lower()).strip("-") or "x"


def chart_ids(metrics: dict[str, Any]) -> list[str]:
    """The ids (``chart-...``) of every chart the HTML report of ``metrics`` holds, in page order."""
    ok = [b for b in metrics["bundles"] if b.get("overall")]
    ids = []
    if metrics.get("comparisons") and any(c["deltas"] for c in metrics["comparisons"]):
        ids.append("chart-comparison")
    if ok:
        ids += ["chart-roc", "chart-pr", "chart-scores"]
        ids += [f"chart-reliability-{k}" for k in range(len(ok))]
        ids += [f"chart-slice-{_slug(f)}" for f in metrics["data"]["slice_fields"]]
        ids += [f"chart-fairness-{_slug(f)}" for f in metrics["data"]["fairness_fields"]]
    if metrics.get("robustness", {}).get("enabled") and metrics["robustness"].get("perturbations"):
        ids.append("chart-robustness")
    return ids


def render_html(
    metrics: dict[str, Any],
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    primary_threshold: str | None = None,
) -> str:
    """The report page. ``curves``: (bundle name, labels, probabilities) of the scored items of each bundle
    that has metrics, in the order of ``metrics["bundles"]``."""
    thr = _primary(metrics, primary_threshold)
    data = metrics["data"]
    st = metrics["settings"]
    ok = [b for b in metrics["bundles"] if b.get("overall")]
    names = ", ".join(b["name"] for b in metrics["bundles"])
    out: list[str] = []
    w = out.append
    w("<!DOCTYPE html><html lang=en><head><meta charset='utf-8'>")
    w(f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">")
    w("<meta name='viewport' content='width=device-width, initial-scale=1'>")
    w(f"<title>aigc eval: {_e(names)}</title><style>{_CSS}</style></head><body>")
    w(f"<header><h1>Evaluation: {_e(names)}</h1>")
    w(f"<p>{_e(data['modality'])} data <code>{_e(data['source'])}</code>: {data['n_items']} items "
      f"({data['n_human']} human, {data['n_ai']} AI){' (sample of ' + str(data['n_read']) + ', --limit ' + str(data['limit']) + ')' if data.get('limit') and data['n_read'] > data['n_items'] else ''}; "
      f"{data['problems']['count']} unusable rows.</p>")  # fmt: skip
    w(f"<p>{_e(interval_sentence(st))} Figures from fewer than {st['min_slice']} "
      f"items of a needed class are marked small. Created {_e(metrics['created'])} by aigc {_e(metrics['aigc_version'])}, "
      f"metrics schema v{metrics['schema_version']}.</p>")  # fmt: skip
    for line in overlap_lines(metrics):
        w(f"<p class={'bad' if line.startswith('WARNING') else 'note'}>{_e(line)}</p>")
    w("</header>")
    secs = [("overview", "Overview")]
    if metrics.get("comparisons"):
        secs.append(("comparison", "Comparison"))
    secs += [("separation", "Separation"), ("thresholds", "Thresholds"), ("calibration", "Calibration"),
             ("slices", "Slices"), ("fairness", "Fairness"), ("robustness", "Robustness"), ("failures", "Failures")]  # fmt: skip
    w("<nav>" + "".join(f"<a href='#{a}'>{t}</a>" for a, t in secs) + "</nav><main>")

    # -- overview
    w("<section id=overview><h2>Overview</h2><table><tr><th class=l>bundle</th><th>scored</th><th>failed</th>"
      "<th>out of support</th><th>AUROC</th><th>AP</th>" + "".join(f"<th>TPR @ FPR {_e(k)} <span class=note>(achieved FPR)</span></th>"
      for k in (ok[0]["overall"]["tpr_at_fpr"] if ok else {})) + "<th>ECE</th><th>Brier</th></tr>")  # fmt: skip
    for b in metrics["bundles"]:
        o = b.get("overall")
        row = f"<tr><td class=l><b>{_e(b['name'])}</b><br><span class=note>{_e(b['path'])}</span></td><td>{b['n_scored']}</td>"
        row += f"<td class={'bad' if b['failures']['count'] else ''}>{b['failures']['count']}</td><td>{b['out_of_support']}</td>"
        if o:
            row += f"<td>{_vci(o['auroc'])}</td><td>{_vci(o['ap'])}</td>"
            for t in o["tpr_at_fpr"].values():
                cell = f"{_vci(t['tpr'])}<br><span class=note>FPR {_pct(t['achieved_fpr']['value'])}</span>"
                if t.get("small"):
                    cell = (f"<span class=small title='at this target FPR the data allows only {t['false_positives_allowed']} "
                            f"false positives: too few human items for a stable figure'>{cell} (small: "
                            f"{t['false_positives_allowed']} FP allowed)</span>")  # fmt: skip
                row += f"<td>{cell}</td>"
            row += f"<td>{_vci(o['calibration']['ece'])}</td><td>{_vci(o['calibration']['brier'])}</td>"
        else:
            row += f"<td class='l bad' colspan=8>{_e(b.get('error', 'no metrics'))}</td>"
        w(row + "</tr>")
    w("</table><p class=note>TPR at a target FPR is read off this data's own ROC curve (the best threshold with "
      "FPR at most the target): an optimistic ceiling. Marked small where the data allows fewer than 5 false positives at the target. The bundle's shipped thresholds are evaluated under "
      "<a href='#thresholds'>Thresholds</a>.</p></section>")

    # -- comparison
    comps = metrics.get("comparisons") or []
    if comps:
        w("<section id=comparison><h2>Comparison on the same items</h2>")
        for c in comps:
            w(f"<h3>{_e(c['candidate'])} vs {_e(c['baseline'])} (baseline), {c['n']} items scored by every bundle</h3>")
            if c.get("error"):
                w(f"<p class=bad>{_e(c['error'])}</p>")
                continue
            w("<table><tr><th class=l>metric</th><th>baseline</th><th>candidate</th><th>difference [95% paired CI]</th><th class=l>verdict</th></tr>")
            for m, d in c["deltas"].items():
                if d["significant"]:
                    better = (d["delta"] > 0) == d["higher_is_better"]
                    verdict = f"<span class={'good' if better else 'bad'}>{'better' if better else 'worse'}</span>"
                else:
                    verdict = "<span class=note>no significant difference</span>"
                w(f"<tr><td class=l>{_e(m)}</td><td>{_f(d['baseline'])}</td><td>{_f(d['candidate'])}</td>"
                  f"<td>{_vci({'value': d['delta'], 'ci': d['ci']})}</td><td class=l>{verdict}</td></tr>")  # fmt: skip
            w("</table>")
        if any(c["deltas"] for c in comps):
            w(_chart("comparison", "comparison", "Differences candidate - baseline with paired bootstrap intervals",
                     plots.comparison_chart, [c for c in comps if c["deltas"]]))  # fmt: skip
        w("</section>")

    # -- separation
    w("<section id=separation><h2>Separation</h2>")
    if ok:
        pts = []
        for b in ok:
            d = {}
            for n, t in b["overall"]["thresholds"].items():
                d[n] = (t["fpr"]["value"] or 0.0, t["recall"]["value"] or 0.0)
            pts.append(d)
        w(_chart("roc", "roc", "ROC curve, logarithmic FPR axis; circles: the bundle's named thresholds", plots.roc_chart, curves, pts))
        w(_chart("pr", "pr", "Precision-recall curve of the AI class", plots.pr_chart, curves))
        thr_vals = [{n: t["value"] for n, t in b["thresholds"].items() if t["value"] is not None} for b in ok]
        w(_chart("scores", "scores", "Distribution of P(ai) by class, with the named thresholds", plots.score_chart, curves, thr_vals))
    else:
        w("<p class=bad>No bundle produced metrics.</p>")
    w("</section>")

    # -- thresholds
    w("<section id=thresholds><h2>Named thresholds</h2>")
    for b in ok:
        o = b["overall"]
        w(f"<h3>{_e(b['name'])}</h3><table><tr><th class=l>threshold</th><th>P(ai) &ge;</th><th>calibrated for FPR</th>"
          "<th>accuracy</th><th>precision</th><th>recall (TPR)</th><th>F1</th><th>FPR</th><th>confusion (rows true, cols predicted)</th></tr>")  # fmt: skip
        for n, t in o["thresholds"].items():
            cm = t["confusion"]
            spec = b["thresholds"].get(n, {})
            w(f"<tr><td class=l>{_e(n)}</td><td>{_f(t['threshold'], 4)}</td><td>{_pct(spec.get('target_fpr')) if spec.get('target_fpr') is not None else '-'}</td>"
              f"<td>{_vci(t['accuracy'])}</td><td>{_small(t['precision'], _vci(t['precision']), t['precision'].get('n'))}</td>"
              f"<td>{_small(t['recall'], _vci(t['recall']), t['recall'].get('n'))}</td><td>{_vci(t['f1'])}</td>"
              f"<td>{_small(t['fpr'], _vci(t['fpr'], pct=True), t['fpr'].get('n'))}</td><td><table class=cm><tr><th></th><th>human</th><th>AI</th></tr>"
              f"<tr><th>human</th><td>{cm['tn']}</td><td>{cm['fp']}</td></tr><tr><th>AI</th><td>{cm['fn']}</td><td>{cm['tp']}</td></tr></table></td></tr>")  # fmt: skip
        w("</table>")
        if b.get("group_thresholds"):
            w(f"<p class=note>Per-group thresholds applied by <code>{_e(b['group_thresholds'])}</code>.</p>")
    w("</section>")

    # -- calibration
    w("<section id=calibration><h2>Calibration</h2><table><tr><th class=l>bundle</th><th>method</th><th>ECE (15 equal-width bins)</th>"
      "<th>adaptive ECE (15 equal-mass bins)</th><th>MCE</th><th>Brier</th><th>NLL</th></tr>")  # fmt: skip
    for b in ok:
        c = b["overall"]["calibration"]
        w(f"<tr><td class=l>{_e(b['name'])}</td><td>{_e(b.get('calibration_method'))}</td><td>{_vci(c['ece'])}</td>"
          f"<td>{_vci(c['ece_adaptive'])}</td><td>{_vci(c['mce'])}</td><td>{_vci(c['brier'])}</td><td>{_vci(c['nll'])}</td></tr>")  # fmt: skip
    w("</table>")
    for k, (label, y, p) in enumerate(curves):
        w(_chart(f"reliability-{k}", "reliability", f"Reliability diagram and histogram of P(ai): {label}",
                 plots.reliability_chart, label, y, p))  # fmt: skip
    w("</section>")

    # -- slices
    w("<section id=slices><h2>Slices</h2>")
    if not data["slice_fields"]:
        w("<p class=note>The data has no field to slice by.</p>")
    for f in data["slice_fields"]:
        per = [(b["name"], b["slices"][f]) for b in ok if f in b.get("slices", {})]
        if not per:
            continue
        w(f"<h3>By {_e(f)}</h3>")
        w(_chart(f"slice-{_slug(f)}", "slice", f"AUROC and TPR at {thr} by {f}; grey hatched: too few items", plots.slice_chart, f, per, thr))
        for name, rows in per:
            w(f"<table><tr><th class=l>{_e(f)} <span class=note>({_e(name)})</span></th><th>items</th><th>human</th><th>AI</th><th>AUROC</th>"
              + "".join(f"<th>TPR @ {_e(n)}</th><th>FPR @ {_e(n)}</th>" for n in (rows[0]["thresholds"] if rows else {})) + "</tr>")  # fmt: skip
            for r in rows:
                a = r["auroc"]
                ref = "" if a["reference"] == "within" else f"<br><span class=note>{_e(a['reference'])}</span>"
                cells = "".join(
                    f"<td>{_small(t['tpr'], _vci(t['tpr'], True), t['tpr']['n'])}</td><td>{_small(t['fpr'], _vci(t['fpr'], True), t['fpr']['n'])}</td>"
                    for t in r["thresholds"].values()
                )
                w(f"<tr><td class=l>{_e(r['group'])}</td><td>{r['n']}</td><td>{r['n_human']}</td><td>{r['n_ai']}</td>"
                  f"<td>{_small(a, _vci(a))}{ref}</td>{cells}</tr>")  # fmt: skip
            w("</table>")
    w("</section>")

    # -- fairness
    w("<section id=fairness><h2>Fairness: false positives on human items</h2>"
      "<p class=note>Each group of human-written (real) items, and how often the detector wrongly flags it, with an exact "
      "interval. A group far above the overall rate pays for the detector's errors.</p>")  # fmt: skip
    if not data["fairness_fields"]:
        w("<p class=note>The data has no field that groups its human items.</p>")
    target = None
    for b in ok:
        t = b["thresholds"].get(thr or "", {})
        if t.get("target_fpr") is not None:
            target = t["target_fpr"]
            break
    for f in data["fairness_fields"]:
        per = [(b["name"], b["fairness"][f]) for b in ok if f in b.get("fairness", {})]
        if not per or not any(tab["groups"] for _, tab in per):
            w(f"<h3>By {_e(f)}</h3><p class=note>No human item has a {_e(f)}.</p>")
            if per:
                w(_chart(f"fairness-{_slug(f)}", "fairness", f"No human groups by {f}", plots.fairness_chart, f, per, thr or "", target))
            continue
        w(f"<h3>By {_e(f)}</h3>")
        w(_chart(f"fairness-{_slug(f)}", "fairness", f"False-positive rate by {f} at {thr}; dashed: all human items; dotted: "
                 "the threshold's target", plots.fairness_chart, f, per, thr or "", target))  # fmt: skip
        for name, tab in per:
            tnames = list(tab["overall"])
            w(f"<table><tr><th class=l>{_e(f)} <span class=note>({_e(name)})</span></th><th>human items</th>"
              + "".join(f"<th>FPR @ {_e(n)}</th>" for n in tnames) + "</tr>")  # fmt: skip
            w("<tr><td class=l><i>all human items</i></td><td>" + str(tab["overall"][tnames[0]]["n"] if tnames else 0) + "</td>"
              + "".join(f"<td>{_vci(tab['overall'][n], True)}</td>" for n in tnames) + "</tr>")  # fmt: skip
            for r in tab["groups"]:
                w(f"<tr><td class=l>{_e(r['group'])}</td><td>{r['n_human']}</td>"
                  + "".join(f"<td>{_small(r['fpr'][n], _vci(r['fpr'][n], True), r['n_human'])}</td>" for n in tnames) + "</tr>")  # fmt: skip
            ratio = tab.get("max_ratio", {}).get(thr or "")
            w("</table>" + (f"<p class=note>Largest group FPR / overall FPR at {_e(thr)}: {ratio:.2f}x</p>" if ratio else ""))
    w("</section>")

    # -- robustness
    rob = metrics.get("robustness") or {}
    w("<section id=robustness><h2>Robustness under perturbations</h2>")
    if not rob.get("enabled"):
        w("<p class=note>Not run (--no-robustness).</p>")
    elif rob.get("perturbations"):
        w(f"<p class=note>{rob['n_items']} items (a stratified sample of the items every bundle scored), each perturbed "
          "and scored again; TPR and FPR at the bundle's own thresholds. &Delta;AUROC: change from the clean scores of the "
          "same items, with a paired interval.</p>")  # fmt: skip
        w(_chart("robustness", "robustness", f"AUROC and TPR at {thr} under each perturbation", plots.robustness_chart, rob, thr))
        for k, bname in enumerate(rob["bundles"]):
            w(f"<h3>{_e(bname)}</h3><table><tr><th class=l>perturbation</th><th>changed items</th><th>AUROC</th><th>&Delta;AUROC</th>"
              + (f"<th>TPR @ {_e(thr)}</th><th>FPR @ {_e(thr)}</th>" if thr else "") + "<th>failed</th></tr>")  # fmt: skip
            entries = [("clean", "", rob["clean"][k], rob["n_items"])]
            entries += [(n, v["description"], v["results"][k], v["n_changed"]) for n, v in rob["perturbations"].items()]
            for n, desc, e, changed in entries:
                t = e.get("thresholds", {}).get(thr or "", {})
                cells = f"<td>{_vci(t.get('tpr'), True)}</td><td>{_vci(t.get('fpr'), True)}</td>" if thr else ""
                w(f"<tr><td class=l title='{_e(desc)}'>{_e(n)}<br><span class=note>{_e(desc)}</span></td><td>{changed}</td>"
                  f"<td>{_vci(e['auroc'])}</td><td>{_vci(e['delta_auroc']) if n != 'clean' else '-'}</td>{cells}<td>{e['n_failed']}</td></tr>")  # fmt: skip
            w("</table>")
    w("</section>")

    w(provenance_html(metrics.get("provenance")))
    # -- failures
    w("<section id=failures><h2>Failures</h2>")
    pr = data["problems"]
    w(f"<p>{pr['count']} data rows could not be used.</p>")
    if pr["examples"]:
        w("<table><tr><th class=l>row</th><th class=l>problem</th></tr>" + "".join(
            f"<tr><td class=l>{_e(x['id'])}</td><td class=l>{_e(x['error'])}</td></tr>" for x in pr["examples"]) + "</table>")  # fmt: skip
    for b in metrics["bundles"]:
        fl = b["failures"]
        w(f"<h3>{_e(b['name'])}: {fl['count']} items failed (excluded from its metrics)</h3>")
        if fl["by_error"]:
            w("<table><tr><th class=l>error</th><th>items</th></tr>" + "".join(
                f"<tr><td class=l>{_e(k)}</td><td>{v}</td></tr>" for k, v in fl["by_error"].items()) + "</table>")  # fmt: skip
            w("<table><tr><th class=l>item</th><th class=l>error</th></tr>" + "".join(
                f"<tr><td class=l>{_e(x['id'])}</td><td class=l>{_e(x['error'])}</td></tr>" for x in fl["examples"]) + "</table>")  # fmt: skip
    w("</section></main>")
    w(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(out)


def write_report(
    out_dir: str | os.PathLike[str],
    metrics: dict[str, Any],
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    primary_threshold: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, Path]:
    """Write ``report.html``, ``metrics.json`` and ``summary.md`` into ``out_dir`` (created), and the ``extra``
    files given as text by name (``aigc eval``'s ``scores.jsonl``). All are rendered before any is written,
    then written atomically: a failure replaces none of them. Returns the paths by file name."""
    out = Path(out_dir)
    m = _clean(metrics)
    texts = {
        "metrics.json": _json_text(m),
        "summary.md": render_summary(m, primary_threshold, tuple(extra or ())),
        "report.html": render_html(m, curves, primary_threshold),
    }
    out.mkdir(parents=True, exist_ok=True)
    texts.update(extra or {})
    paths = {name: out / name for name in texts}
    _atomic_write_all({paths[n]: texts[n] for n in texts})
    return paths
