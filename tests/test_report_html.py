"""The HTML report: self-contained (no URL outside the page), every chart present, and, in a real
headless Chromium, every chart decodes and the page logs nothing to the console.

Chromium is Debian's ``chromium`` package (``apt-get install -y chromium``); set ``AIGC_CHROMIUM`` to use
another binary. Without it the browser tests skip and say why.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _eval_data import write_image_folder

from aigc.cli import main
from aigc.report import chart_ids
from aigc.report.render import _img

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, tiny_image_bundle: Path) -> Path:
    """A comparison report of two tiny image bundles: it holds every kind of chart."""
    from _bundles import build_bundle

    tmp = tmp_path_factory.mktemp("html")
    other = build_bundle(tmp / "b2", "image", {"name": "tiny-image-t05",
                                               "calibration": {"method": "temperature", "params": {"temperature": 0.5}, "n": 10}})  # fmt: skip
    data = write_image_folder(tmp / "data", n_per_class=10)
    rep = tmp / "rep"
    rc = main(["eval", str(tiny_image_bundle), str(other), str(data), "--report", str(rep), "--bootstrap", "30",
               "--perturbations", "jpeg50,resize0.5,png_to_jpeg", "--min-slice", "5", "--no-progress"])  # fmt: skip
    assert rc == 0
    return rep


def _metrics(rep: Path) -> dict:
    return json.loads((rep / "metrics.json").read_text())


def test_every_chart_kind_is_in_the_page(report: Path) -> None:
    html = (report / "report.html").read_text()
    ids = chart_ids(_metrics(report))
    kinds = {"comparison", "roc", "pr", "scores", "reliability", "slice", "fairness", "robustness"}
    assert {re.sub(r"-.*", "", i.removeprefix("chart-")) for i in ids} == kinds
    found = re.findall(r"<figure class=chart id='(chart-[^']+)'", html)
    assert found == ids


def test_page_is_self_contained(report: Path) -> None:
    html = (report / "report.html").read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*['"]?\s*(?:https?:|//|file:)""", html, re.I)
    assert "url(" not in html and "@import" not in html and "<link" not in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    srcs = re.findall(r"<img src='([^']+)'", html)
    assert len(srcs) == len(chart_ids(_metrics(report)))
    for s in srcs:
        assert s.startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(s.split(",", 1)[1]).decode("utf-8")
        root = ET.fromstring(svg)  # well-formed SVG
        assert root.tag.endswith("svg")
        # nothing inside a chart reaches out either (namespaces are identifiers, not fetched)
        assert not re.search(r"""(?:href|src)=["'](?:https?:|//)""", svg)


def test_summary_and_metrics_files(report: Path) -> None:
    m = _metrics(report)
    assert m["schema_version"] == 1 and len(m["bundles"]) == 2 and m["comparisons"]
    s = (report / "summary.md").read_text()
    assert s.startswith("# Evaluation: tiny-image, tiny-image-t05")
    assert "| bundle |" in s and "tiny-image-t05 vs tiny-image" in s


def _chromium() -> str | None:
    env = os.environ.get("AIGC_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _browse(page: Path, tmp: Path) -> tuple[str, list[str]]:
    """Load ``page`` in headless Chromium; return the DOM after the load event and the console lines.

    Chromium's ``--enable-logging=stderr`` writes every console message of the page (log, warning, error,
    uncaught exception, Content-Security-Policy violation) as an ``INFO:CONSOLE`` line.
    """
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not found (apt-get install -y chromium, or set AIGC_CHROMIUM); CI installs it")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, errors="replace")
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return proc.stdout, console


def test_chromium_renders_every_chart_and_logs_nothing(report: Path, tmp_path: Path) -> None:
    dom, console = _browse(report / "report.html", tmp_path)
    assert console == [], "the report logged to the console:\n" + "\n".join(console)
    ids = chart_ids(_metrics(report))
    total = re.search(r'data-charts-total="(\d+)"', dom)
    ok = re.search(r'data-charts-ok="(\d+)"', dom)
    assert total and ok, "the page's chart check did not run"
    assert int(total.group(1)) == len(ids) and int(ok.group(1)) == len(ids)
    for cid in ids:
        assert f'id="{cid}"' in dom
    for sec in ("overview", "comparison", "separation", "thresholds", "calibration", "slices", "fairness", "robustness", "failures"):
        assert f'id="{sec}"' in dom


def test_chromium_check_catches_broken_charts_and_outside_urls(report: Path, tmp_path: Path) -> None:
    """The browser test would notice a chart that does not decode, a script error, or a fetch from outside."""
    html = (report / "report.html").read_text()
    broken = _img("<svg", "broken", "broken", "a chart that does not decode")  # not a complete SVG
    html = html.replace("<main>", "<main>" + broken + "<img src='https://example.com/x.png'>", 1)
    html = html.replace("</body>", "<script>undefined_function();</script></body>", 1)
    page = tmp_path / "bad.html"
    page.write_text(html)
    dom, console = _browse(page, tmp_path)
    text = "\n".join(console)
    assert "charts failed to load: chart-broken" in text
    assert "example.com" in text  # blocked by the page's Content-Security-Policy, and logged
    assert "undefined_function" in text
    n = len(chart_ids(_metrics(report)))
    assert f'data-charts-ok="{n}"' in dom and f'data-charts-total="{n + 1}"' in dom
