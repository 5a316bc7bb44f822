"""bench/newest_language_thresholds.py: its halves split each language and nothing else, and its per-language
thresholds are the shipped rule's (above all of the half's humans, never below the floor), mapped back to the raw
scale exactly (synthetic margins; BENCHMARKS.md, session 23)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_halves_and_the_shipped_rule_on_raw_margins() -> None:
    sys.path.insert(0, str(BENCH))
    import newest_language_thresholds as nlt

    rng = np.random.default_rng(0)
    lang = np.asarray(["zh"] * 50 + ["ar"] * 50 + ["ur"] * 49)
    s = np.r_[rng.normal(6.0, 2.0, 50), rng.normal(-4.0, 2.0, 50), rng.normal(0.0, 3.0, 49)]
    cal, test = nlt.halves(lang, seed=3)
    assert not (cal & test).any() and (cal | test).all()
    assert [int((cal & (lang == c)).sum()) for c in ("zh", "ar", "ur")] == [25, 25, 24]
    assert not np.array_equal(cal, nlt.halves(lang, seed=4)[0])  # another seed, another halving
    thr = 2.0
    own = nlt.shipped_rule(s, lang, cal, thr)
    assert set(own) == {"zh", "ar", "ur"}
    for c, t in own.items():
        top = float(s[cal & (lang == c)].max())
        assert t >= thr - 1e-9 and (t > top or top < thr), (c, t, top)
    assert own["ar"] == pytest.approx(thr)  # its humans all score below the floor: the floor holds
    assert own["zh"] > float(s[cal & (lang == "zh")].max())
    cells = nlt.language_cells(np.r_[s[:5], s[:5] + 20], np.r_[np.zeros(5), np.ones(5)].astype(int), s, lang, thr)
    per, raised = cells["per language"], cells["raised"]
    assert len(per["languages_flagged"]) == len(nlt.SEEDS) and per["languages_scored"] == int(test.sum())
    assert all(r <= p for r, p in zip(raised["languages_flagged"], per["languages_flagged"], strict=True))
    assert per["tpr"] == cells["worst domain"]["tpr"]  # English keeps the worst-domain threshold


def test_machine_texts_tpr_follows_each_languages_threshold() -> None:
    """The machine texts' TPR is read at the threshold of their own language for each way: all above the worst-domain
    threshold, fewer above a language's own raised one, and the raised single threshold catches no more than that."""
    sys.path.insert(0, str(BENCH))
    import newest_language_thresholds as nlt

    rng = np.random.default_rng(1)
    lang = np.asarray(["zh"] * 50 + ["ar"] * 50)
    s = np.r_[rng.normal(6.0, 1.0, 50), rng.normal(-4.0, 1.0, 50)]  # Chinese humans score high
    mlang = np.asarray(["zh"] * 20 + ["ar"] * 20)
    s_mach = np.r_[np.linspace(5.0, 12.0, 20), np.linspace(3.0, 10.0, 20)]
    thr = 2.0
    cells = nlt.language_cells(s[:10], np.r_[np.zeros(5), np.ones(5)].astype(int), s, lang, thr, s_mach, mlang)
    worst, per, raised = (cells[w]["machine_tpr"] for w in ("worst domain", "per language", "raised"))
    assert set(worst) == {"zh", "ar"} and all(len(v) == len(nlt.SEEDS) for v in worst.values())
    assert worst["zh"] == [1.0] * len(nlt.SEEDS) and worst["ar"] == [1.0] * len(nlt.SEEDS)
    assert max(per["zh"]) < 1.0  # the Chinese threshold sits above its humans, so some of its machine texts pass
    assert per["ar"] == worst["ar"]  # Arabic humans all below the floor: the floor is its threshold
    assert all(r <= p for r, p in zip(raised["ar"], per["ar"], strict=True)) and min(raised["ar"]) < 1.0
    top = cells["per language, at its top human"]["machine_tpr"]  # just above the top human: never above the rule's
    assert all(t >= q for c in ("zh", "ar") for t, q in zip(top[c], per[c], strict=True))
    aurocs = nlt._language_aurocs(s, lang, s_mach, mlang)
    assert aurocs["ar"] == 1.0 and 0.5 < aurocs["zh"] < 1.0
    assert "machine_tpr" in cells["raised"] and nlt.language_cells(s[:10], np.r_[np.zeros(5), np.ones(5)].astype(int),
                                                                    s, lang, thr)["raised"]["machine_tpr"] == {}
