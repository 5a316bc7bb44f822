"""What the corrupt-JPEG check costs beside the decode it guards (``aigc._jpeg.check_jpeg``).

A JPEG cut short that still ends with an end marker decodes in PIL without an error (the missing part is
flat grey), so the full and draft decode paths also run a 1/8-scale libjpeg-turbo decode to read the
decoder's warnings. This times, side by side in one run over the same files (the JPEGs of
``../shared/data/images``, or ``--folder``): PIL's full load, the check alone, and ``aigc.decode_image``
(which includes the check), and prints the check's share.

    .venv/bin/python bench/jpeg_check.py --n 200 --repeats 3
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402

from aigc._image import decode_image  # noqa: E402
from aigc._jpeg import check_jpeg, region_decode_available  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folder", default=str(REPO.parent / "shared" / "data" / "images"))
    ap.add_argument("--n", type=int, default=200, help="JPEG files (the first n, sorted by path)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    files = sorted(p for p in Path(args.folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))[: args.n]
    if not files:
        print(f"no JPEG files under {args.folder}", file=sys.stderr)
        return 2
    if not region_decode_available():
        print("PyTurboJPEG/libturbojpeg missing: the check falls back to a pixel test (make libturbojpeg)", file=sys.stderr)
    data = [p.read_bytes() for p in files]
    print(f"{len(data)} JPEGs, {sum(map(len, data)) / len(data) / 1e3:.0f} KB on average")
    for r in range(args.repeats):
        t0 = time.perf_counter()
        for d in data:
            Image.open(io.BytesIO(d)).load()
        t1 = time.perf_counter()
        for d in data:
            check_jpeg(d)
        t2 = time.perf_counter()
        for d in data:
            decode_image(d)
        t3 = time.perf_counter()
        pil, chk, dec = t1 - t0, t2 - t1, t3 - t2
        print(f"repeat {r + 1}: PIL load {pil:.2f} s, check {chk:.2f} s ({chk / pil:.0%} of the PIL load), "
              f"decode_image with the check {dec:.2f} s (check {chk / dec:.0%} of it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
