"""``aigc eval`` end to end with tiny torch-free bundles: text and image data, failures, comparison,
robustness, exit codes; and (shared data) the real sets of ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _eval_data import write_image_folder, write_text_data

from aigc.cli import main
from aigc.perturb import list_perturbations
from aigc.report import chart_ids


def _run(args: list[str]) -> int:
    return main(["eval", *[str(a) for a in args], "--no-progress"])


def _load(report: Path) -> dict:
    assert {p.name for p in report.iterdir()} >= {"report.html", "metrics.json", "summary.md"}
    return json.loads((report / "metrics.json").read_text())


@pytest.fixture(scope="module")
def image_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("img") / "data", n_per_class=12)


@pytest.fixture(scope="module")
def second_image_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnx")
    from _bundles import build_bundle

    cal = {"method": "temperature", "params": {"temperature": 0.5}, "n": 2000}
    return build_bundle(tmp_path_factory.mktemp("b2") / "image2", "image", {"calibration": cal, "name": "tiny-image-sharp"})


@pytest.mark.slow
def test_text_end_to_end(tiny_text_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_text_data(tmp_path / "d.jsonl", n=80)
    rep = tmp_path / "rep"
    assert _run([tiny_text_bundle, data, "--report", rep, "--bootstrap", "50", "--min-slice", "10"]) == 0
    out = capsys.readouterr().out
    assert "tiny-text: AUROC" in out and "report.html" in out
    m = _load(rep)
    assert m["schema_version"] == 1
    assert m["data"]["n_items"] == 81 and m["data"]["problems"]["count"] == 2
    b = m["bundles"][0]
    assert b["failures"]["count"] == 1 and "empty text" in b["failures"]["examples"][0]["error"]
    assert b["n_scored"] == 80
    o = b["overall"]
    assert 0.5 < o["auroc"]["value"] <= 1 and o["auroc"]["ci"][0] <= o["auroc"]["value"] <= o["auroc"]["ci"][1]
    assert set(o["thresholds"]) == {"fpr@1%", "fpr@5%", "balanced"}
    assert set(o["tpr_at_fpr"]) == {"0.1%", "1%", "5%"}
    assert {"generator", "domain", "language", "native", "length"} <= set(m["data"]["slice_fields"])
    assert "generator" not in m["data"]["fairness_fields"] and "native" in m["data"]["fairness_fields"]
    native = {r["group"]: r for r in b["fairness"]["native"]["groups"]}
    assert set(native) == {"yes", "no"} and native["yes"]["n_human"] + native["no"]["n_human"] == 40
    assert set(m["robustness"]["perturbations"]) == set(list_perturbations("text"))
    zw = m["robustness"]["perturbations"]["zero_width"]["results"][0]
    assert zw["delta_auroc"]["value"] == pytest.approx(0, abs=1e-9)  # the runtime strips zero-width characters
    assert m["robustness"]["perturbations"]["lowercase"]["results"][0]["n"] == 80
    assert m["robustness"]["perturbations"]["lowercase"]["n_changed"] == 0  # the texts are lower case already
    assert m["robustness"]["perturbations"]["uppercase"]["n_changed"] == 80
    html = (rep / "report.html").read_text()
    for cid in chart_ids(m):
        assert f"id='{cid}'" in html
    assert "Largest AUROC drops" in (rep / "summary.md").read_text()
    # scores.jsonl: each item once, named by its row id, with what the metrics count
    assert "`scores.jsonl` (each item's probability and flags)" in (rep / "summary.md").read_text()
    rows = [json.loads(x) for x in (rep / "scores.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 81 and {r["bundle"] for r in rows} == {"tiny-text"} and len({r["id"] for r in rows}) == 81
    failed = [r for r in rows if r["probability"] is None]
    assert len(failed) == 1 and "empty text" in failed[0]["error"] and set(failed[0]["flagged"].values()) == {None}
    assert {"generator", "domain", "native"} <= set(rows[0]["fields"]) and "text" not in rows[0]
    assert set(rows[0]["fields"]) <= set(m["data"]["slice_fields"])  # no free-text field is copied
    for name, t in o["thresholds"].items():
        humans = [r for r in rows if r["label"] == 0 and r["probability"] is not None]
        machines = [r for r in rows if r["label"] == 1 and r["probability"] is not None]
        assert sum(r["flagged"][name] for r in humans) == t["confusion"]["fp"]
        assert sum(r["flagged"][name] for r in machines) == t["confusion"]["tp"]


@pytest.mark.slow
def test_image_comparison_end_to_end(tiny_image_bundle: Path, second_image_bundle: Path, image_data: Path, tmp_path: Path) -> None:
    rep = tmp_path / "rep"
    rc = _run([tiny_image_bundle, second_image_bundle, image_data, "--report", rep, "--bootstrap", "40", "--min-slice", "5"])
    assert rc == 0
    m = _load(rep)
    names = [b["name"] for b in m["bundles"]]
    assert names == ["tiny-image", "tiny-image-sharp"]
    for b in m["bundles"]:
        assert b["failures"]["count"] == 1 and b["failures"]["examples"][0]["id"] == "ai/gan_corrupt.png"
        assert b["overall"]["auroc"]["value"] > 0.8
    rows = [json.loads(x) for x in (rep / "scores.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["bundle"] for r in rows] == ["tiny-image"] * 25 + ["tiny-image-sharp"] * 25
    assert [r["id"] for r in rows[:25]] == [r["id"] for r in rows[25:]]
    assert sum(r["probability"] is None for r in rows) == 2
    c = m["comparisons"][0]
    assert c["baseline"] == "tiny-image" and c["candidate"] == "tiny-image-sharp" and c["n"] == 24
    # a monotone recalibration: same ranking, different calibration
    assert c["deltas"]["auroc"]["delta"] == pytest.approx(0, abs=1e-12) and not c["deltas"]["auroc"]["significant"]
    assert c["deltas"]["brier"]["delta"] != 0
    assert {"generator", "domain", "resolution", "format"} <= set(m["data"]["slice_fields"])
    gens = {r["group"] for r in m["bundles"][0]["slices"]["generator"]}
    assert gens == {"human", "gan", "diffusion1"}
    rob = m["robustness"]
    assert list(rob["perturbations"]) == list_perturbations("image") and rob["n_items"] == 24
    assert rob["perturbations"]["png_to_jpeg"]["n_changed"] == 8  # the PNG files only
    assert rob["perturbations"]["jpeg50"]["n_changed"] == 24
    for p in rob["perturbations"].values():
        assert len(p["results"]) == 2 and p["results"][0]["auroc"]["value"] is not None
    html = (rep / "report.html").read_text()
    assert "chart-comparison" in chart_ids(m)
    for cid in chart_ids(m):
        assert f"id='{cid}'" in html
    assert "tiny-image-sharp vs tiny-image" in (rep / "summary.md").read_text()


@pytest.mark.slow
def test_options_limit_perturbations_and_slices(tiny_image_bundle: Path, image_data: Path, tmp_path: Path) -> None:
    rep = tmp_path / "rep"
    rc = _run([tiny_image_bundle, image_data, "--report", rep, "--bootstrap", "0", "--limit", "10", "--seed", "3",
               "--perturbations", "jpeg75,blur1", "--slice-by", "generator", "--fairness-by", "format"])  # fmt: skip
    assert rc == 0
    m = _load(rep)
    assert m["data"]["n_items"] == 10 and m["data"]["n_human"] == 5 and m["data"]["limit"] == 10
    assert list(m["robustness"]["perturbations"]) == ["jpeg75", "blur1"]
    assert m["data"]["slice_fields"] == ["generator"] and m["data"]["fairness_fields"] == ["format"]
    assert m["bundles"][0]["overall"]["auroc"]["ci"] is None  # --bootstrap 0
    rep2 = tmp_path / "rep2"
    assert _run([tiny_image_bundle, image_data, "--report", rep2, "--bootstrap", "0", "--no-robustness", "--limit", "10", "--seed", "3"]) == 0
    m2 = _load(rep2)
    assert m2["robustness"] == {"enabled": False}
    assert m2["bundles"][0]["overall"]["auroc"] == m["bundles"][0]["overall"]["auroc"]  # same seeded sample


def test_exit_codes(tiny_text_bundle: Path, tiny_image_bundle: Path, image_data: Path, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    rep = tmp_path / "rep"
    assert _run([tiny_text_bundle, tiny_image_bundle, image_data, "--report", rep]) == 2
    assert "different modalities" in capsys.readouterr().err
    assert _run([tiny_image_bundle, tmp_path / "nope", "--report", rep]) == 2
    assert "no such file" in capsys.readouterr().err
    assert _run([tiny_image_bundle, "--report", rep]) == 2
    assert "at least one bundle and the data" in capsys.readouterr().err
    assert _run([tmp_path, image_data, "--report", rep]) == 2  # not a bundle
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"text": "the cat", "label": 0}) + "\n")
    assert _run([tiny_text_bundle, one, "--report", rep]) == 2
    assert "both classes" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    assert _run([tiny_text_bundle, bad, "--report", rep]) == 2
    assert "no usable labelled item" in capsys.readouterr().err
    assert _run([tiny_image_bundle, image_data, "--report", rep, "--perturbations", "jpeg10", "--bootstrap", "0"]) == 2
    assert "unknown image perturbation" in capsys.readouterr().err
    assert not rep.exists()


def test_every_item_failing_writes_a_report_and_exits_1(tiny_image_bundle: Path, tmp_path: Path) -> None:
    root = tmp_path / "d"
    for cls in ("real", "ai"):
        (root / cls).mkdir(parents=True)
        (root / cls / "x_1.png").write_bytes(b"not an image")
    rep = tmp_path / "rep"
    assert _run([tiny_image_bundle, root, "--report", rep, "--bootstrap", "0"]) == 1
    m = _load(rep)
    assert m["bundles"][0]["failures"]["count"] == 2 and m["bundles"][0]["overall"] is None


@pytest.mark.shared
@pytest.mark.slow
def test_shared_text_data(shared_data: Path, tiny_text_bundle: Path, tmp_path: Path) -> None:
    rep = tmp_path / "rep"
    rc = _run([tiny_text_bundle, shared_data / "text" / "glimpse.jsonl", "--report", rep, "--limit", "300",
               "--bootstrap", "100", "--robustness-limit", "60", "--perturbations", "homoglyph,truncate64"])  # fmt: skip
    assert rc == 0
    m = _load(rep)
    assert m["data"]["n_items"] == 300 and m["data"]["n_read"] == 4500
    assert "language" in m["data"]["fairness_fields"]
    langs = {r["group"] for r in m["bundles"][0]["fairness"]["language"]["groups"]}
    assert {"en", "zh"} <= langs


@pytest.mark.shared
@pytest.mark.slow
def test_shared_image_data(shared_data: Path, tiny_image_bundle: Path, tmp_path: Path) -> None:
    rep = tmp_path / "rep"
    rc = _run([tiny_image_bundle, shared_data / "images", "--report", rep, "--bootstrap", "100",
               "--robustness-limit", "6", "--perturbations", "jpeg50,resize0.5"])  # fmt: skip
    assert rc == 0
    m = _load(rep)
    assert m["data"]["n_items"] == 100 and m["bundles"][0]["failures"]["count"] == 0
    gens = {r["group"] for r in m["bundles"][0]["slices"]["generator"]}
    assert gens == {"human", "gan", "diffusion1", "diffusion2", "diffusion3", "diffusion4"}
    doms = {r["group"] for r in m["bundles"][0]["fairness"]["domain"]["groups"]}
    assert doms == {"animals", "city", "food", "nature", "people"}


@pytest.mark.slow
def test_eval_imports_no_training_stack_and_import_aigc_stays_light(tiny_text_bundle: Path, tmp_path: Path) -> None:
    """`aigc eval` runs without torch, transformers, timm, scikit-learn or scipy; `import aigc` (and the report
    package itself) does not import matplotlib or tqdm: they load only when a report is made."""
    import subprocess
    import sys

    data = write_text_data(tmp_path / "d.jsonl", n=30, extra_bad_rows=False)
    code = f"""
