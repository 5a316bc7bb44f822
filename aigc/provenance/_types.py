"""What a provenance reader returns: findings (one fact each, with where it came from) and limits."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "AI_EDIT_SOURCE_TYPES",
    "AI_SOURCE_TYPES",
    "CAPTURE_SOURCE_TYPES",
    "Finding",
    "Limits",
    "ProvenanceOptions",
    "clip",
    "source_type_signal",
]

IPTC_DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"

# IPTC digital source types (the last path segment of the IPTC NewsCodes URI), grouped by what they declare.
AI_SOURCE_TYPES = {"trainedAlgorithmicMedia"}
"""Made by a trained model (generative AI). Verdict ``declared_ai``."""
AI_EDIT_SOURCE_TYPES = {"compositeWithTrainedAlgorithmicMedia"}
"""A composite that includes generated elements (e.g. generative fill). Verdict ``edited_with_ai``."""
CAPTURE_SOURCE_TYPES = {"digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm", "compositeCapture"}
"""Recorded from the world by a camera or a scanner of film. Verdict ``declared_capture``."""


def source_type_signal(uri: str) -> str | None:
    """``"ai"``, ``"ai_edit"``, ``"capture"`` or None (a type that declares none of these, e.g. digitalCreation,
    algorithmicMedia, screenCapture, or an unknown value) for an IPTC/C2PA digital source type URI or bare term."""
    term = uri.strip().rstrip("/").rsplit("/", 1)[-1]
    if term in AI_SOURCE_TYPES:
        return "ai"
    if term in AI_EDIT_SOURCE_TYPES:
        return "ai_edit"
    if term in CAPTURE_SOURCE_TYPES:
        return "capture"
    return None


def clip(s: str, n: int = 300) -> str:
    """``s`` cut to ``n`` characters (with an ellipsis), control characters replaced: values come from files."""
    s = "".join(c if c.isprintable() or c in "\n\t" else "\ufffd" for c in s[: n + 1])
    return s if len(s) <= n else s[:n] + "…"


@dataclass
class Finding:
    """One fact read from a file.

    ``source``: the kind of block (``c2pa``, ``xmp``, ``exif``, ``png_text``, ``file``); ``block``: where in
    the file (e.g. ``JPEG APP1 XMP``, ``PNG iTXt 'parameters'``); ``field``: the field inside it; ``value``:
    the value as read (clipped). ``signal``: what it declares: ``ai``, ``ai_edit``, ``capture``, ``invalid``
    (credentials that do not verify) or None (informative only). ``error``: set when the block is malformed or
    was skipped (too large, unsupported); such a finding never carries a signal.
    """

    source: str
    block: str
    field: str
    value: str
    signal: str | None = None
    note: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Limits:
    """Size limits that keep hostile files cheap to read. A block over its limit becomes a finding with
    ``error`` set; it is not parsed."""

    file_bytes: int = 256 * 2**20
    """Files larger than this are not read at all."""
    xmp_bytes: int = 2 * 2**20
    """All XMP packets of a file together (JPEG allows extended XMP across segments)."""
    exif_bytes: int = 1 * 2**20
    text_bytes: int = 1 * 2**20
    """One PNG text chunk, compressed or not, and its decompressed text."""
    c2pa_bytes: int = 32 * 2**20
    """The C2PA manifest store (all its JUMBF segments together)."""
    blocks: int = 4096
    """Metadata blocks (JPEG segments, PNG or RIFF chunks) walked per file."""
    exif_entries: int = 2048
    """IFD entries read from an EXIF block in all."""


@dataclass(frozen=True)
class ProvenanceOptions:
    """How to read provenance.

    ``trust_anchors``: PEM text (or a path to a PEM file) of root certificates that C2PA signatures must chain to
    for the state ``valid``; without it every signer is ``untrusted_certificate``. Defaults to the file named by the
    ``AIGC_C2PA_TRUST_ANCHORS`` environment variable, if set. ``policy``: the decision policy (see
    :data:`aigc.provenance.POLICIES`); None uses the bundle's ``provenance_policy``, else ``declared_ai_first``.
    ``c2pa``: False skips C2PA validation (a manifest is still reported present). Nothing is ever fetched from
    the network: remote manifests, OCSP and timestamps are not requested.
    """

    trust_anchors: str | None = field(default_factory=lambda: os.environ.get("AIGC_C2PA_TRUST_ANCHORS") or None)
    policy: str | None = None
    c2pa: bool = True
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        ta = self.trust_anchors
        if ta and "-----BEGIN" not in ta:  # a path: read it now, so that a wrong path fails here, not per file
            try:
                with open(ta, encoding="ascii") as f:
                    pem = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise ValueError(f"trust anchors {ta!r}: cannot read a PEM file ({e})") from None
            if "-----BEGIN CERTIFICATE-----" not in pem:
                raise ValueError(f"trust anchors {ta!r}: no PEM certificate in the file")
            object.__setattr__(self, "trust_anchors", pem)

    def anchors_pem(self) -> str | None:
        """The trust anchors as PEM text (None: no anchor, every signer is untrusted)."""
        return self.trust_anchors or None
