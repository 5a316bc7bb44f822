"""Fixtures for provenance tests, all made here: a test certificate chain (cryptography), C2PA manifests signed
and embedded with c2pa-python's Builder, XMP with IPTC terms, EXIF tags and PNG generator chunks.

The chain: a self-signed root CA -> an intermediate CA -> an ES256 (P-256) end-entity certificate with
digitalSignature key usage and the emailProtection EKU, which c2pa-rs accepts for claim signing. Passing the
root as a trust anchor makes a store ``valid``; without it the same store is ``untrusted_certificate``.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from PIL import Image, PngImagePlugin

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


@dataclass(frozen=True)
class Chain:
    root_pem: str
    chain_pem: str  # end-entity then intermediate
    key_pem: bytes
    key: Any


@lru_cache(maxsize=1)
def make_chain() -> Chain:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aigc-sentinel tests")])

    def cert(subject: str, pub: Any, issuer: str, issuer_key: Any, ca: bool) -> Any:
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer)).public_key(pub)
             .serial_number(x509.random_serial_number()).not_valid_before(start)
             .not_valid_after(start + dt.timedelta(days=365 * 20))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                                          encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False))  # fmt: skip
        if not ca:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = cert("aigc test root", root_key.public_key(), "aigc test root", root_key, True)
    inter = cert("aigc test intermediate", inter_key.public_key(), "aigc test root", root_key, True)
    leaf = cert("aigc test signer", leaf_key.public_key(), "aigc test intermediate", inter_key, False)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    key_pem = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return Chain(pem(root), pem(leaf) + pem(inter), key_pem, leaf_key)


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (120, 30, 200), **save: Any) -> bytes:
    import numpy as np

    rng = np.random.default_rng(sum(color))
    arr = (np.asarray(color, dtype=np.float32) + rng.normal(0, 20, (size[1], size[0], 3))).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **save)
    return buf.getvalue()


def created_manifest(source_type: str, title: str = "fixture") -> dict[str, Any]:
    return {"claim_generator_info": [{"name": "aigc-sentinel-tests", "version": "0.1"}], "title": title,
            "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.created", "digitalSourceType": IPTC + source_type, "softwareAgent": {"name": "FixtureTool"}}]}}]}  # fmt: skip


def ai_edit_manifest() -> dict[str, Any]:
    """A capture, then an edit whose source is generative AI (a generative fill)."""
    return {"claim_generator_info": [{"name": "aigc-sentinel-tests", "version": "0.1"}], "title": "edited",
            "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"},
                {"action": "c2pa.edited", "digitalSourceType": IPTC + "compositeWithTrainedAlgorithmicMedia",
                 "softwareAgent": {"name": "Generative Fill"}}]}}]}  # fmt: skip


def _signer(bad_signature: bool = False) -> Any:
    import c2pa

    ch = make_chain()
    if not bad_signature:
        return c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, ch.chain_pem.encode(), ch.key_pem, None))
    return c2pa.Signer.from_callback(lambda data: os.urandom(64), c2pa.C2paSigningAlg.ES256, ch.chain_pem, None)


def sign(src: bytes, mime: str, manifest: dict[str, Any], bad_signature: bool = False,
         parent: tuple[bytes, str] | None = None) -> bytes:  # fmt: skip
    """``src`` with ``manifest`` signed by the test chain and embedded. ``bad_signature``: a garbage signature
    (verification after signing is turned off so that it can be written). ``parent``: (bytes, mime) of a
    parentOf ingredient."""
    import c2pa

    ctx = c2pa.Context(c2pa.Settings.from_dict({"verify": {"verify_after_sign": False, "remote_manifest_fetch": False,
                                                           "ocsp_fetch": False}}))  # fmt: skip
    with c2pa.Builder(manifest, context=ctx) as b:
        if parent is not None:
            b.add_ingredient({"title": "parent", "relationship": "parentOf", "label": "parent-1"}, parent[1], io.BytesIO(parent[0]))
        out = io.BytesIO()
        b.sign(_signer(bad_signature), mime, io.BytesIO(src), out)
    return out.getvalue()


def tamper_jpeg(data: bytes) -> bytes:
    """Change pixels after signing: flip bytes of the entropy-coded scan (the file still decodes)."""
    sos = data.rfind(b"\xff\xda")
    t = bytearray(data)
    for k in range(sos + 40, min(len(t) - 4, sos + 60)):
        if t[k] != 0xFF and t[k - 1] != 0xFF:
            t[k] ^= 0x01
    return bytes(t)


def jpeg_with_segment(jpeg: bytes, marker: int, payload: bytes, declared_length: int | None = None) -> bytes:
    """``jpeg`` with one APPn segment inserted after SOI (``declared_length`` lies about its size when given)."""
    length = len(payload) + 2 if declared_length is None else declared_length
    return jpeg[:2] + bytes([0xFF, marker]) + struct.pack(">H", length & 0xFFFF) + payload + jpeg[2:]


def xmp_packet(source_type: str | None = None, creator_tool: str | None = None, prefix: str = "Iptc4xmpExt",
               as_element: bool = False, remote: str | None = None) -> bytes:  # fmt: skip
    ns = [f'xmlns:{prefix}="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"', 'xmlns:xmp="http://ns.adobe.com/xap/1.0/"',
          'xmlns:dcterms="http://purl.org/dc/terms/"']  # fmt: skip
    attrs, elems = [], []
    if source_type:
        if as_element:
            elems.append(f"<{prefix}:DigitalSourceType>{IPTC}{source_type}</{prefix}:DigitalSourceType>")
        else:
            attrs.append(f'{prefix}:DigitalSourceType="{IPTC}{source_type}"')
    if creator_tool:
        attrs.append(f'xmp:CreatorTool="{creator_tool}"')
    if remote:
        attrs.append(f'dcterms:provenance="{remote}"')
    body = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description rdf:about="" {" ".join(ns)} {" ".join(attrs)}>{"".join(elems)}</rdf:Description></rdf:RDF></x:xmpmeta>')  # fmt: skip
    return b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>' + body.encode() + b'<?xpacket end="w"?>'


def jpeg_with_xmp(xmp: bytes, base: bytes | None = None) -> bytes:
    return jpeg_with_segment(base or image_bytes(), 0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp)


def jpeg_with_exif(software: str | None = None, make: str | None = None, model: str | None = None,
                   user_comment: str | None = None) -> bytes:  # fmt: skip
    ex = Image.Exif()
    for tag, v in ((0x0131, software), (0x010F, make), (0x0110, model)):
        if v:
            ex[tag] = v
    if user_comment:
        ex.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + user_comment.encode("utf-16-be")
    return image_bytes("JPEG", exif=ex.tobytes())


def jpeg_with_exif_bytes(jpeg: bytes, software: str | None = None, make: str | None = None, model: str | None = None) -> bytes:
    """``jpeg`` (already encoded, pixels untouched) with an EXIF APP1 segment of these tags."""
    ex = Image.Exif()
    for tag, v in ((0x0131, software), (0x010F, make), (0x0110, model)):
        if v:
            ex[tag] = v
    return jpeg_with_segment(jpeg, 0xE1, ex.tobytes())


def png_with_text(chunks: dict[str, str], kind: str = "tEXt") -> bytes:
    info = PngImagePlugin.PngInfo()
    for k, v in chunks.items():
        if kind == "iTXt":
            info.add_itxt(k, v, zip=True)
        elif kind == "zTXt":
            info.add_text(k, v, zip=True)
        else:
            info.add_text(k, v)
    return image_bytes("PNG", pnginfo=info)


def png_chunk(png: bytes, ctype: bytes, body: bytes, declared_length: int | None = None) -> bytes:
    """``png`` with one chunk inserted after IHDR."""
    import zlib

    length = len(body) if declared_length is None else declared_length
    chunk = struct.pack(">I", length) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))
    return png[:33] + chunk + png[33:]


A1111_PARAMETERS = ("a castle on a hill, golden hour\nNegative prompt: blurry\n"
                    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model hash: abc123")  # fmt: skip
COMFY_PROMPT = '{"3": {"class_type": "KSampler", "inputs": {"seed": 1}}, "4": {"class_type": "CheckpointLoaderSimple", "inputs": {}}}'
COMFY_WORKFLOW = '{"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}], "links": []}'
