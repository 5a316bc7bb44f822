"""What scoring one item gives back: :class:`Result` (public) and the Detector's raw per-item record."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Result"]


@dataclass
class Result:
    """The verdict on one item.

    ``probability`` is the calibrated P(ai) (NaN when the item failed); ``label`` is the bundle's AI label
    when ``probability >= threshold`` else its human label (None when the item failed); ``error`` says
    why an item could not be scored (None when scored); ``out_of_support`` is True when the item lies
    outside the data the thresholds were calibrated on (``support_reasons`` says how): route such
    items to human review rather than trusting the threshold.
    """

    probability: float
    label: str | None
    threshold_name: str
    threshold: float
    error: str | None = None
    out_of_support: bool = False
    support_reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    """Facts about the item (text: n_tokens, n_chars, script; image: width, height, format, jpeg_quality)."""
    provenance: dict[str, Any] | None = None
    """What the file declares about its origin, kept apart from ``probability`` and ``label`` (see
    :mod:`aigc.provenance`): verdict, findings and the policy's final label. None unless asked for."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "probability": None if math.isnan(self.probability) else round(float(self.probability), 6),
            "label": self.label,
            "threshold_name": self.threshold_name,
            "threshold": self.threshold,
            "out_of_support": self.out_of_support,
            "support_reasons": self.support_reasons,
            "warnings": self.warnings,
            "error": self.error,
            "meta": self.meta,
            **({"provenance": self.provenance} if self.provenance is not None else {}),
        }


@dataclass
class _Out:
    score: float = float("nan")
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
