"""Small promises of the packaging and the messages: the light runtime install, the report extra and its
error, make bench, README paths a clone has, the GPU install hint, list-models by modality."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_runtime_install_is_light_and_make_setup_installs_the_report_extra() -> None:
    proj = _pyproject()["project"]
    assert not any(d.startswith("matplotlib") for d in proj["dependencies"])
    assert any(d.startswith("matplotlib") for d in proj["optional-dependencies"]["report"])
    setup = re.search(r"pip install -q -e '\.\[([a-z,-]+)\]'", (ROOT / "Makefile").read_text()).group(1).split(",")
    assert "report" in setup


def test_eval_without_matplotlib_names_the_extra(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from aigc.cli import main\n"
            f"raise SystemExit(main(['eval', 'b', 'd', '--report', {str(tmp_path / 'rep')!r}]))")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "'report' extra" in r.stderr and "pip install 'aigc-sentinel[report]'" in r.stderr
    assert not (tmp_path / "rep").exists()


def test_make_bench_runs_an_existing_script() -> None:
    target = re.search(r"^bench:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    script = re.search(r"(bench/\S+\.py)", target).group(1)
    assert (ROOT / script).is_file()
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import run as bench_run
    finally:
        sys.path.pop(0)
    assert all((ROOT / "bench" / s).is_file() for s, _, _ in bench_run.QUICK.values())


def test_readme_names_no_path_outside_the_repository() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "../shared" not in text
    for link in re.findall(r"\]\(([^)#]+)\)", text):  # relative markdown links resolve inside the clone
        if not link.startswith(("http://", "https://", "mailto:")):
            assert (ROOT / link).exists(), link


def test_gpu_hint_matches_the_readme(tmp_path: Path) -> None:
    import onnxruntime as ort

    from aigc._session import GPU_INSTALL_HINT, ProviderError, create_session
    from tests._bundles import build_bundle

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert GPU_INSTALL_HINT in readme.split("## Install", 1)[1].split("\n## ", 1)[0]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here: no error to read")
    b = build_bundle(tmp_path / "b", "image")
    with pytest.raises(ProviderError) as e:
        create_session(b / "model.onnx", "cuda")
    assert GPU_INSTALL_HINT in str(e.value) and "[gpu]" not in str(e.value)


def test_list_models_shows_only_presets_of_the_modality(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from aigc.cli import main
    from training.cli_list import PRESET_MODALITY
    from training.weights import list_presets

    assert set(list_presets()) <= set(PRESET_MODALITY)  # a new preset needs its modality here

    assert main(["list-models", "--modality", "text"]) == 0
    text = capsys.readouterr().out.split("weights presets", 1)[1]
    assert "minilm-l6" in text and "efficientnet-lite0" not in text
    assert main(["list-models", "--modality", "image"]) == 0
    image = capsys.readouterr().out.split("weights presets", 1)[1]
    assert "efficientnet-lite0" in image and "minilm-l6" not in image
