"""Whether an int8 variant can be trusted on this CPU.

ONNX Runtime multiplies int8 graphs as uint8 activations times int8 weights. On an x86 CPU with VNNI the
products are summed in 32 bits. On one with AVX2 and no VNNI they go through VPMADDUBSW, which adds two
products into 16 bits and saturates at 32,767: with weights in -127..127 (255 x 127 x 2 = 64,770) such a
graph scores differently there than on the machine whose scores fitted its calibration and thresholds.
Export now quantizes weights into -64..64 (``variants_eval.int8.weight_range``), which no kernel saturates;
a bundle made before that says nothing about its range, and on an AVX2-only CPU it gets a warning.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

__all__ = ["cpu_flags", "has_vnni", "int8_saturation_warning"]

_VNNI = ("avx512_vnni", "avx_vnni", "amx_int8")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str] | None:
    """The x86 feature flags of this CPU, or None where they cannot be read (not Linux, not x86)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "i386"):
        return None
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def has_vnni(flags: set[str]) -> bool:
    """Whether ``flags`` name an int8 dot-product unit that sums in 32 bits (VNNI, AVX-VNNI or AMX)."""
    return any(f in flags for f in _VNNI)


def int8_saturation_warning(spec: dict[str, Any], variant: str, flags: set[str] | None) -> str | None:
    """The warning for serving ``variant`` of the bundle ``spec`` on a CPU with ``flags``, or None.

    None when the variant is not int8, when the bundle records weights in -64..64, when the flags are
    unknown (another architecture or OS: nothing is claimed), or when the CPU has VNNI or no AVX2."""
    if variant != "int8" or flags is None:
        return None
    ev = (spec.get("variants_eval") or {}).get("int8") or {}
    if isinstance(ev, dict) and ev.get("weight_range") == 64:
        return None
    if "avx2" not in flags or has_vnni(flags):
        return None
    return (f"bundle {spec.get('name', '?')!r}: its int8 variant does not record that its weights lie in -64..64 "
            "(bundles exported before that change use -127..127). This CPU has AVX2 without VNNI, where ONNX "
            "Runtime saturates such products, so its scores can differ from those its calibration and thresholds "
            "were fitted on. Re-export the bundle with this aigc, or serve the fp32 variant")
