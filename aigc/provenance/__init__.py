"""Provenance evidence read from an image file, kept apart from the detector's score.

>>> from aigc.provenance import read_provenance
>>> p = read_provenance("photo.jpg")            # doctest: +SKIP
>>> p.verdict, [f.to_dict() for f in p.findings]  # doctest: +SKIP

Blocks read: C2PA manifest stores (through c2pa-python, the ``provenance`` extra, imported only when a file has
a store), XMP (IPTC digital source type, creator tool, a remote-manifest reference), EXIF (make, model,
software, generator parameters) and PNG text chunks of known generators. Nothing is fetched from the network.
See README "Provenance" for what each verdict means and what it does not prove.
"""

from __future__ import annotations

from ._c2pa import C2PA_STATES
from ._generators import GENERATOR_CHUNKS
from ._reader import Provenance, attach_provenance, read_all, read_provenance, start_reading
from ._types import Finding, Limits, ProvenanceOptions
from ._verdict import DEFAULT_POLICY, POLICIES, VERDICTS, check_policy, decide, summarize

__all__ = [
    "C2PA_STATES",
    "DEFAULT_POLICY",
    "GENERATOR_CHUNKS",
    "POLICIES",
    "VERDICTS",
    "Finding",
    "Limits",
    "Provenance",
    "ProvenanceOptions",
    "attach_provenance",
    "check_policy",
    "decide",
    "read_all",
    "read_provenance",
    "start_reading",
    "summarize",
]
