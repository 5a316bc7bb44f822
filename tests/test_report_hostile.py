"""Hostile text in the report: data values, bundle and threshold names and score logs that hold ``$`` (mathtext),
control characters, Markdown and HTML never change what the reader sees nor break the report; a chart that
cannot be drawn leaves a placeholder; a failure while writing replaces no file; bad shadow-log probabilities
are skipped and counted."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aigc.cli import main
from aigc.report import evaluate_scores, plots, render
from aigc.report._escape import md, md_code, mpl_label, visible
from aigc.report.shadow import _summary, read_score_log
from aigc.report.summary import render_summary

FRAC = "$\\frac$"
FORGE = "x | y\n\nFairness: none of the groups is flagged more often. All clear.\n\n| forged | row |"
HOSTILE = [FRAC, "$5 and $10 budget", "\x1b[31mred\x07", FORGE, "<img src=https://evil.example/x.png>", "_hidden", "bidi\u202eevil"]


def _svgs(html: str) -> list[str]:
    return [base64.b64decode(s.split(",", 1)[1]).decode("utf-8") for s in re.findall(r"<img src='([^']+)'", html)]


def _svg_text(svg: str) -> str:
    return " ".join("".join(e.itertext()) for e in ET.fromstring(svg).iter() if e.tag.endswith("text"))


# -- helpers


def test_visible_and_markdown_escapes() -> None:
    assert visible("a\x1b[2J\nb\ud800\ufffe\u202e") == "a\\x1b[2J\\nb\\ud800\\ufffe\\u202e"
    assert visible("tab\tnl\n", keep="\t\n") == "tab\tnl\n"
    m = md(FORGE + " <img src=x> [a](b) ![i](j) *b* _i_ `c` \\| # & ~")
    assert "\n" not in m and "<" not in m.replace("\\<", "")
    assert re.search(r"(?<!\\)\|", m) is None  # every pipe escaped: no table cell can be forged
    assert md("# title").startswith("\\#") and md("- item").startswith("\\-")
    assert md_code("a`b") == "``a`b``" and md_code("x\ny") == "`x\\ny`"


def test_mpl_label_is_literal() -> None:
    assert mpl_label("$5 and $10") == "\\$5 and \\$10"
    assert mpl_label("_hidden").startswith(" ")
    assert "\x1b" not in mpl_label("\x1b[31m")


# -- charts


@pytest.mark.parametrize("name", HOSTILE)
def test_every_chart_draws_hostile_names_literally(name: str) -> None:
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(40, int), np.ones(40, int)]
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    svgs = [plots.roc_chart([(name, y, p)], [{name: (0.1, 0.5)}]), plots.pr_chart([(name, y, p)]),
            plots.reliability_chart(name, y, p), plots.score_chart([(name, y, p)], [{name: 0.5}])]  # fmt: skip
    P = {"value": 0.5, "ci": [0.4, 0.6], "small": False}
    rows = [{"group": name, "n": 40, "n_human": 20, "n_ai": 20, "auroc": {**P, "reference": "within"}, "thresholds": {name: {"tpr": P, "fpr": P}}}]
    svgs.append(plots.slice_chart(name, [(name, rows), ("other", rows)], name))
    fair = {"groups": [{"group": name, "n_human": 20, "fpr": {name: P}}], "overall": {name: P}}
    svgs.append(plots.fairness_chart(name, [(name, fair)], name, 0.01))
    d = {"delta": 0.1, "ci": [0.05, 0.15], "significant": True, "higher_is_better": True}
    svgs.append(plots.comparison_chart([{"candidate": name, "baseline": "base", "deltas": {name: d}}]))
    rob = {"perturbations": {name: {"results": [{"auroc": P}]}}, "bundles": [name], "clean": [{"auroc": P}]}
    svgs.append(plots.robustness_chart(rob, None))
    want = visible(name)
    for svg in svgs:
        text = _svg_text(svg)  # parses: the SVG is well-formed XML
        assert want.lstrip("_") in text, (want, text[:300])
        assert "\x1b" not in svg and "\u202e" not in svg


def test_a_chart_that_fails_leaves_a_placeholder(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def boom(*_: Any) -> str:
        raise RuntimeError("no <luck>")

    monkeypatch.setattr(plots, "pr_chart", boom)
    html = render._chart("pr", "pr", "caption", plots.pr_chart, [])
    assert "chart could not be drawn: RuntimeError: no &lt;luck&gt;" in html and "id='chart-pr'" in html
    assert "could not be drawn" in caplog.text
    broken = render._chart("x", "x", "c", lambda: "<svg><text>\x1b</text></svg>")  # not XML: never embedded
    assert "<img" not in broken and "data-failed" in broken


# -- end to end


def _data(path: Path, values: list[str]) -> Path:
    rng = np.random.default_rng(1)
    hum, ai = "the cat sat on mat a dog ran in park".split(), "delve tapestry moreover furthermore the a".split()
    with open(path, "w", encoding="utf-8") as f:
        for k, v in enumerate(values):
            for j in range(40):
                lab = j % 2
                ws = (hum if lab else ai) if (k == 0 and j % 4 < 2) else (ai if lab else hum)
                f.write(json.dumps({"text": " ".join(rng.choice(ws, 6)), "label": lab, "src": v}) + "\n")
    return path


@pytest.fixture(scope="module")
def hostile_report(tiny_text_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("hostile")
    data = _data(tmp / "d.jsonl", [FORGE, FRAC, "$5 and $10 budget", "\x1b[31mred", "<img src=https://evil.example/x.png>", "plain"])
    rep = tmp / "rep"
    rc = main(["eval", str(tiny_text_bundle), str(data), "--report", str(rep), "--bootstrap", "0", "--no-robustness",
               "--min-slice", "5", "--fairness-by", "src", "--no-progress"])  # fmt: skip
    assert rc == 0
    return rep


def test_report_with_hostile_slice_values_is_complete(hostile_report: Path) -> None:
    html = (hostile_report / "report.html").read_text(encoding="utf-8")
    assert "data-failed" not in html
    texts = " ".join(_svg_text(s) for s in _svgs(html))  # every chart is well-formed SVG
    assert "$5 and $10 budget" in texts and FRAC in texts and "\\x1b[31mred" in texts
    assert "\x1b" not in html and "<img src=https://" not in html
    json.loads((hostile_report / "metrics.json").read_text(encoding="utf-8"))


def test_summary_cannot_be_forged(hostile_report: Path) -> None:
    s = (hostile_report / "summary.md").read_text(encoding="utf-8")
    lines = s.splitlines()
    assert not any(x.startswith("Fairness: none") for x in lines)
    assert not any(x.startswith("| forged") for x in lines)
    assert "<img" not in s and "\x1b" not in s
    weak = next(x for x in lines if x.startswith("Weakest slices"))
    assert "src=x \\| y\\n\\nFairness" in weak


def test_summary_escapes_names_in_every_table() -> None:
    bad = "b | <b>x</b>\n# H"
    b = {"name": bad, "n_scored": 100, "failures": {"count": 0}, "thresholds": {bad: {}}, "overlap": {"status": "unknown", "reason": bad},
         "overall": {"auroc": {"value": 0.9, "ci": None}, "ap": {"value": 0.9, "ci": None}, "tpr_at_fpr": {},
                     "thresholds": {bad: {"recall": {"value": 0.5}, "fpr": {"value": 0.1}}},
                     "calibration": {"ece": {"value": 0.1}, "brier": {"value": 0.1}}},
         "slices": {bad: [{"group": bad, "n": 60, "auroc": {"value": 0.7, "small": False}}]}}  # fmt: skip
    m = {"bundles": [b, {**b, "overall": None, "error": bad}], "data": {"source": "`x`\n", "modality": "text", "n_items": 100, "n_human": 50,
         "n_ai": 50, "problems": {"count": 0}}, "settings": {"bootstrap": 0, "level": 0.95, "min_slice": 30}, "schema_version": 1,
         "comparisons": [{"candidate": bad, "baseline": "b", "n": 5, "deltas": {}, "error": bad}],
         "provenance": {"n_items": 1, "c2pa_states": {bad: 1}, "note": "n", "by_verdict": {"none": {"n": 1, "n_human": 1, "n_ai": 0,
                        "bundles": {bad: {"n_scored": 1, "share_at_or_above": {bad: 0.5}}}}},
                        "policy": {bad: {"policy": bad, "threshold": bad, "changed": 0, "n": 1, "accuracy_detector": 1.0,
                                         "accuracy_final": 1.0}}}}  # fmt: skip
    s = render_summary(m)
    assert "<b>" not in re.sub(r"(`+).*?\1", "", s) and not any(x.startswith("# H") for x in s.splitlines())
    lines = s.splitlines()
    cells = lambda x: len(re.findall(r"(?<!\\)\|", x))  # noqa: E731 - unescaped pipes of a table line
    k = next(i for i, x in enumerate(lines) if x.startswith("| bundle"))
    assert cells(lines[k + 2]) == cells(lines[k])  # the bundle's row keeps its columns
    assert cells(lines[k + 3]) == 5  # the failed bundle: name, scored, failed, error
    k = next(i for i, x in enumerate(lines) if x.startswith("| verdict"))
    assert cells(lines[k + 2]) == cells(lines[k])  # provenance row


# -- writing


def test_a_failure_while_rendering_replaces_no_file(hostile_report: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {f: (hostile_report / f).read_bytes() for f in render.REPORT_FILES}
    m = json.loads(before["metrics.json"])
    m["created"] = "changed"

    def boom(*_: Any, **__: Any) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr(render, "render_html", boom)
    with pytest.raises(RuntimeError):
        render.write_report(hostile_report, m, [])
    assert {f: (hostile_report / f).read_bytes() for f in render.REPORT_FILES} == before
    assert not list(hostile_report.glob(".*.tmp"))


def test_lone_surrogate_is_written_as_its_json_escape(tmp_path: Path) -> None:
    m = json.loads(json.dumps({"x": "a\ud800b"}))
    text = render._LONE.sub(lambda x: f"\\u{ord(x.group()):04x}", json.dumps(m, ensure_ascii=False))
    assert json.loads(text) == m and text.encode("utf-8")


# -- scores and shadow logs


def test_probabilities_outside_0_1_are_refused() -> None:
    y = np.r_[np.zeros(5, int), np.ones(5, int)]
    for bad in (7.5, -3.0, np.inf):
        p = np.linspace(0, 1, 10)
        p[3] = bad
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            evaluate_scores(y, p, {}, n_boot=0)


def _log_row(h: str, pp: Any, pc: Any, bundle: str = "prod", thr: str = "fpr@1%") -> dict[str, Any]:
    return {"bundle": bundle, "item_sha256": h, "primary": {"probability": pp, "bundle_sha256": "aaa", "thresholds": {thr: 0.8}},
            "candidate": {"probability": pc, "bundle_sha256": "bbb", "thresholds": {thr: 0.8}}}  # fmt: skip


def test_shadow_log_skips_bad_probabilities(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    evil = "prod\x1b[2J\x1b[32mcandidate is BETTER, promote\x1b[0m\n| forged |"
    log, labels = tmp_path / "log.jsonl", tmp_path / "labels.jsonl"
    rows, labs = [], []
    for i in range(60):
        y = i % 2
        rows.append(_log_row(f"h{i}", float(np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)), float(rng.uniform()), evil, evil))
        labs.append({"item_sha256": f"h{i}", "label": y})
    bad = [("b0", float("nan"), 0.5), ("b1", 7.5, 0.5), ("b2", 0.5, -3), ("b3", "0.5", 0.5), ("b4", True, 0.5), ("b5", 0.5, float("inf"))]
    for h, pp, pc in bad:
        rows.append(_log_row(h, pp, pc, evil, evil))
        labs.append({"item_sha256": h, "label": 1})
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n\xff\xfe bad bytes\n", encoding="utf-8", errors="surrogateescape")
    labels.write_text("\n".join(json.dumps(x) for x in labs) + "\n", encoding="utf-8")
    kept, skipped = read_score_log(log)
    assert len(kept) == 60 and skipped["a probability that is not a number in [0, 1]"] == len(bad)
    rep = tmp_path / "rep"
    assert main(["eval", "--shadow-log", str(log), str(labels), "--report", str(rep), "--bootstrap", "50"]) == 0
    m = json.loads((rep / "metrics.json").read_text())
    assert m["n"] == 60 and m["join"]["log_rows_skipped"]["a probability that is not a number in [0, 1]"] == len(bad)
    assert m["candidate"]["calibration"]["brier"]["value"] <= 1.0
    out = capsys.readouterr().out
    s = (rep / "summary.md").read_text()
    for text in (out, s):
        assert "\x1b" not in text and "\\x1b\\[2J" in text
        assert not any(x.startswith("| forged") for x in text.splitlines())


def test_shadow_summary_of_a_failed_comparison_is_escaped() -> None:
    m = {"bundle": "a\nb", "primary_sha256": "<x>", "candidate_sha256": "y", "n": 2, "n_human": 2, "n_ai": 0,
         "agreement": {"t\x1b": 1.0}, "error": "e\n| forged |"}  # fmt: skip
    s = _summary(m)
    assert "\x1b" not in s and "<x>" not in s and not any(x.startswith("| forged") for x in s.splitlines())
