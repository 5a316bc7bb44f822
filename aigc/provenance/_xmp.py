"""XMP packets -> findings: IPTC digital source type, creator tool, a remote C2PA reference, China's TC260 label.

Fields are matched by namespace URI, never by prefix (Exiv2 writes ``iptcExt:``, Adobe ``Iptc4xmpExt:``).
A packet with a DOCTYPE or entity declaration is refused unread (entity expansion, external entities).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from ._generators import creator_tool_signal
from ._types import Finding, clip, source_type_signal

__all__ = ["xmp_findings"]

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_XMP = "http://ns.adobe.com/xap/1.0/"
_DCTERMS = "http://purl.org/dc/terms/"
_TC260 = "http://www.tc260.org.cn/ns/AIGC/1.0/"

# (namespace, local name, field name shown)
_FIELDS = [
    (_IPTC_EXT, "DigitalSourceType", "Iptc4xmpExt:DigitalSourceType"),
    (_IPTC_EXT, "AISystemUsed", "Iptc4xmpExt:AISystemUsed"),
    (_XMP, "CreatorTool", "xmp:CreatorTool"),
    (_DCTERMS, "provenance", "dcterms:provenance"),
    (_TC260, "AIGC", "TC260:AIGC"),
]


def _values(root: ET.Element, ns: str, local: str) -> Iterator[str]:
    """Values of a property written as an attribute, an element's text, an rdf:resource or rdf:li items."""
    tag = f"{{{ns}}}{local}"
    for el in root.iter():
        if tag in el.attrib:
            yield el.attrib[tag]
        if el.tag == tag:
            res = el.attrib.get(f"{{{_RDF}}}resource")
            if res:
                yield res
            lis = [li.text.strip() for li in el.iter(f"{{{_RDF}}}li") if li.text and li.text.strip()]
            if lis:
                yield from lis
            elif el.text and el.text.strip():
                yield el.text.strip()


def _packet(raw: bytes) -> bytes:
    """The x:xmpmeta (or bare rdf:RDF) element of a packet, without the xpacket wrapper."""
    start = raw.find(b"<x:xmpmeta")
    if start < 0:
        start = raw.find(b"<rdf:RDF")
    if start < 0:
        raise ValueError("no x:xmpmeta or rdf:RDF element")
    return raw[start:]


def _tc260_finding(where: str, value: str) -> Finding:
    try:
        obj = json.loads(value)
        label = str(obj.get("Label")) if isinstance(obj, dict) else None
    except (ValueError, RecursionError):
        label = None
    if label == "1":
        return Finding("xmp", where, "TC260:AIGC", clip(value), "ai", "Label 1: declared AI-generated (GB 45438-2025 implicit label)")
    return Finding("xmp", where, "TC260:AIGC", clip(value), None, "label present but not 1 (AI-generated); not counted")


def _one_packet(where: str, raw: bytes) -> list[Finding]:
    head = raw[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in raw.upper():
        return [Finding("xmp", where, "", "", error="XMP with a DOCTYPE or entity declaration; refused unread")]
    body = _packet(raw)
    end = body.rfind(b"</x:xmpmeta>")
    if end >= 0:
        body = body[: end + len(b"</x:xmpmeta>")]
    else:
        end = body.rfind(b"</rdf:RDF>")
        body = body[: end + len(b"</rdf:RDF>")] if end >= 0 else body
    root = ET.fromstring(body)
    out: list[Finding] = []
    for ns, local, name in _FIELDS:
        for v in _values(root, ns, local):
            if local == "DigitalSourceType":
                sig = source_type_signal(v)
                out.append(Finding("xmp", where, name, clip(v), sig, None if sig else "a source type that declares neither AI nor capture"))
            elif local == "AISystemUsed":
                out.append(Finding("xmp", where, name, clip(v), None, "names an AI system; counted only with a digital source type"))
            elif local == "CreatorTool":
                sig, note = creator_tool_signal(v)
                out.append(Finding("xmp", where, name, clip(v), sig, note))
            elif local == "provenance":
                remote = v.startswith(("http://", "https://"))
                out.append(Finding("xmp", where, name, clip(v), None,
                                   "remote C2PA manifest referenced; not fetched (no network)" if remote else "C2PA manifest reference"))  # fmt: skip
            else:
                out.append(_tc260_finding(where, v))
    return out


def xmp_findings(packets: list[tuple[str, bytes]]) -> list[Finding]:
    """Findings of every XMP packet; a packet that does not parse becomes one finding with ``error`` set."""
    out: list[Finding] = []
    for where, raw in packets:
        try:
            out.extend(_one_packet(where, raw))
        except (ET.ParseError, ValueError, RecursionError) as e:
            out.append(Finding("xmp", where, "", "", error=f"malformed XMP ({type(e).__name__}: {clip(str(e), 120)})"))
    return out
