"""C2PA manifest stores -> findings, through c2pa-python (imported lazily; the ``provenance`` extra).

Validation never touches the network: remote manifests, OCSP and trust lists are not fetched. The state of a
store is one of ``valid`` (signature intact, signer chains to a configured trust anchor),
``untrusted_certificate`` (signature and content intact, signer not trusted here), ``invalid_signature``
(the claim signature or the signing credential fails), ``tampered_asset`` (the asset's bytes no longer match
the signed hash), ``invalid_manifest`` (signature and asset intact, but the manifest breaks a rule of the
specification, e.g. an action that names no ingredient), ``malformed`` (the store cannot be parsed), ``remote_not_fetched`` (a remote manifest is
referenced) or ``not_validated`` (c2pa-python is not installed, or validation was turned off).
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from ._types import Finding, ProvenanceOptions, clip, source_type_signal

__all__ = ["C2PA_STATES", "c2pa_findings", "c2pa_state"]

C2PA_STATES = ("valid", "untrusted_certificate", "invalid_signature", "tampered_asset", "invalid_manifest", "malformed",
               "remote_not_fetched", "not_validated")  # fmt: skip
_COUNTED = {"valid", "untrusted_certificate"}
_INVALID = {"invalid_signature", "tampered_asset", "invalid_manifest", "malformed"}
_ASSET_HASH_MISMATCH = ("assertion.dataHash.mismatch", "assertion.boxesHash.mismatch", "assertion.bmffHash.mismatch",
                        "assertion.collectionHash.mismatch")  # fmt: skip
_MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_CREATE_ACTIONS = {"c2pa.created", "c2pa.opened"}
_MAX_DEPTH = 4

_contexts: dict[str | None, Any] = {}
_lock = threading.Lock()


def _context(anchors: str | None) -> Any:
    """One c2pa Context per trust-anchor set: no remote manifests, no OCSP, trust checked."""
    import c2pa

    with _lock:
        ctx = _contexts.get(anchors)
        if ctx is None:
            settings: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": True}}
            if anchors:
                settings["trust"] = {"trust_anchors": anchors}
            ctx = _contexts[anchors] = c2pa.Context(c2pa.Settings.from_dict(settings))
        return ctx


def _failures(store: dict[str, Any]) -> list[str]:
    """The failure codes of the active manifest's validation (legacy ``validation_status`` and ``validation_results``)."""
    fails = [str(s.get("code")) for s in store.get("validation_status") or [] if isinstance(s, dict)]
    act = (store.get("validation_results") or {}).get("activeManifest") or {}
    fails += [str(s.get("code")) for s in act.get("failure") or [] if isinstance(s, dict)]
    return sorted(set(fails))


def c2pa_state(store: dict[str, Any]) -> tuple[str, list[str]]:
    """(state, failure codes) of a manifest store read by c2pa-python (see the module docstring)."""
    state = str(store.get("validation_state") or "")
    fails = _failures(store)
    if any(c in _ASSET_HASH_MISMATCH for c in fails):
        return "tampered_asset", fails
    if state == "Trusted":
        return "valid", fails
    sig = ("claimSignature.", "assertion.hashedURI.mismatch", "signingCredential.invalid", "signingCredential.revoked",
           "signingCredential.expired", "timeStamp.mismatch")  # fmt: skip
    if any(c.startswith(sig) for c in fails):
        return "invalid_signature", fails
    if state == "Invalid":
        return "invalid_manifest", fails
    return "untrusted_certificate", fails


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for a in manifest.get("assertions") or []:
        if isinstance(a, dict) and str(a.get("label", "")).startswith("c2pa.actions"):
            out.extend(x for x in (a.get("data") or {}).get("actions") or [] if isinstance(x, dict))
    return out[:200]


def _agent(a: dict[str, Any]) -> str:
    ag = a.get("softwareAgent")
    return str(ag.get("name", "")) if isinstance(ag, dict) else str(ag or "")


def _action_signal(a: dict[str, Any]) -> str | None:
    sig = source_type_signal(str(a.get("digitalSourceType") or ""))
    created = a.get("action") in _CREATE_ACTIONS
    if sig == "ai":
        return "ai" if created else "ai_edit"
    if sig == "capture":
        return "capture" if created else None
    return sig


def _manifest_signal(store: dict[str, Any], label: str | None, depth: int) -> str | None:
    """The strongest signal a manifest (with its ingredients) declares: ai > ai_edit > capture."""
    man = (store.get("manifests") or {}).get(label) if label else None
    if not isinstance(man, dict) or depth > _MAX_DEPTH:
        return None
    sigs = {_action_signal(a) for a in _actions(man)}
    for ing in man.get("ingredients") or []:
        if isinstance(ing, dict):
            s = _manifest_signal(store, ing.get("active_manifest"), depth + 1)
            sigs.add(s if ing.get("relationship") == "parentOf" else "ai_edit" if s in ("ai", "ai_edit") else None)
    return next((s for s in ("ai", "ai_edit", "capture") if s in sigs), None)


