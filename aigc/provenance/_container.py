"""Split a JPEG, PNG or WebP file into its metadata blocks, bounded and without decoding pixels.

Every walk stops at the first structural problem and says so in ``problems`` (a truncated segment, a length
that points past the end, too many blocks, a file cut before its end marker); what was found before it is kept.
Other image formats PIL opens (TIFF, HEIF/AVIF with pillow-heif, GIF, ...) give the EXIF and XMP that PIL
exposes, with ``status`` "partial" (C2PA is not read there); anything else is ``status`` "not_read" with a
problem that says why. A file is never reported as having no metadata when it was not read.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field

from ._types import Limits

__all__ = ["Blocks", "split_blocks"]

_XMP_SIG = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_EXT_SIG = b"http://ns.adobe.com/xmp/extension/\x00"
_EXIF_SIG = b"Exif\x00\x00"


@dataclass
class Blocks:
    """Metadata blocks of one file. Each entry names its place in the file (``where``)."""

    format: str = "unknown"
    exif: list[tuple[str, bytes]] = field(default_factory=list)
    xmp: list[tuple[str, bytes]] = field(default_factory=list)
    text: list[tuple[str, str, str]] = field(default_factory=list)
    """(where, key, value) of PNG text chunks."""
    c2pa: list[str] = field(default_factory=list)
    """Where C2PA/JUMBF data sits (its bytes are read by c2pa-python from the whole file)."""
    c2pa_bytes: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    """(where, what is wrong) for blocks that were skipped or broke the walk."""
    status: str = "read"
    """``read`` (every metadata block of a JPEG, PNG or WebP walked), ``partial`` (another image format: only
    the EXIF and XMP PIL exposes) or ``not_read`` (not an image this reader knows; ``problems`` says why)."""
    note: str | None = None
    """What was and was not read, for ``partial``."""


def split_blocks(data: bytes, limits: Limits) -> Blocks:
    """The metadata blocks of ``data`` (JPEG, PNG or WebP; other formats give ``format`` "unknown")."""
    if data[:2] == b"\xff\xd8":
        return _jpeg(data, limits)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png(data, limits)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data, limits)
    if not data:
        return Blocks(status="not_read", problems=[("file", "empty file (0 bytes); provenance not read")])
    return _other(data, limits)


_TIFF_SIGS = (b"II*\x00", b"MM\x00*")


def _other(data: bytes, limits: Limits) -> Blocks:
    """TIFF, HEIF/AVIF and the other formats PIL opens: the EXIF and XMP it exposes (status ``partial``)."""
    heif = data[4:8] == b"ftyp"
    if heif:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
        except ImportError:
            pass
    try:
        from PIL import Image

        img = Image.open(io.BytesIO(data))  # the header only: no pixels are decoded
        fmt, info = str(img.format or "unknown"), dict(img.info)
        img.close()
    except Exception:
        if heif:
            return Blocks("heif", status="not_read", problems=[("file", "HEIF/AVIF (ftyp box): provenance not read; PIL cannot "
                                                                "open it here (pillow-heif: pip install 'aigc-sentinel[formats]')")])  # fmt: skip
        return Blocks(status="not_read", problems=[("file", "not an image this reader knows (no JPEG, PNG, WebP, TIFF or "
                                                    "HEIF signature); provenance not read")])  # fmt: skip
    b = Blocks(fmt.lower(), status="partial",
               note=f"format {fmt}: only the EXIF and XMP that PIL exposes were read; C2PA is not read in this format")  # fmt: skip
    if data[:4] in _TIFF_SIGS:  # the file is one TIFF structure: its IFDs are the EXIF (the parser is bounded)
        b.exif.append((f"{fmt} IFD", data))
    elif isinstance(info.get("exif"), bytes):
        _add_exif(b, f"{fmt} Exif", info["exif"], limits)
    xmp = info.get("xmp")
    if isinstance(xmp, (bytes, str)) and xmp:
        _add_xmp(b, f"{fmt} XMP", xmp.encode("utf-8") if isinstance(xmp, str) else xmp, limits)
    return b


def _add_exif(b: Blocks, where: str, payload: bytes, limits: Limits) -> None:
    if payload.startswith(_EXIF_SIG):  # some writers keep JPEG's "Exif\0\0" in PNG eXIf / WebP EXIF
        payload = payload[len(_EXIF_SIG) :]
    if len(payload) > limits.exif_bytes:
        b.problems.append((where, f"EXIF block of {len(payload)} bytes is over the {limits.exif_bytes}-byte limit; not read"))
    else:
        b.exif.append((where, payload))


def _add_xmp(b: Blocks, where: str, payload: bytes, limits: Limits) -> None:
    if sum(len(x) for _, x in b.xmp) + len(payload) > limits.xmp_bytes:
        b.problems.append((where, f"XMP over the {limits.xmp_bytes}-byte limit; not read"))
    else:
        b.xmp.append((where, payload))


def _jpeg(data: bytes, limits: Limits) -> Blocks:
    b = Blocks("jpeg")
    ext_xmp: dict[bytes, dict[int, bytes]] = {}
    i, n, scan = 2, 0, False
    while i + 4 <= len(data):
        n += 1
        if n > limits.blocks:
            b.problems.append(("JPEG", f"more than {limits.blocks} segments; the rest is not read"))
            break
        if data[i] != 0xFF:
            b.problems.append((f"JPEG offset {i}", "expected a segment marker; the rest is not read"))
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no metadata segments follow in practice
            scan = True
            break
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        end = i + 2 + length
        if length < 2 or end > len(data):
            b.problems.append((f"JPEG APP{marker - 0xE0}" if 0xE0 <= marker <= 0xEF else f"JPEG segment 0x{marker:02X}",
                               f"length {length} runs past the end of the file (truncated)"))  # fmt: skip
            break
        payload = data[i + 4 : end]
        if marker == 0xE1 and payload.startswith(_EXIF_SIG):
            _add_exif(b, "JPEG APP1 Exif", payload[len(_EXIF_SIG) :], limits)
        elif marker == 0xE1 and payload.startswith(_XMP_SIG):
            _add_xmp(b, "JPEG APP1 XMP", payload[len(_XMP_SIG) :], limits)
        elif marker == 0xE1 and payload.startswith(_XMP_EXT_SIG) and len(payload) >= len(_XMP_EXT_SIG) + 40:
            body = payload[len(_XMP_EXT_SIG) :]
            guid, offset = body[:32], struct.unpack(">I", body[36:40])[0]
            ext_xmp.setdefault(guid, {})[offset] = body[40:]
        elif marker == 0xEB and payload[:2] == b"JP":  # APP11: JUMBF (C2PA)
            b.c2pa_bytes += len(payload)
            if not b.c2pa:
                b.c2pa.append("JPEG APP11 JUMBF")
        i = end
    if not scan and not b.problems:
        b.problems.append(("JPEG", "the file ends before the image data (truncated); the metadata before the cut was read"))
    elif scan and data.find(b"\xff\xd9", i) < 0:  # trailers after the end marker (motion photos) are fine
        b.problems.append(("JPEG", "no end-of-image marker: the image data is cut short (truncated); the metadata before it was read"))
    for guid, parts in ext_xmp.items():
        _add_xmp(b, f"JPEG APP1 extended XMP {guid[:8].decode('ascii', 'replace')}", b"".join(parts[k] for k in sorted(parts)), limits)
    return b


_PNG_TEXT = {b"tEXt", b"zTXt", b"iTXt"}


def _inflate(raw: bytes, limit: int) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(raw, limit + 1)
    if len(out) > limit:
        raise ValueError(f"decompresses to more than {limit} bytes")
    return out


def _png_text(ctype: bytes, body: bytes, limits: Limits) -> tuple[str, str]:
    """(key, text) of a tEXt, zTXt or iTXt chunk; ValueError when malformed."""
    key, sep, rest = body.partition(b"\x00")
    if not sep or not 1 <= len(key) <= 79:
        raise ValueError("no keyword terminator")
    k = key.decode("latin-1")
    if ctype == b"tEXt":
        return k, rest.decode("latin-1")
    if ctype == b"zTXt":
        if not rest or rest[0] != 0:
            raise ValueError("unknown compression method")
        return k, _inflate(rest[1:], limits.text_bytes).decode("latin-1")
    if len(rest) < 2:
        raise ValueError("truncated iTXt header")
    compressed, method, rest = rest[0], rest[1], rest[2:]
    _lang, s1, rest = rest.partition(b"\x00")
    _tkey, s2, text = rest.partition(b"\x00")
    if not (s1 and s2):
        raise ValueError("truncated iTXt header")
    if compressed:
        if method != 0:
            raise ValueError("unknown compression method")
        text = _inflate(text, limits.text_bytes)
    return k, text.decode("utf-8", "replace")


def _png(data: bytes, limits: Limits) -> Blocks:
    b = Blocks("png")
    i, n = 8, 0
    while i + 8 <= len(data):
        n += 1
        if n > limits.blocks:
            b.problems.append(("PNG", f"more than {limits.blocks} chunks; the rest is not read"))
            break
        length, ctype = struct.unpack(">I4s", data[i : i + 8])
        end = i + 12 + length
        name = ctype.decode("latin-1")
        if end > len(data):
            b.problems.append((f"PNG {name} chunk", f"length {length} runs past the end of the file (truncated)"))
            break
        body = data[i + 8 : i + 8 + length]
        if ctype in _PNG_TEXT:
            where = f"PNG {name}"
            if length > limits.text_bytes:
                b.problems.append((where, f"text chunk of {length} bytes is over the {limits.text_bytes}-byte limit; not read"))
            else:
                try:
                    key, text = _png_text(ctype, body, limits)
                except (ValueError, zlib.error) as e:
                    b.problems.append((where, f"malformed text chunk ({e})"))
                else:
                    if key == "XML:com.adobe.xmp":
                        _add_xmp(b, f"PNG {name} 'XML:com.adobe.xmp'", text.encode("utf-8"), limits)
                    else:
                        b.text.append((f"PNG {name} '{key}'", key, text))
        elif ctype == b"eXIf":
            _add_exif(b, "PNG eXIf", body, limits)
        elif ctype == b"caBX":
            b.c2pa_bytes += length
            b.c2pa.append("PNG caBX")
        elif ctype == b"IEND":
            break
        i = end
    else:
        if not b.problems:
            b.problems.append(("PNG", "no IEND chunk: the file is cut short (truncated); the chunks before the cut were read"))
    return b


def _webp(data: bytes, limits: Limits) -> Blocks:
    b = Blocks("webp")
    (riff_size,) = struct.unpack("<I", data[4:8])
    stop = min(len(data), 8 + riff_size)
    i, n = 12, 0
    while i + 8 <= stop:
        n += 1
        if n > limits.blocks:
            b.problems.append(("WebP", f"more than {limits.blocks} chunks; the rest is not read"))
            break
        fourcc, length = struct.unpack("<4sI", data[i : i + 8])
        name = fourcc.decode("latin-1").strip()
        end = i + 8 + length
        if end > stop:
            b.problems.append((f"WebP {name} chunk", f"length {length} runs past the end of the file (truncated)"))
            break
        body = data[i + 8 : end]
        if fourcc == b"EXIF":
            _add_exif(b, "WebP EXIF", body, limits)
        elif fourcc == b"XMP ":
            _add_xmp(b, "WebP XMP", body, limits)
        elif fourcc == b"C2PA":
            b.c2pa_bytes += length
            b.c2pa.append("WebP C2PA")
        i = end + (length & 1)
    return b
