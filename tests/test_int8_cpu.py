"""The runtime's warning for int8 variants whose weights may saturate on an AVX2 CPU without VNNI."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aigc._int8_cpu import cpu_flags, int8_saturation_warning

AVX2 = {"fpu", "sse4_2", "avx", "avx2", "fma"}
OLD = {"name": "old", "variants_eval": {"fp32": {"auroc": 0.9}, "int8": {"auroc": 0.9, "auroc_delta": 0.0}}}
NEW = {"name": "new", "variants_eval": {"int8": {"auroc": 0.9, "weight_range": 64}}}


def test_warns_only_for_full_range_int8_on_avx2_without_vnni() -> None:
    msg = int8_saturation_warning(OLD, "int8", AVX2)
    assert msg and "'old'" in msg and "AVX2 without VNNI" in msg and "fp32" in msg
    assert int8_saturation_warning(OLD, "int8", AVX2 | {"avx512_vnni"}) is None  # VNNI sums in 32 bits
    assert int8_saturation_warning(OLD, "int8", AVX2 | {"avx_vnni"}) is None
    assert int8_saturation_warning(OLD, "int8", {"sse4_2"}) is None  # no AVX2: another kernel
    assert int8_saturation_warning(OLD, "int8", None) is None  # flags unknown: nothing is claimed
    assert int8_saturation_warning(OLD, "fp32", AVX2) is None
    assert int8_saturation_warning(NEW, "int8", AVX2) is None  # -64..64 saturates on no kernel
    assert int8_saturation_warning({"name": "bare"}, "int8", AVX2)  # nothing recorded at all


def test_cpu_flags_reads_the_flags_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx avx2 fma\n\nprocessor\t: 1\n")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert cpu_flags(info) == {"fpu", "avx", "avx2", "fma"}
    assert cpu_flags(tmp_path / "missing") is None
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert cpu_flags(info) is None


@pytest.mark.parametrize("recorded", [False, True])
def test_detector_logs_the_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                   recorded: bool) -> None:
    pytest.importorskip("onnx")
    from _bundles import base_spec, build_bundle

    import aigc
    import aigc._detector as det_mod

    model = {**base_spec("text")["model"], "variants": {"fp32": "model.onnx", "int8": "model.onnx"}}
    ev = {"int8": {"auroc": 0.9, "auroc_delta": 0.0, **({"weight_range": 64} if recorded else {})}}
    b = build_bundle(tmp_path / "b", "text", {"model": model, "variants_eval": ev})
    monkeypatch.setattr(det_mod, "cpu_flags", lambda: AVX2)
    with caplog.at_level(logging.WARNING, logger="aigc"):
        aigc.load(b, providers="cpu", variant="int8")
        aigc.load(b, providers="cpu", variant="fp32")
    assert ("AVX2 without VNNI" in caplog.text) is not recorded
    assert caplog.text.count("AVX2 without VNNI") <= 1  # fp32 is never warned about