import sys
import aigc, aigc.metrics, aigc.perturb, aigc.report, aigc.report.cli
light = sorted(m for m in sys.modules if m.split(".")[0] in ("matplotlib", "tqdm"))
print("LIGHT", light)
from aigc.cli import main
assert main(["eval", {str(tiny_text_bundle)!r}, {str(data)!r}, "--report", {str(tmp_path / "rep")!r}, "--bootstrap", "10",
             "--perturbations", "typos", "--no-progress"]) == 0
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"torch", "transformers", "timm", "datasets", "torchvision", "sklearn", "scipy"}})
print("HEAVY", heavy)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "LIGHT []" in r.stdout and "HEAVY []" in r.stdout


@pytest.mark.slow
def test_same_seed_same_report(tiny_text_bundle: Path, tmp_path: Path) -> None:
    """Sampling, bootstrap and perturbations are seeded: a rerun reproduces metrics.json (but its date)."""
    data = write_text_data(tmp_path / "d.jsonl", n=60)
    runs = []
    for k, seed in enumerate((5, 5, 6)):
        rep = tmp_path / f"rep{k}"
        assert _run([tiny_text_bundle, data, "--report", rep, "--bootstrap", "30", "--limit", "40", "--seed", seed,
                     "--perturbations", "typos,homoglyph,zero_width,whitespace"]) == 0  # fmt: skip
        m = _load(rep)
        m.pop("created")
        runs.append(m)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
