"""The fixed sample of the generalization benches (200 humans per domain, 30 texts per domain and generator,
glimpse and evobench beside them; ``generalization_pair.sample_rows``) read in chunks with its committed LM
passes (``bench/lmcache``): what every fixed-sample bench loads before it fits anything. No LM is run here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import generalization_pair as gp  # noqa: E402
import textsets  # noqa: E402
from generalization_pair import CHUNK  # noqa: E402


def load_chunks(chunks: str, cache: str | Path, passes: tuple[str, ...]
                ) -> tuple[tuple[int, int], list[dict[str, Any]], dict[str, list[np.ndarray]]] | None:
    """A bench's ``--chunks first:last`` of the fixed sample with the committed LM passes ``passes``:
    ``((first, last), rows, arrays)`` as :func:`load_part` gives them, or None, said on stderr, when the shared
    data folder beside the repository is missing (the bench then exits 2)."""
    if not textsets.exists():
        print("the shared data folder beside the repository is missing (../shared/data/text)", file=sys.stderr)
        return None
    first, last = (int(v) for v in chunks.split(":"))
    return (first, last), *load_part(first, last, Path(cache), passes)


def load_part(first: int, last: int, cache: Path, models: tuple[str, ...] = ("pair", "smollm2")
              ) -> tuple[list[dict[str, Any]], dict[str, list[np.ndarray]]]:
    """Rows of chunks ``first``..``last`` (1-based, inclusive) of the fixed sample and their cached arrays;
    a chunk not cached is an error (this bench never runs an LM)."""
    rows = gp.sample_rows((200, 30), (30, 50), (30, 378), seed=0)[(first - 1) * CHUNK: last * CHUNK]
    arrs = gp.arrays(list(models), [r["text"] for r in rows], 128, 4, cache, budget_s=0.0)
    missing = sum(a is None for m in models for a in arrs[m])
    if missing:
        raise SystemExit(f"{missing} arrays of chunks {first}..{last} are not cached in {cache}: run "
                         "bench/generalization_pair.py first")
    return gp.texts_read(rows, arrs)
