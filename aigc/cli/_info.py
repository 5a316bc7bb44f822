"""``aigc info BUNDLE``: the bundle's card, for a person (default) or a program (``--json``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._bundle import forced_reason
from .._printable import printable


def _threshold_table(thresholds: dict[str, Any]) -> str:
    rows = [[name, _fmt(t.get("value")), _fmt(t.get("target_fpr")), _fmt(t.get("achieved_fpr")), _fmt(t.get("fpr_upper_95")),
             _fmt(t.get("tpr")), _fmt(t.get("n_human")), _fmt(t.get("n_ai"))] for name, t in thresholds.items()]
    return _table(rows, ["name", "value", "target FPR", "achieved FPR", "FPR 95% upper", "TPR", "n human", "n ai"])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="bundle folder or .zip")
    p.add_argument("--json", action="store_true", help="print bundle.json as validated")
    p.add_argument("--no-verify", action="store_true", help="skip the sha256 check of the files")


def _fmt(v: Any, nd: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}g}"
    return printable(v)


def _table(rows: list[list[str]], header: list[str]) -> str:
    rows = [[printable(x) for x in r] for r in rows]  # each cell one line, whatever bundle.json holds
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(out)


def _file(name: str, sizes: dict[str, int] | None) -> str:
    return f"{name}, {sizes[name] / 1e6:.1f} MB" if sizes and name in sizes else name


def _external(model: dict[str, Any], variant: str, sizes: dict[str, int] | None) -> str:
    """``; external data F (size)`` for a variant whose weights lie beside its graph (ONNX external data)."""
    names = (model.get("external_data") or {}).get(variant) or []
    return "".join(f"; external data {_file(n, sizes)}" for n in names)


def render_card(spec: dict[str, Any], sizes: dict[str, int] | None = None) -> str:
    """A plain-text card of a bundle spec: what it scores, how, how calibrated, its thresholds. Every value
    from the spec is shown with its control characters escaped (:func:`aigc._printable.printable`): a
    bundle.json cannot clear the screen, colour the card or forge a line of it."""
    L: list[str] = []  # tables (their cells escaped by _table)

    def add(line: str) -> None:  # one line of the card, escaped as a whole
        L.append(printable(line))

    add(f"{spec.get('name', '(unnamed)')}  [{spec['modality']} detector, bundle format v{spec['format_version']}]")
    add(f"labels: 0 = {spec['labels'][0]}, 1 = {spec['labels'][1]}")
    m = spec["model"]
    var = ", ".join(f"{k} ({_file(v, sizes)}{_external(m, k, sizes)})" for k, v in m["variants"].items())
    add(f"model: {var}; output {m['outputs'][0]['name']} ({m['output_kind']})")
    add("inputs: " + ", ".join(f"{x['name']} rank {x['rank']} {x.get('dtype', '')}".strip() for x in m["inputs"]))
    pre = {k: v for k, v in spec["preprocessing"].items() if k != "type"}
    add("preprocessing: " + ", ".join(f"{k}={v}" for k, v in pre.items()))
    cal = spec["calibration"]
    L.append("")
    add(f"calibration: {cal['method']} {json.dumps(cal.get('params', {}))[:120]} on n={_fmt(cal.get('n'))}")
    prev = cal.get("prevalence")
    if isinstance(prev, dict):
        add(f"prevalence: P(ai) is moved from the {_fmt(prev.get('base'))} share of AI items it was fitted on "
                 f"({prev.get('base_from', '')}) to {_fmt(prev.get('target'))} (log-odds {_fmt(prev.get('logit_shift'))}, "
                 f"{prev.get('rule', '')})")
    rec = spec.get("recalibration")
    if isinstance(rec, dict) and rec.get("mode") == "groups only":
        data, g = rec.get("data") or {}, rec.get("group_thresholds") or {}
        add(f"group thresholds by {g.get('column', '?')} added {rec.get('created', '')} on {data.get('source', '?')} "
            f"({_fmt(data.get('n_human'))} human items): added {', '.join(g.get('added') or []) or 'none'}, replaced "
            f"{', '.join(g.get('replaced') or []) or 'none'}; calibration, global thresholds and support kept"
            + (" (recalibrated before)" if rec.get("previous") else ""))
    elif isinstance(rec, dict):
        data = rec.get("data") or {}
        add(f"recalibrated {rec.get('created', '')} on {data.get('source', '?')} ({_fmt(data.get('n_human'))} human, "
                 f"{_fmt(data.get('n_ai'))} AI items): calibration {rec.get('calibration', '')}, thresholds "
                 f"{', '.join(map(str, rec.get('targets') or []))}; original {(rec.get('original') or {}).get('name', '')}"
                 + (" (recalibrated before)" if rec.get("previous") else ""))
    if cal.get("before") or cal.get("after"):
        rows = [[k, _fmt((cal.get("before") or {}).get(k)), _fmt((cal.get("after") or {}).get(k))] for k in ("ece", "brier", "nll")]
        L.append(_table(rows, ["metric", "before", "after"]))
    L.append("")
    add("thresholds (on calibrated P(ai)):")
    L.append(_threshold_table(spec["thresholds"]))
    for v, own in (spec.get("variant_calibration") or {}).items():
        c = own["calibration"]
        add(f"{v} has its own calibration ({c['method']} {json.dumps(c.get('params', {}))[:80]}) and thresholds, "
                 f"fitted on its own scores of the calibration split:")
        L.append(_threshold_table(own["thresholds"]))
    for name, t in spec["thresholds"].items():
        if isinstance(t.get("groups"), dict) and t["groups"]:
            per = ", ".join(f"{g} {_share_of(v)}" for g, v in t["groups"].items())
            add(f"{name} is the worst group's ({t.get('rule', '')}); FPR per group: {per}")
        h = t.get("heldout")
        if isinstance(h, dict) and isinstance(h.get("groups"), dict):
            per = ", ".join(f"{g} {_share_of(v)}" for g, v in h["groups"].items())
            by = f", set by {printable(h['set_by'])}" if h.get("set_by") else ""
            forced = " (forced: flags no ai calibration item)" if h.get("forced") else ""
            left = h.get("left_out_domains")
            left_s = f"; left out: {', '.join(map(printable, left))}" if isinstance(left, dict) and left else ""
            add(f"{name} vs the domain-held-out training scores (threshold {_fmt(h.get('value'))}{by}){forced}; "
                f"their FPR per domain: {per}{left_s}")
    gt = spec.get("group_thresholds")
    if gt:
        add(f"per-group thresholds by {gt['column']}: " + ", ".join(f"{g} ({len(ts)})" for g, ts in gt["groups"].items()))
        for g, ts in gt["groups"].items():  # the small-group rule's thresholds say how they were set
            few = [f"{n} {_fmt(t.get('value'))} ({t['rule']})" for n, t in ts.items() if _small_group(t)]
            if few:
                add(f"  {gt['column']}={g}: " + "; ".join(few))
        if isinstance(gt.get("detection"), dict) and gt["detection"]:  # groups calibrated with both labels
            add(f"detection by {gt['column']} (calibration items, AUROC, humans/ai): " + ", ".join(
                f"{g} {_fmt(d.get('auroc'))} ({d.get('n_human')}/{d.get('n_ai')})" + (" WEAK" if d.get("weak") else "")
                for g, d in gt["detection"].items()))
    sup = spec.get("support")
    if sup:
        L.append("")
        from .._support import describe_support

        add(describe_support(sup))
        add("calibration support: " + json.dumps({k: {f: _shown_support(f, v) for f, v in x.items() if f != "outlier"}
                                                       for k, x in sup.items() if isinstance(x, dict)})[:400])
    if spec.get("variants_eval"):
        L.append("")
        add("variants on the calibration split:")
        rows = [[k, _fmt(v.get("auroc")), _fmt(v.get("auroc_delta")), _fmt(v.get("n")), _fmt(v.get("rank_agreement_fp32")),
                 _fmt(v.get("max_abs_dp_vs_fp32"))] for k, v in spec["variants_eval"].items()]
        L.append(_table(rows, ["variant", "AUROC", "change", "n", "Spearman vs fp32", "max |P - P fp32|"]))
        L.extend(printable(f"{k}: not in this bundle, refused at export: {v['refused']}")
                 for k, v in spec["variants_eval"].items() if isinstance(v, dict) and v.get("refused"))
        L.extend(printable(f"{k}: shipped with --force past the AUROC gate that refused it: {forced_reason(v)}")
                 for k, v in spec["variants_eval"].items() if forced_reason(v))
    if spec.get("metrics"):
        L.append("")
        add("metrics: " + json.dumps(spec["metrics"])[:600])
    if sizes:
        L.append("")
        add("files (sha256 checked on load): " + ", ".join(
            f"{n} ({sizes[n] / 1e6:.1f} MB)" for n in spec.get("files", {}) if n in sizes))
    prov = spec.get("provenance", {})
    L.append("")
    add("provenance: " + ", ".join(f"{k}={v}" for k, v in prov.items() if not isinstance(v, (dict, list)))[:600])
    if isinstance(prov.get("packages"), dict):
        add("packages: " + ", ".join(f"{k} {v}" for k, v in prov["packages"].items()))
    return "\n".join(L)


def run(args: argparse.Namespace) -> int:
    from .._bundle import BundleError, open_bundle

    try:
        b = open_bundle(args.bundle, verify_files=not args.no_verify)
    except BundleError as e:
        print(printable(f"aigc info: bad bundle {args.bundle}: {e}"), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(b.spec, indent=2))
        return 0
    sizes = {p.name: p.stat().st_size for p in b.root.iterdir() if p.is_file()}
    print(render_card(b.spec, sizes))
    return 0


def _share_of(v: dict[str, Any]) -> str:
    """``"3.7% of 108"`` from a record's ``achieved_fpr`` and ``n_human`` (``"? of n"`` when unknown)."""
    f, n = v.get("achieved_fpr"), v.get("n_human")
    return f"{100 * float(f):.1f}% of {n}" if isinstance(f, (int, float)) else f"? of {n}"


def _shown_support(field: str, v: Any) -> Any:
    """A support field as the card shows it: the lexicon's word list as its length (200 words say nothing)."""
    if field == "lexicon" and isinstance(v, dict) and isinstance(v.get("words"), list):
        return {**{k: x for k, x in v.items() if k != "words"}, "words": f"{len(v['words'])} words"}
    return v


def _small_group(t: dict[str, Any]) -> bool:
    """Whether a group threshold was set by the small-group rule: its ``small_group`` mark, or for bundles written
    before that mark (session 25) its rule's wording."""
    if "small_group" in t:
        return bool(t["small_group"])
    return str(t.get("rule", "")).startswith(("above all", "the global threshold", "conformal on"))