def _manifest_findings(store: dict[str, Any], where: str, state: str) -> list[Finding]:
    label = store.get("active_manifest")
    man = (store.get("manifests") or {}).get(label) or {}
    counted = state in _COUNTED
    skip = None if counted else f"not counted: credentials are {state}"
    out: list[Finding] = []
    for k, a in enumerate(_actions(man)):
        dst = str(a.get("digitalSourceType") or "")
        value = " ".join(x for x in (str(a.get("action", "")), f"digitalSourceType={dst}" if dst else "",
                                     f"softwareAgent={_agent(a)}" if _agent(a) else "") if x)  # fmt: skip
        sig = _action_signal(a)
        out.append(Finding("c2pa", where, f"{label}/c2pa.actions[{k}]", clip(value), sig if counted else None, skip if sig else None))
    for k, ing in enumerate(man.get("ingredients") or []):
        if not isinstance(ing, dict):
            continue
        s = _manifest_signal(store, ing.get("active_manifest"), 1)
        rel = str(ing.get("relationship", ""))
        sig = s if rel == "parentOf" else "ai_edit" if s in ("ai", "ai_edit") else None
        value = f"{rel} {ing.get('title', '')}".strip() + (f" (its manifest declares {s})" if s else "")
        out.append(Finding("c2pa", where, f"{label}/ingredients[{k}]", clip(value), sig if counted else None, skip if sig else None))
    return out


def _summary_finding(store: dict[str, Any], where: str, state: str, fails: list[str]) -> Finding:
    label = store.get("active_manifest")
    man = (store.get("manifests") or {}).get(label) or {}
    si = man.get("signature_info") or {}
    gen = man.get("claim_generator") or ", ".join(str(g.get("name", "")) for g in man.get("claim_generator_info") or [] if isinstance(g, dict))
    signer = " / ".join(str(si[k]) for k in ("issuer", "common_name") if si.get(k))
    note = "; ".join(x for x in (f"signer: {signer}" if signer else "", f"claim generator: {gen}" if gen else "",
                                 f"failures: {', '.join(fails[:8])}" if fails else "") if x)  # fmt: skip
    return Finding("c2pa", where, "validation_state", state, "invalid" if state in _INVALID else None, clip(note) or None)


def _not_a_store(e: Exception, data: bytes) -> bool:
    """True when c2pa-python found no manifest store (``ManifestNotFound``) and the file holds no C2PA label or
    UUID either: JUMBF (or an APP11 segment) of something else, not credentials that fail to verify. A store
    that is present but broken keeps ``malformed``."""
    not_found = type(e).__name__.endswith("ManifestNotFound") or str(e).startswith("ManifestNotFound")
    return not_found and b"c2pa" not in data


def c2pa_findings(data: bytes, fmt: str, where: str, opts: ProvenanceOptions) -> tuple[list[Finding], dict[str, Any] | None]:
    """Findings of the C2PA store in ``data`` and a summary ({state, signer, claim_generator, failures}); the
    summary is None when the JUMBF data is not a C2PA manifest store (one finding with ``error``, and no signal,
    says so: it was skipped, it is not credentials that fail to verify)."""
    if not opts.c2pa:
        return [Finding("c2pa", where, "validation_state", "not_validated", None, "C2PA validation turned off")], {"state": "not_validated"}
    try:
        import c2pa
    except ImportError:
        note = "c2pa-python is not installed (pip install 'aigc-sentinel[provenance]'); the manifest is not validated"
        return [Finding("c2pa", where, "validation_state", "not_validated", None, note)], {"state": "not_validated"}
    try:
        reader = c2pa.Reader(_MIME.get(fmt, ""), io.BytesIO(data), None, _context(opts.anchors_pem()))
        with reader:
            store = json.loads(reader.json())
    except Exception as e:  # any failure of a hostile store is a finding, never a crash
        err = f"{type(e).__name__}: {clip(str(e), 200)}"
        if isinstance(e, c2pa.C2paError) and str(e).startswith(("Remote", "RemoteManifest")):
            note = f"remote manifest referenced; not fetched (no network): {clip(str(e), 200)}"
            return [Finding("c2pa", where, "validation_state", "remote_not_fetched", None, note)], {"state": "remote_not_fetched"}
        if _not_a_store(e, data):
            why = f"JUMBF data that is not a C2PA manifest store ({err}); skipped, not counted as credentials"
            return [Finding("c2pa", where, "jumbf", "", error=why)], None
        return [Finding("c2pa", where, "validation_state", "malformed", "invalid", f"manifest store cannot be read ({err})")], {
            "state": "malformed", "failures": [err]}  # fmt: skip
    state, fails = c2pa_state(store)
    head = _summary_finding(store, where, state, fails)
    man = (store.get("manifests") or {}).get(store.get("active_manifest")) or {}
    summary = {"state": state, "active_manifest": store.get("active_manifest"), "failures": fails,
               "signer": (man.get("signature_info") or {}).get("common_name"),
               "claim_generator": man.get("claim_generator") or [g.get("name") for g in man.get("claim_generator_info") or [] if isinstance(g, dict)]}  # fmt: skip
    return [head, *_manifest_findings(store, where, state)], summary
