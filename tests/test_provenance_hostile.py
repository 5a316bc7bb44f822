"""Hostile metadata: truncated, oversized and nonsensical blocks become findings, never crashes, and never take
the other items of a batch down (through Detector.score, aigc score and aigc provenance)."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import pytest
from _provenance_fixtures import (
    A1111_PARAMETERS,
    image_bytes,
    jpeg_with_segment,
    jpeg_with_xmp,
    png_chunk,
    png_with_text,
    xmp_packet,
)

import aigc
from aigc.cli import main
from aigc.provenance import Limits, ProvenanceOptions, read_provenance

_XMP_SIG = b"http://ns.adobe.com/xap/1.0/\x00"


def _exif(ifd_body: bytes) -> bytes:
    return b"Exif\x00\x00" + b"MM\x00*" + struct.pack(">I", 8) + ifd_body


def _hostile() -> dict[str, bytes]:
    jpg, png = image_bytes("JPEG"), image_bytes("PNG")
    bomb = zlib.compress(b"\x00" * (8 * 2**20), 9)
    return {
        "empty": b"",
        "random": os.urandom(2048),
        "jpeg_truncated_app1": jpg[:2] + b"\xff\xe1\xff\xf0" + _XMP_SIG + b"<x:xmpmeta",
        "jpeg_segment_past_end": jpeg_with_segment(jpg[:200], 0xE1, _XMP_SIG + b"abc", declared_length=60000),
        "xmp_nonsense": jpeg_with_xmp(b"\x00\xff<x:xmpmeta <<<>>> \xfe garbage"),
        "xmp_unclosed": jpeg_with_xmp(xmp_packet("trainedAlgorithmicMedia")[:-80]),
        "xmp_entity_bomb": jpeg_with_xmp(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
                                         b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>'),
        "exif_not_tiff": jpeg_with_segment(jpg, 0xE1, b"Exif\x00\x00" + b"nonsense" * 10),
        "exif_ifd_self_loop": jpeg_with_segment(jpg, 0xE1, _exif(struct.pack(">H", 1) + struct.pack(">HHI", 0x8769, 4, 1) + struct.pack(">I", 8))),
        "exif_too_many_entries": jpeg_with_segment(jpg, 0xE1, _exif(struct.pack(">H", 65535) + b"\x00" * 24)),
        "exif_pointer_past_end": jpeg_with_segment(jpg, 0xE1, _exif(struct.pack(">H", 1) + struct.pack(">HHII", 0x0131, 2, 5000, 4000))),
        "png_chunk_past_end": png_chunk(png, b"tEXt", b"parameters\x00Steps: 1", declared_length=10**9),
        "png_ztxt_bomb": png_chunk(png, b"zTXt", b"parameters\x00\x00" + bomb),
        "png_itxt_bad_header": png_chunk(png, b"iTXt", b"parameters"),
        "png_comfy_prompt_not_json": png_with_text({"prompt": "{" * 5000, "workflow": "[" * 100000}),
        "jumbf_garbage": jpeg_with_segment(jpg, 0xEB, b"JP" + os.urandom(300)),
        "webp_chunk_past_end": image_bytes("WEBP")[:12] + b"XMP " + struct.pack("<I", 10**8) + b"<x:xmpmeta",
    }


@pytest.mark.parametrize("name", sorted(_hostile()))
def test_hostile_block_becomes_a_finding(name: str) -> None:
    data = _hostile()[name]
    p = read_provenance(data)
    assert p is not None
    d = p.to_dict()
    json.dumps(d)  # serializable
    assert p.verdict in ("none", "invalid_credentials"), d  # nothing hostile here declares anything
    quiet = ("empty", "random", "exif_ifd_self_loop", "png_comfy_prompt_not_json")  # a loop is walked once; bad JSON is no generator
    if name not in quiet:
        assert any(f.error or f.signal == "invalid" for f in p.findings), d
    assert all(f.signal is None for f in p.findings if f.error)
    if name == "xmp_entity_bomb":
        assert "refused" in p.findings[0].error
    if name == "png_ztxt_bomb":
        assert "decompresses to more than" in p.findings[0].error
    if name == "jumbf_garbage" and p.c2pa and p.c2pa["state"] != "not_validated":
        assert (p.verdict, p.c2pa["state"]) == ("invalid_credentials", "malformed")


def test_size_limits_apply_to_every_block() -> None:
    small = ProvenanceOptions(limits=Limits(xmp_bytes=100, text_bytes=100, exif_bytes=8, blocks=3, file_bytes=10**6))
    p = read_provenance(jpeg_with_xmp(xmp_packet("trainedAlgorithmicMedia")), small)
    assert p.verdict == "none" and "XMP over the 100-byte limit" in p.findings[0].error
    p = read_provenance(png_with_text({"parameters": A1111_PARAMETERS}), small)
    assert p.verdict == "none" and "over the 100-byte limit" in p.findings[0].error
    many = image_bytes("JPEG")
    for _ in range(5):
        many = jpeg_with_segment(many, 0xEC, b"Ducky" + b"\x00" * 10)
    p = read_provenance(many, small)
    assert any("more than 3 segments" in (f.error or "") for f in p.findings)
    big = b"\xff\xd8" + b"\x00" * (10**6 + 1)
    p = read_provenance(big, small)
    assert "limit; not read" in p.findings[0].error


def test_unreadable_paths(tmp_path: Path) -> None:
    p = read_provenance(tmp_path / "missing.jpg")
    assert p.verdict == "none" and "cannot read" in p.findings[0].error
    p = read_provenance(tmp_path)
    assert "cannot read" in p.findings[0].error


def _folder(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    good = [tmp_path / "ai_xmp.jpg", tmp_path / "a1111.png", tmp_path / "plain.jpg"]
    good[0].write_bytes(jpeg_with_xmp(xmp_packet("trainedAlgorithmicMedia")))
    good[1].write_bytes(png_with_text({"parameters": A1111_PARAMETERS}))
    good[2].write_bytes(image_bytes("JPEG"))
    bad = []
    for name, data in _hostile().items():
        ext = ".png" if name.startswith("png") else ".webp" if name.startswith("webp") else ".jpg"
        bad.append(tmp_path / f"h_{name}{ext}")
        bad[-1].write_bytes(data)
    return good, bad


def test_batch_with_hostile_files_among_good_ones(tiny_image_bundle: Path, tmp_path: Path) -> None:
    good, bad = _folder(tmp_path)
    items = [str(x) for pair in zip(bad, good * 10, strict=False) for x in pair] + [str(x) for x in bad[len(good) * 10 :]]
    det = aigc.load(tiny_image_bundle)
    res = det.score(items, provenance=True)
    alone = {str(g): det.score([str(g)], provenance=True)[0] for g in good}
    assert len(res) == len(items)
    for item, r in zip(items, res, strict=True):
        assert r.provenance is not None, item
        if item in alone:
            assert r.error is None and r.probability == pytest.approx(alone[item].probability)
            assert r.provenance == alone[item].provenance
    verdicts = {Path(i).name: r.provenance["verdict"] for i, r in zip(items, res, strict=True)}
    assert (verdicts["ai_xmp.jpg"], verdicts["a1111.png"], verdicts["plain.jpg"]) == ("declared_ai", "declared_ai", "none")
    decision = next(r for i, r in zip(items, res, strict=True) if i.endswith("ai_xmp.jpg")).provenance["decision"]
    assert decision["policy"] == "declared_ai_first" and decision["label"] == "ai"
    # never overwritten: the detector's label and probability are the same with and without provenance
    plain = det.score(items)
    assert [r.label for r in plain] == [r.label for r in res]
    assert all("provenance" not in r.to_dict() for r in plain)


def test_aigc_score_and_aigc_provenance_survive_hostile_files(tiny_image_bundle: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    (tmp_path / "imgs").mkdir()
    good, bad = _folder(tmp_path / "imgs")
    out = tmp_path / "s.jsonl"
    assert main(["score", str(tiny_image_bundle), str(tmp_path / "imgs"), "--out", str(out), "--no-progress"]) == 0
    rows = {Path(r["item"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(rows) == len(good) + len(bad)
    assert rows["ai_xmp.jpg"]["provenance"]["verdict"] == "declared_ai"
    assert rows["ai_xmp.jpg"]["provenance"]["decision"]["label"] == "ai"
    assert all("provenance" in r for r in rows.values())
    out_csv = tmp_path / "s.csv"
    assert main(["score", str(tiny_image_bundle), str(tmp_path / "imgs"), "--out", str(out_csv), "--no-progress"]) == 0
    head, *lines = out_csv.read_text().splitlines()
    assert head.endswith(",provenance,provenance.verdict,provenance.final_label")
    assert any(x.endswith(",declared_ai,ai") for x in lines)
    from aigc._output import read_scores

    assert read_scores(out_csv) == read_scores(out)  # the CSV reads back equal to the JSONL, provenance included
    out2 = tmp_path / "n.jsonl"
    assert main(["score", str(tiny_image_bundle), str(tmp_path / "imgs"), "--out", str(out2), "--no-progress", "--no-provenance"]) == 0
    assert all("provenance" not in json.loads(x) for x in out2.read_text().splitlines())
    assert main(["score", str(tiny_image_bundle), str(good[0]), "--out", str(tmp_path / "p.jsonl"), "--provenance-policy", "nope"]) == 2
    capsys.readouterr()
    assert main(["provenance", str(tmp_path / "imgs"), "--format", "jsonl"]) == 0
    got = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(got) == len(good) + len(bad)
    assert {Path(r["item"]).name: r["verdict"] for r in got}["a1111.png"] == "declared_ai"
    assert main(["provenance", str(good[1]), str(bad[0])]) == 0
    table = capsys.readouterr().out
    assert "a1111.png: declared_ai (from png_text)" in table and "PNG tEXt 'parameters' / parameters" in table


def test_resume_refuses_to_mix_runs_with_and_without_provenance(tiny_image_bundle: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    (tmp_path / "imgs").mkdir()
    _folder(tmp_path / "imgs")
    out = tmp_path / "s.jsonl"
    assert main(["score", str(tiny_image_bundle), str(tmp_path / "imgs"), "--out", str(out), "--no-progress", "--no-provenance"]) == 0
    capsys.readouterr()
    assert main(["score", str(tiny_image_bundle), str(tmp_path / "imgs"), "--out", str(out), "--no-progress", "--resume"]) == 2
    assert "provenance None -> 'declared_ai_first'" in capsys.readouterr().err
