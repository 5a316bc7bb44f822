"""bench/newest_all_sets.py's training parts on the real fixed sample: nothing added to a column's training part
shares a human text with its test part, evobench pairs that reuse an older-set source stay out, glimpse's language
humans stay out, and a domain left out takes its evobench kin with it (BENCHMARKS.md, session 22)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.shared
def test_added_rows_never_touch_the_test_part(shared_data: Path) -> None:
    sys.path.insert(0, str(BENCH))
    import evo_overlap
    import generalization_pair as gp
    import generalization_splits as gs
    import newest_all_sets as n

    rows = gp.sample_rows((200, 30), (30, 50), (30, 378), seed=0)
    masks, shared = gs.split_masks(rows), evo_overlap.shared_groups(rows)
    assert shared  # evobench does reuse the older sets' sources: the rule has work to do
    for col in n.COLUMNS:
        tr, te = masks[col]
        test_groups = {r["group"] for r, m in zip(rows, te, strict=True) if m}
        parts = n.added_masks(rows, col, te)
        assert next(iter(parts)) == "fastdetectgpt only" and not parts["fastdetectgpt only"].any()
        for name, add in parts.items():
            added = [r for r, m in zip(rows, add, strict=True) if m]
            assert not (add & te).any() and not (add & tr).any(), (col, name)
            assert not any(r["group"] in test_groups for r in added), (col, name)
            assert not any(r["set"] == "evobench" and r["group"] in shared for r in added), (col, name)
            assert not any(r["domain"].startswith("m4-") or r["set"] == "fdg" for r in added), (col, name)
            if col.startswith("lodo-"):
                d = col[5:]
                assert not any(r["domain"] in {d, n.KIN[d]} for r in added), (col, name)
            if name.endswith("model"):
                assert not any(r["family"] in n.VENDORS[col] for r in added), (col, name)
        assert len(parts) == (4 if col == "long" else 3)
    lang = n.language_humans(rows)
    assert int(lang.sum()) == 300 and all(r["label"] == 0 for r, m in zip(rows, lang, strict=True) if m)
    assert np.asarray([r["set"] == "glimpse" for r, m in zip(rows, lang, strict=True) if m]).all()
