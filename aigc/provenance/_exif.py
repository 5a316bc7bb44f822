"""EXIF (TIFF IFD) blocks -> findings: make, model, software, and generator parameters in UserComment.

A small bounded parser: every offset is checked against the block, each IFD is visited once, and at most
``Limits.exif_entries`` entries are read, so a hostile block costs little and never loops.
"""

from __future__ import annotations

import struct

from ._generators import a1111_parameters, creator_tool_signal
from ._types import Finding, Limits, clip

__all__ = ["exif_findings", "read_exif_tags"]

_ASCII_TAGS = {0x010F: "Make", 0x0110: "Model", 0x0131: "Software", 0x010E: "ImageDescription", 0x013B: "Artist"}
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


class ExifError(ValueError):
    pass


def _user_comment(raw: bytes) -> str:
    code, body = raw[:8], raw[8:]
    if code.startswith(b"UNICODE"):
        # A1111 writes UTF-16 big-endian whatever the TIFF byte order: keep the reading with more ASCII.
        texts = [body.decode(enc, "replace") for enc in ("utf-16-be", "utf-16-le")]
        return max(texts, key=lambda t: sum(c.isascii() for c in t)).rstrip("\x00")
    return body.decode("utf-8" if code.startswith(b"ASCII") or not code.strip(b"\x00") else "latin-1", "replace").rstrip("\x00")


def read_exif_tags(block: bytes, limits: Limits) -> dict[str, str]:
    """{Make, Model, Software, ImageDescription, Artist, UserComment} found in a TIFF-structured EXIF block."""
    if len(block) < 8 or block[:4] not in (b"II*\x00", b"MM\x00*"):
        raise ExifError("not a TIFF header (expected II*\\0 or MM\\0*)")
    little = block[:2] == b"II"
    e = "<" if little else ">"
    (ifd,) = struct.unpack(e + "I", block[4:8])
    todo, seen, tags, budget = [ifd], set(), {}, limits.exif_entries
    while todo:
        off = todo.pop()
        if off in seen or off + 2 > len(block):
            if off not in seen:
                raise ExifError(f"IFD offset {off} is outside the {len(block)}-byte block")
            continue
        seen.add(off)
        (n,) = struct.unpack(e + "H", block[off : off + 2])
        if off + 2 + 12 * n > len(block):
            raise ExifError(f"IFD at {off} declares {n} entries, more than the block holds (truncated)")
        for k in range(n):
            budget -= 1
            if budget < 0:
                raise ExifError(f"more than {limits.exif_entries} IFD entries")
            tag, typ, count, val = struct.unpack(e + "HHI4s", block[off + 2 + 12 * k : off + 14 + 12 * k])
            size = _TYPE_SIZE.get(typ, 1) * count
            if tag == _EXIF_IFD and typ in (4, 13):
                todo.append(struct.unpack(e + "I", val)[0])
                continue
            if tag not in _ASCII_TAGS and tag != _USER_COMMENT:
                continue
            if size <= 4:
                raw = val[:size]
            else:
                (p,) = struct.unpack(e + "I", val)
                if p + size > len(block):
                    raise ExifError(f"tag 0x{tag:04X} points past the end of the block")
                raw = block[p : p + size]
            if tag == _USER_COMMENT:
                tags["UserComment"] = _user_comment(raw)
            else:
                tags[_ASCII_TAGS[tag]] = raw.split(b"\x00", 1)[0].decode("utf-8", "replace").strip()
    return tags


def exif_findings(blocks: list[tuple[str, bytes]], limits: Limits) -> list[Finding]:
    """Findings of every EXIF block; a malformed block becomes one finding with ``error`` set."""
    out: list[Finding] = []
    for where, block in blocks:
        try:
            tags = read_exif_tags(block, limits)
        except (ExifError, struct.error) as e:
            out.append(Finding("exif", where, "", "", error=f"malformed EXIF ({clip(str(e), 160)})"))
            continue
        for name in ("Make", "Model", "Software", "Artist"):
            if tags.get(name):
                sig, note = creator_tool_signal(tags[name]) if name in ("Software", "Artist") else (None, None)
                out.append(Finding("exif", where, name, clip(tags[name]), sig, note))
        for name in ("UserComment", "ImageDescription"):
            text = tags.get(name, "")
            if text and a1111_parameters(text):
                out.append(Finding("exif", where, name, clip(text), "ai", "AUTOMATIC1111-style generation parameters"))
    return out
