"""Findings -> one verdict, and the decision policies that combine a verdict with the detector's label.

Verdicts, strongest first (the first that applies wins):

- ``invalid_credentials``: a C2PA manifest is present but does not verify (bad signature, the asset was changed
  after signing, or the store is malformed).
- ``declared_ai``: the file declares it was made by generative AI (IPTC/C2PA ``trainedAlgorithmicMedia``, a
  generator's own metadata such as A1111 ``parameters`` or ComfyUI ``prompt``, a generator named as software).
- ``edited_with_ai``: the file declares an edit or composite with generated elements
  (``compositeWithTrainedAlgorithmicMedia``, an AI source type on a non-creating C2PA action, an AI ingredient).
- ``declared_capture``: the file declares a camera or film capture (``digitalCapture``, ...), and nothing above.
- ``none``: no declaration. This means nothing: most platforms strip metadata on upload. With a ``status`` other
  than ``read`` (a format whose metadata was read only in part, or a file that was not read at all) the decision's
  ``reason`` says so: it never reads as a file without metadata.

The policies never change the detector's probability or its label: they add a *final* label beside them.
"""

from __future__ import annotations

from typing import Any

from ._types import Finding

__all__ = ["DEFAULT_POLICY", "POLICIES", "VERDICTS", "check_policy", "decide", "summarize"]

VERDICTS = ("invalid_credentials", "declared_ai", "edited_with_ai", "declared_capture", "none")
_BY_SIGNAL = {"invalid": "invalid_credentials", "ai": "declared_ai", "ai_edit": "edited_with_ai", "capture": "declared_capture"}

POLICIES: dict[str, str] = {
    "detector_only": "the final label is the detector's label; provenance is shown beside it and changes nothing",
    "declared_ai_first": "declared_ai and edited_with_ai make the final label AI; invalid_credentials and a "
    "declared_capture that contradicts an AI score keep the detector's label and ask for review; otherwise the "
    "detector's label",
    "trusted_capture_clears": "as declared_ai_first, and a declared_capture from a C2PA manifest that is valid "
    "(signed by a trusted certificate) makes the final label human",
}
"""Decision policies by name (the README states each one)."""
DEFAULT_POLICY = "declared_ai_first"


def check_policy(policy: str | None, where: str) -> None:
    """ValueError naming ``where`` (the setting the policy came from) when ``policy`` is not one of
    :data:`POLICIES`; None (no policy chosen) passes."""
    if policy is not None and policy not in POLICIES:
        raise ValueError(f"{where}: provenance policy {policy!r} is unknown; expected one of {sorted(POLICIES)}")


def summarize(findings: list[Finding], c2pa_state: str | None) -> dict[str, Any]:
    """{verdict, basis, conflict}: the verdict (see the module docstring), which kinds of block carried its
    signal (``basis``, e.g. ``["c2pa:valid", "xmp"]``), and whether both AI generation and a capture were declared."""
    signals = {f.signal for f in findings if f.signal}
    verdict = next((_BY_SIGNAL[s] for s in ("invalid", "ai", "ai_edit", "capture") if s in signals), "none")
    winner = next((s for s, v in _BY_SIGNAL.items() if v == verdict), None)
    basis = sorted({f"c2pa:{c2pa_state}" if f.source == "c2pa" else f.source for f in findings if winner and f.signal == winner})
    conflict = "capture" in signals and "ai" in signals
    return {"verdict": verdict, "basis": basis, "conflict": conflict}


def decide(summary: dict[str, Any], detector_label: str | None, labels: list[str], policy: str) -> dict[str, Any]:
    """The final label under ``policy`` from the provenance summary and the detector's label (None when the item
    could not be scored). ``labels`` is the bundle's [human, ai]. Returns {policy, label, reason, review}."""
    check_policy(policy, "decide")
    human, ai = labels[0], labels[1]
    verdict = summary["verdict"]
    if policy == "detector_only" or verdict == "none":
        status = summary.get("status", "read")
        reason = "detector" if status == "read" or policy == "detector_only" else \
            "detector; provenance not read" if status == "not_read" else "detector; provenance partly read (no C2PA in this format)"  # fmt: skip
        return {"policy": policy, "label": detector_label, "reason": reason, "review": False}
    if verdict in ("declared_ai", "edited_with_ai"):
        return {"policy": policy, "label": ai, "reason": verdict, "review": detector_label != ai}
    if verdict == "invalid_credentials":
        return {"policy": policy, "label": detector_label, "reason": "detector; credentials do not verify", "review": True}
    trusted = "c2pa:valid" in summary.get("basis", [])
    if policy == "trusted_capture_clears" and trusted:
        return {"policy": policy, "label": human, "reason": "declared_capture (trusted C2PA)", "review": detector_label == ai}
    return {"policy": policy, "label": detector_label, "reason": "detector; declared_capture does not override it",
            "review": detector_label == ai}  # fmt: skip
