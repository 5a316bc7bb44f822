"""``aigc eval --shadow-log LOG LABELS.jsonl --report DIR``: compare a served detector with its shadow.

The score log of ``aigc serve --shadow NAME=CANDIDATE --score-log LOG`` holds, per item, its sha256 and
both verdicts (see :mod:`aigc.serve.shadow`). Labels gathered later are a JSONL of ``{"item_sha256": ...,
"label": ...}`` (``item_hash`` is accepted too; labels as ``aigc eval`` reads them: 0/1, human/ai, ...).
The two are joined on the hash (the last row of an item wins), and the two detectors are evaluated and
compared exactly as ``aigc eval`` compares bundles (:func:`~aigc.report.evaluate.evaluate_scores`,
:func:`~aigc.report.evaluate.compare_scores`, paired bootstrap). Rows of a log rotated away (LOG.1, ...)
are read too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics import score_correlation
from ._escape import md, visible
from .data import parse_label
from .evaluate import compare_scores, evaluate_scores
from .render import _atomic_write_all

__all__ = ["join_log", "read_labels", "read_score_log", "run_shadow_eval", "shadow_metrics"]


def _log_files(path: Path) -> list[Path]:
    """LOG.N (oldest) ... LOG.1, LOG: the rotated files in the order they were written."""
    olds = sorted((p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()),
                  key=lambda p: -int(p.suffix[1:]))  # fmt: skip
    return [*olds, path] if path.exists() else olds


def _prob_ok(x: Any) -> bool:
    """A probability: a finite number in [0, 1] (not a string, not a boolean)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and 0.0 <= x <= 1.0


def _thresholds(v: dict[str, Any]) -> dict[str, float]:
    """The verdict's named thresholds that are finite numbers (others cannot be applied)."""
    t = v.get("thresholds")
    ok = {n: x for n, x in t.items() if isinstance(x, (int, float)) and not isinstance(x, bool)} if isinstance(t, dict) else {}
    return {str(n): float(x) for n, x in ok.items() if math.isfinite(x)}


def _key(v: dict[str, Any]) -> str | None:
    x = v.get("bundle_sha256")
    return None if x is None else str(x)


