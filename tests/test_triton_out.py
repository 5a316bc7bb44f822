"""aigc export-triton writes only inside REPO, under a plain model name, and replaces only a model folder it
wrote itself, by a rename: never the user's folders, never the bundle, never the old model on a failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aigc.cli import main


def _export(bundle: Path, out: Path, *extra: str) -> int:
    return main(["export-triton", str(bundle), "--out", str(out), *extra])


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_dotdot_name_deletes_nothing(tiny_image_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "parent" / "repo"
    repo.mkdir(parents=True)
    (tmp_path / "parent" / "precious.txt").write_text("precious")
    assert _export(tiny_image_bundle, repo, "--name", "..", "--overwrite") == 2
    assert "--name '..'" in capsys.readouterr().err
    assert (tmp_path / "parent" / "precious.txt").read_text() == "precious" and repo.is_dir()


@pytest.mark.parametrize("name", ["..", ".", "../escaped", "a/b", "/abs", 'my "model" v1', "a b", ".hidden", "-x",
                                  "", "x" * 129, "a\\b", "model\n"])
def test_bad_names_are_refused(tiny_image_bundle: Path, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "work" / "repo"
    assert _export(tiny_image_bundle, repo, f"--name={name}", "--overwrite") == 2
    assert "not a plain Triton model name" in capsys.readouterr().err
    assert not (tmp_path / "work").exists() and not (tmp_path / "escaped").exists() and not Path("/abs").exists()


def test_a_bundle_named_dot_is_refused_with_a_hint(tmp_path: Path, tiny_image_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnx")
    from _bundles import build_bundle

    dots = build_bundle(tmp_path / "bundles" / "dots", "image", {"name": "."})
    repo = tmp_path / "repo"
    assert _export(tiny_image_bundle, repo, "--name", "other") == 0
    before = _tree(repo)
    assert _export(dots, repo, "--overwrite") == 2
    assert "--name" in capsys.readouterr().err
    assert _tree(repo) == before and sorted(p.name for p in repo.iterdir()) == ["other"]
    assert _export(dots, repo, "--name", "dots") == 0 and (repo / "dots" / "config.pbtxt").is_file()


def test_overwrite_never_replaces_a_folder_it_did_not_write(tiny_image_bundle: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    repo = tmp_path / "repo"
    (repo / "notes").mkdir(parents=True)
    (repo / "notes" / "a.txt").write_text("mine")
    (repo / "notes" / "config.pbtxt").write_text('name: "notes"\n')  # a hand-made model folder is not ours either
    assert _export(tiny_image_bundle, repo, "--name", "notes", "--overwrite") == 2
    assert "only a model folder written by aigc export-triton is ever replaced" in capsys.readouterr().err
    assert (repo / "notes" / "a.txt").read_text() == "mine" and sorted(p.name for p in (repo / "notes").iterdir()) == ["a.txt", "config.pbtxt"]
    (repo / "file").write_text("mine")
    assert _export(tiny_image_bundle, repo, "--name", "file", "--overwrite") == 2
    assert (repo / "file").read_text() == "mine"


def test_overwrite_keeps_what_the_user_added_to_a_model(tiny_image_bundle: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert _export(tiny_image_bundle, repo, "--name", "m") == 0
    (repo / "m" / "2").mkdir()
    (repo / "m" / "2" / "model.onnx").write_bytes(b"user's version 2")
    assert _export(tiny_image_bundle, repo, "--name", "m", "--overwrite") == 2
    assert (repo / "m" / "2" / "model.onnx").read_bytes() == b"user's version 2"
    shutil.rmtree(repo / "m" / "2")
    (repo / "m" / "labels.txt").write_text("human\nai\n")
    assert _export(tiny_image_bundle, repo, "--name", "m", "--overwrite") == 2
    assert (repo / "m" / "labels.txt").is_file()


def test_overwrite_replaces_its_own_model_by_a_rename(tiny_text_bundle: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert _export(tiny_text_bundle, repo, "--name", "m", "--max-batch", "4") == 0
    assert _export(tiny_text_bundle, repo, "--name", "m", "--max-batch", "8") == 2  # no --overwrite
    assert "max_batch_size: 4" in (repo / "m" / "config.pbtxt").read_text()
    (repo / "m" / "__pycache__").mkdir()  # importing the client leaves this: still our folder
    assert _export(tiny_text_bundle, repo, "--name", "m", "--max-batch", "8", "--overwrite") == 0
    assert "max_batch_size: 8" in (repo / "m" / "config.pbtxt").read_text()
    assert sorted(p.name for p in repo.iterdir()) == ["m"]  # no temporary or old folder left


def test_a_failed_export_keeps_the_old_model(tiny_image_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aigc.triton as tri

    repo = tmp_path / "repo"
    assert _export(tiny_image_bundle, repo, "--name", "m") == 0
    before = _tree(repo)

    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tri.shutil, "copyfile", broken)
    assert _export(tiny_image_bundle, repo, "--name", "m", "--overwrite") == 2
    assert _tree(repo) == before and sorted(p.name for p in repo.iterdir()) == ["m"]


def test_empty_folder_is_filled_and_a_link_is_refused(tiny_image_bundle: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "m").mkdir(parents=True)
    assert _export(tiny_image_bundle, repo, "--name", "m") == 0 and (repo / "m" / "config.pbtxt").is_file()
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "x.txt").write_text("mine")
    (repo / "link").symlink_to(target)
    assert _export(tiny_image_bundle, repo, "--name", "link", "--overwrite") == 2
    assert (repo / "link").is_symlink() and (target / "x.txt").read_text() == "mine"


@pytest.mark.parametrize("where", ["is", "inside", "holds"])
def test_out_never_is_holds_or_lies_inside_the_bundle(tiny_image_bundle: Path, tmp_path: Path, where: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    bundle = tmp_path / "proj" / "b"
    shutil.copytree(tiny_image_bundle, bundle)
    before = _tree(bundle)
    out = {"is": bundle, "inside": bundle / "sub", "holds": tmp_path / "proj"}[where]
    assert _export(bundle, out, "--name", "m", "--overwrite") == 2
    assert "the bundle" in capsys.readouterr().err
    assert _tree(bundle) == before and sorted(p.name for p in (tmp_path / "proj").iterdir()) == ["b"]


def test_out_that_is_a_file_is_refused(tiny_image_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "repo"
    f.write_text("mine")
    assert _export(tiny_image_bundle, f, "--name", "m") == 2
    assert "not a folder" in capsys.readouterr().err and f.read_text() == "mine"


def test_config_quotes_and_refuses_names(tiny_image_bundle: Path) -> None:
    from aigc._bundle import open_bundle
    from aigc.triton import TritonExportError, _q, config_pbtxt

    assert _q('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    with pytest.raises(TritonExportError, match="not a plain Triton model name"):
        config_pbtxt(open_bundle(tiny_image_bundle), 'my "model"')


def test_a_model_whose_version_is_a_file_is_not_ours(tiny_image_bundle: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert _export(tiny_image_bundle, repo, "--name", "m") == 0
    shutil.rmtree(repo / "m" / "1")
    (repo / "m" / "1").write_text("mine")
    assert _export(tiny_image_bundle, repo, "--name", "m", "--overwrite") == 2
    assert (repo / "m" / "1").read_text() == "mine"


def test_batching_settings_triton_cannot_load_are_refused(tiny_image_bundle: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """A negative --max-delay-us had written a config.pbtxt that does not parse (the field is unsigned), and
    export_triton(max_batch=0) one whose dims lack the batch axis that max_batch_size 0 makes part of them."""
    from aigc.triton import TritonExportError, export_triton

    assert _export(tiny_image_bundle, tmp_path / "repo", "--max-delay-us", "-5") == 2
    assert "--max-delay-us: found -5, expected >= 0" in capsys.readouterr().err
    with pytest.raises(TritonExportError, match="max_batch: found 0, expected >= 1"):
        export_triton(tiny_image_bundle, tmp_path / "repo", max_batch=0)
    assert not (tmp_path / "repo").exists()
