"""The GGUF weight presets: joining part files, the size and sha256 check, and preset name resolution.

No real weights are read: the parts are small files the test writes, under a spec made for them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

pytest.importorskip("torch")

import _train_helpers  # noqa: F401  (puts this checkout's training package first)

from training.weights import GGUF_LMS, PRESETS, GgufLM, join_gguf, resolve_preset

pytestmark = pytest.mark.train


def _parts(tmp_path: Path) -> tuple[list[Path], bytes]:
    chunks = [bytes([i]) * (1000 + 7 * i) for i in range(3)]
    paths = []
    for i, c in enumerate(chunks):
        p = tmp_path / f"part{i}.bin"
        p.write_bytes(c)
        paths.append(p)
    return paths, b"".join(chunks)


def _spec(data: bytes, sha: str | None = None) -> GgufLM:
    return GgufLM("toy", "toy.gguf", len(data), sha or hashlib.sha256(data).hexdigest(), ("toy-part==1",),
                  parts=("toy_part1", "toy_part2", "toy_part3"))


def test_join_in_order_and_verify(tmp_path: Path) -> None:
    paths, data = _parts(tmp_path)
    out = join_gguf(_spec(data), tmp_path / "cache" / "toy.gguf", lambda s: paths)
    assert out.read_bytes() == data
    assert (tmp_path / "cache" / "toy.gguf.sha256-ok").read_text().strip() == hashlib.sha256(data).hexdigest()
    # a second call reuses the verified file without reading the parts
    assert join_gguf(_spec(data), out, lambda s: []) == out


def test_wrong_order_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    paths, data = _parts(tmp_path)
    out = tmp_path / "cache" / "toy.gguf"
    with pytest.raises(ValueError, match="sha256") as e:
        join_gguf(_spec(data), out, lambda s: list(reversed(paths)))
    assert "toy-part==1" in str(e.value)  # names the pinned wheels to reinstall
    assert not out.exists()
    assert not list(out.parent.glob(".*part"))


def test_bad_digest_is_an_error_even_when_size_matches(tmp_path: Path) -> None:
    paths, data = _parts(tmp_path)
    with pytest.raises(ValueError, match="expected"):
        join_gguf(_spec(data, sha="0" * 64), tmp_path / "x.gguf", lambda s: paths)


def test_presets_are_pinned_and_listed() -> None:
    for name, spec in GGUF_LMS.items():
        assert name in PRESETS
        assert all("==" in p for p in spec.packages), spec.packages
        assert len(spec.sha256) == 64 and spec.size > 100_000_000
    assert len(GGUF_LMS["qwen2.5-coder-1.5b"].parts) == 22
    assert len(GGUF_LMS["qwen2.5-coder-0.5b"].parts) == 6


def test_missing_wheels_name_the_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import training.weights as w

    monkeypatch.setitem(w.GGUF_LMS, "toy", GgufLM("toy", "toy.gguf", 1, "0" * 64, ("toy-part1==1",),
                                                  parts=("no_such_module_for_aigc_tests",)))
    with pytest.raises(FileNotFoundError, match="make weights-lm"):
        w.gguf_lm_path("toy", cache_dir=tmp_path)


def test_unknown_preset_suggests() -> None:
    with pytest.raises(ValueError, match="qwen2.5-coder-0.5b"):
        resolve_preset("preset:qwen2.5-coder-0.5")
