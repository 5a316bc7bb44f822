"""Data of the pipeline run "the newest generators left out, newer generators in training" (BENCHMARKS.md, session 22).

From ``runs/data/text_cut.jsonl`` (``bench/textsets.py``: every shared opening cut) it writes three files:

- ``newest_test.jsonl``: 50 machine texts of each of fastdetectgpt's newest generators (davinci, gpt-3.5-turbo,
  gpt-4) and the human texts of their pairs, topped up with other fastdetectgpt humans to 150 (300 texts);
- ``fdg_older.jsonl``: every fastdetectgpt text of the older generators (and their humans) whose pair shares no
  human text with the test (``aigc train``'s ``data.train``: dev is split off it, ``max_train`` draws from it);
- ``newer_extra.jsonl``: 300 texts of newer generators for ``data.extra_train`` (every one in training): 130 of
  glimpse's machine texts (claude-3-opus, claude-3-sonnet, gemini-1.5-pro) and 170 of evobench's (2024 generators,
  whole pairs), none of a test pair's group and none whose text shares 30% of its word 8-grams with a test text
  (``evo_overlap``'s rule: evobench and glimpse reuse the older sets' sources).

Usage::

    .venv/bin/python bench/newest_pipeline_data.py --data runs/data/text_cut.jsonl --out runs/data
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from e2e_shared import NEW_GENERATORS, write_jsonl  # noqa: E402
from evo_overlap import SHARE, _grams  # noqa: E402

PER_GENERATOR, HUMANS, N_GLIMPSE, N_EVOBENCH = 50, 150, 130, 170


def test_part(fdg: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """``PER_GENERATOR`` texts of each newest generator, their pairs' humans, other humans up to ``HUMANS``."""
    by_gen = collections.defaultdict(list)
    for r in fdg:
        if r["generator"] in NEW_GENERATORS:
            by_gen[r["generator"]].append(r)
    machine = [x for g in sorted(NEW_GENERATORS) for x in rng.sample(by_gen[g], PER_GENERATOR)]
    groups = {r["group"] for r in machine}
    own = [r for r in fdg if r["label"] == 0 and r["group"] in groups]
    other = [r for r in fdg if r["label"] == 0 and r["group"] not in groups]
    return machine + own + rng.sample(other, max(0, HUMANS - len(own)))


def newer_part(rows: list[dict[str, Any]], test: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """glimpse machine texts and whole evobench pairs that share neither a group nor 30% of 8-grams with ``test``."""
    groups = {r["group"] for r in test}
    grams = set().union(*(_grams(r["text"]) for r in test))

    def shares(r: dict[str, Any]) -> bool:
        g = _grams(r["text"])
        return bool(g) and len(g & grams) / len(g) >= SHARE

    evo_shared = {r["group"] for r in rows if r["set"] == "evobench" and r["label"] == 0 and shares(r)}
    glimpse = [r for r in rows if r["set"] == "glimpse" and r["label"] == 1 and r["group"] not in groups
               and not shares(r)]
    evo = [r for r in rows if r["set"] == "evobench" and r["group"] not in evo_shared and r["group"] not in groups]
    picked = rng.sample(glimpse, N_GLIMPSE)
    evo_groups = sorted({r["group"] for r in evo})
    rng.shuffle(evo_groups)
    pairs: list[dict[str, Any]] = []
    for g in evo_groups:
        grp = [r for r in evo if r["group"] == g]
        if len(pairs) + len(grp) <= N_EVOBENCH:
            pairs += grp
    return picked + pairs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="runs/data/text_cut.jsonl", help="bench/textsets.py's output")
    ap.add_argument("--out", default="runs/data", help="folder for the three files")
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(0)
    fdg = [r for r in rows if r["set"] == "fdg"]
    test = test_part(fdg, rng)
    groups = {r["group"] for r in test}
    older = [r for r in fdg if r["group"] not in groups and r["generator"] not in NEW_GENERATORS]
    extra = newer_part(rows, test, rng)
    out = Path(args.out)
    for name, part in (("newest_test", test), ("fdg_older", older), ("newer_extra", extra)):
        write_jsonl(out / f"{name}.jsonl", part)
        print(f"{name}: {len(part)} texts " + str(dict(collections.Counter(
            (r["set"], "human" if r["label"] == 0 else "machine") for r in part))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
