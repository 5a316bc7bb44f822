"""What reading provenance adds to scoring a folder of JPEGs with an image bundle, side by side in one run.

    .venv/bin/python bench/bench_provenance.py [--n 256] [--threads 2] [--repeats 3] [--c2pa-share 0.1] [--only c2pa_all]

Runs ``aigc score BUNDLE FOLDER`` (the command, end to end: walk, decode, preprocess, model, write JSONL) with and
without ``--no-provenance``, interleaved, best of ``--repeats``, on three folders:

- ``mixed``: ``--n`` JPEGs of 320x256; a quarter carry XMP declaring trainedAlgorithmicMedia, a quarter EXIF
  make/model/software, ``--c2pa-share`` of them a C2PA manifest signed with a test chain (validated on read),
  the rest nothing;
- ``c2pa_all``: the same images, every one C2PA-signed (the worst case: each read validates a signature and
  hashes the file);
- ``shared``: the real JPEGs of ../shared/data (images/ and provenance/iptc_declared_ai/), when present.

The bundle is bench_runtime's 224-pixel EfficientNet-Lite0 (random weights; needs the train extra to export).
C2PA signing needs the provenance extra and cryptography. Prints seconds and the overhead of provenance, and the
time of reading the folder's provenance alone (one thread, nothing to overlap with) as a share of scoring it
without provenance: an upper bound that depends less on the machine's load than the difference of two runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
SHARED = (ROOT / ".." / "shared" / "data").resolve()


def _decorate(paths: list[Path], c2pa_share: float, all_c2pa: bool) -> None:
    """Add metadata in place (see the module docstring)."""
    from _provenance_fixtures import created_manifest, jpeg_with_exif_bytes, jpeg_with_xmp, sign, xmp_packet

    n = len(paths)
    n_c2pa = n if all_c2pa else round(c2pa_share * n)
    for i, p in enumerate(paths):
        data = p.read_bytes()
        if i < n_c2pa:
            data = sign(data, "image/jpeg", created_manifest("trainedAlgorithmicMedia" if i % 2 else "digitalCapture"))
        elif all_c2pa:
            pass
        elif i % 4 == 1:
            data = jpeg_with_xmp(xmp_packet("trainedAlgorithmicMedia"), data)
        elif i % 4 == 2:
            data = jpeg_with_exif_bytes(data, software="GIMP 2.10", make="Canon", model="EOS R5")
        p.write_bytes(data)


def _time_score(bundle: Path, folder: Path, out: Path, threads: int, provenance: bool) -> float:
    from aigc.cli import main

    argv = ["score", str(bundle), str(folder), "--out", str(out), "--overwrite", "--no-progress", "--threads", str(threads)]
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):  # the command's own summary lines
        t0 = time.perf_counter()
        rc = main([*argv] if provenance else [*argv, "--no-provenance"])
        dt = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"aigc score failed with exit code {rc}")
    return dt


def _time_reading(folder: Path) -> float:
    """Provenance reading of the folder alone, one thread: the cost if nothing overlapped it (an upper bound)."""
    from aigc.provenance import ProvenanceOptions, read_all

    paths = sorted(str(p) for p in folder.glob("*.jpg"))
    t0 = time.perf_counter()
    read_all(paths, ProvenanceOptions())
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--c2pa-share", type=float, default=0.1)
    ap.add_argument("--only", default=None, help="comma-separated folders to time (mixed, c2pa_all, shared; default: all)")
    args = ap.parse_args(argv)
    from bench_runtime import make_cnn_bundle, make_jpegs

    tmp = Path(tempfile.mkdtemp(prefix="aigc-bench-prov-"))
    bundle = make_cnn_bundle(tmp / "bundle")
    folders: dict[str, Path] = {}
    base = make_jpegs(tmp / "mixed", args.n)
    shutil.copytree(tmp / "mixed", tmp / "c2pa_all")
    _decorate(base, args.c2pa_share, all_c2pa=False)
    _decorate(sorted((tmp / "c2pa_all").glob("*.jpg")), 1.0, all_c2pa=True)
    folders["mixed"], folders["c2pa_all"] = tmp / "mixed", tmp / "c2pa_all"
    if (SHARED / "README.md").is_file():
        sh = tmp / "shared"
        sh.mkdir()
        for src in [*(SHARED / "images").rglob("*.jpg"), *(SHARED / "provenance" / "iptc_declared_ai").glob("*.jpg")]:
            shutil.copy(src, sh / f"{src.parent.name}_{src.name}")
        folders["shared"] = sh
    print(f"bundle: EfficientNet-Lite0 224 fp32; ORT threads {args.threads}; best of {args.repeats} interleaved repeats")
    print("| folder | images | without provenance, s | with provenance, s | overhead | reading alone, s | reading / without |")
    print("|---|---|---|---|---|---|---|")
    only = set(args.only.split(",")) if args.only else set(folders)
    for name, folder in folders.items():
        if name not in only:
            continue
        n = sum(1 for _ in folder.glob("*.jpg"))
        _time_score(bundle, folder, tmp / "w.jsonl", args.threads, True)  # warm-up (and the OS cache)
        off, on = [], []
        for _ in range(args.repeats):
            off.append(_time_score(bundle, folder, tmp / "a.jsonl", args.threads, False))
            on.append(_time_score(bundle, folder, tmp / "b.jsonl", args.threads, True))
        a, b = min(off), min(on)
        r = min(_time_reading(folder) for _ in range(args.repeats))
        print(f"| {name} | {n} | {a:.2f} | {b:.2f} | {100 * (b / a - 1):+.1f}% | {r:.2f} | {100 * r / a:.1f}% |", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