def read_score_log(path: str | os.PathLike[str]) -> tuple[dict[str, dict[str, Any]], Counter[str]]:
    """{item sha256: the last row with both scores} and counts of rows skipped by reason (a row whose
    probability is not a number in [0, 1] is skipped, never evaluated)."""
    rows: dict[str, dict[str, Any]] = {}
    skipped: Counter[str] = Counter()
    files = _log_files(Path(path))
    if not files:
        raise ValueError(f"{path}: no such score log")
    for f in files:
        with open(f, "rb") as fh:
            for line in fh:
                try:
                    r = json.loads(line.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    skipped["unreadable line"] += 1
                    continue
                if not isinstance(r, dict):
                    skipped["unreadable line"] += 1
                    continue
                c, p = r.get("candidate"), r.get("primary")
                if not isinstance(r.get("item_sha256"), str) or not r["item_sha256"] or not isinstance(p, dict):
                    skipped["no item hash or primary verdict"] += 1
                elif not isinstance(c, dict):
                    skipped["no shadow score (dropped under load, or no --shadow)"] += 1
                elif p.get("probability") is None or c.get("probability") is None:
                    skipped["an item one of the detectors failed on"] += 1
                elif not (_prob_ok(p["probability"]) and _prob_ok(c["probability"])):
                    skipped["a probability that is not a number in [0, 1]"] += 1
                else:
                    rows[r["item_sha256"]] = r
    return rows, skipped


def read_labels(path: str | os.PathLike[str]) -> tuple[dict[str, int], list[str]]:
    """{item sha256: 0 human / 1 ai} from a JSONL, and the problems (line: what is wrong)."""
    out: dict[str, int] = {}
    problems: list[str] = []
    with open(path, "rb") as fh:
        for k, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                problems.append(f"line {k}: not JSON")
                continue
            h = r.get("item_sha256") or r.get("item_hash") if isinstance(r, dict) else None
            y = parse_label(r.get("label")) if isinstance(r, dict) else None
            if not h or y is None:
                problems.append(f"line {k}: needs item_sha256 (or item_hash) and a label")
                continue
            out[str(h)] = y
    return out, problems


def join_log(rows: dict[str, dict[str, Any]], labels: dict[str, int]) -> tuple[list[dict[str, Any]], np.ndarray, dict[str, Any]]:
    """Rows with a label, all from the most frequent (primary, candidate) bundle pair; their labels; notes."""
    joined = [(rows[h], y) for h, y in labels.items() if h in rows]
    pairs = Counter((_key(r["primary"]), _key(r["candidate"])) for r, _ in joined)
    notes: dict[str, Any] = {"labelled_in_log": len(joined), "labels_not_in_log": len(labels) - len(joined)}
    if not pairs:
        return [], np.zeros(0, dtype=np.int64), notes
    pair, n = pairs.most_common(1)[0]
    if len(pairs) > 1:
        notes["other_bundle_pairs_skipped"] = len(joined) - n
    keep = [(r, y) for r, y in joined if (_key(r["primary"]), _key(r["candidate"])) == pair]
    return [r for r, _ in keep], np.array([y for _, y in keep], dtype=np.int64), notes


def shadow_metrics(rows: list[dict[str, Any]], y: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Both detectors' metrics, their paired comparison, and the label agreement at each common threshold."""
    pp = np.array([r["primary"]["probability"] for r in rows], dtype=np.float64)
    pc = np.array([r["candidate"]["probability"] for r in rows], dtype=np.float64)
    tp, tc = _thresholds(rows[0]["primary"]), _thresholds(rows[0]["candidate"])
    out: dict[str, Any] = {"n": int(y.size), "n_human": int((y == 0).sum()), "n_ai": int((y == 1).sum()),
                           "primary_sha256": _key(rows[0]["primary"]), "candidate_sha256": _key(rows[0]["candidate"]),
                           "bundle": rows[0].get("bundle")}  # fmt: skip
    out["agreement"] = {n: float(np.mean((pp >= tp[n]) == (pc >= tc[n]))) for n in tp if n in tc}
    out["score_correlation"] = score_correlation(pp, pc)  # None where undefined (no spread), never a rounding ±1
    if (y == 0).any() and (y == 1).any():
        out["primary"] = evaluate_scores(y, pp, tp, n_boot, seed, level)
        out["candidate"] = evaluate_scores(y, pc, tc, n_boot, seed, level)
        out["comparison"] = compare_scores(y, pp, pc, tp, tc, n_boot, seed, level)
    else:
        out["error"] = f"the labelled items lack a class ({out['n_human']} human, {out['n_ai']} AI): no metrics"
    return out


def _summary(m: dict[str, Any]) -> str:
    """summary.md, also printed: every text from the log Markdown-escaped (control characters visible)."""

    def f(x: Any) -> str:
        return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3f}"

    L = [f"# Shadow comparison: {md(m.get('bundle'))} (primary {md(str(m.get('primary_sha256'))[:12])} vs candidate "
         f"{md(str(m.get('candidate_sha256'))[:12])})", "",
         f"{m['n']} labelled items ({m['n_human']} human, {m['n_ai']} AI); score correlation {f(m.get('score_correlation'))}.", ""]  # fmt: skip
    if m.get("agreement"):
        L.append("Label agreement: " + ", ".join(f"{md(n)} {100 * a:.1f}%" for n, a in m["agreement"].items()))
        L.append("")
    if m.get("error"):
        return "\n".join([*L, md(m["error"]), ""])
    L += ["| metric | primary | candidate | difference [paired CI] | significant |", "|---|---|---|---|---|"]
    for k, d in m["comparison"]["deltas"].items():
        ci = d.get("ci")
        cis = f" [{f(ci[0])}, {f(ci[1])}]" if ci and None not in ci else ""
        L.append(f"| {md(k)} | {f(d['baseline'])} | {f(d['candidate'])} | {f(d['delta'])}{cis} | {'yes' if d['significant'] else 'no'} |")
    return "\n".join(L) + "\n"


def run_shadow_eval(args: argparse.Namespace) -> int:
    """``aigc eval --shadow-log LOG LABELS --report DIR``; exit 0 with metrics, 1 without, 2 on bad input."""
    if len(args.paths) != 1:
        print("aigc eval: with --shadow-log give exactly one labels JSONL: aigc eval --shadow-log LOG LABELS.jsonl --report DIR",
              file=sys.stderr)  # fmt: skip
        return 2
    rep = Path(args.report)
    if rep.exists() and (not rep.is_dir() or (any(rep.iterdir()) and not getattr(args, "overwrite", False))):
        print(f"aigc eval: --report {rep}: the folder exists and is not empty (or is a file); pass --overwrite to replace "
              "its report files", file=sys.stderr)  # fmt: skip
        return 2
    try:
        rows, skipped = read_score_log(args.shadow_log)
        labels, problems = read_labels(args.paths[0])
    except (OSError, ValueError) as e:
        print(f"aigc eval: {visible(e)}", file=sys.stderr)
        return 2
    joined, y, notes = join_log(rows, labels)
    notes.update(log_items=len(rows), log_rows_skipped=dict(skipped), label_problems=problems[:20])
    if not joined:
        print(f"aigc eval: no labelled item is in the score log ({len(labels)} labels, {len(rows)} logged items with both scores)",
              file=sys.stderr)  # fmt: skip
        return 2
    m = shadow_metrics(joined, y, args.bootstrap, args.seed, args.ci)
    m.update(schema="aigc.shadow_eval/1", created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
             score_log=str(args.shadow_log), labels=str(args.paths[0]), join=notes)  # fmt: skip
    out = Path(args.report)
    summary = _summary(m)
    text = json.dumps(m, indent=1, allow_nan=False, default=lambda x: None) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write_all({out / "metrics.json": text, out / "summary.md": summary})  # both or neither
    print(summary)
    print(f"metrics: {out / 'metrics.json'}\nsummary: {out / 'summary.md'}")
    return 0 if "comparison" in m else 1
