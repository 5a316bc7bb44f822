"""``aigc calibrate --group-field``: per-group thresholds set on a team's own humans, for a language whose humans
score above the others' (BENCHMARKS.md, session 23): a group of 20-98 humans gets each ``fpr@X`` above all of
them and never below the global one, the runtime applies it to items of that group, and refusals name the field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import aigc
from aigc.cli import main

AI_WORDS = ["delve", "tapestry", "moreover", "furthermore"]
HUMAN_WORDS = ["cat", "dog", "sat", "ran", "the", "on", "mat", "a", "in", "park"]


def _texts(n: int, seed: int, lo: float, hi: float) -> list[str]:
    """Texts that use the tiny bundle's 'AI' words at a rate drawn from [lo, hi]: its score rises with it."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        q = rng.uniform(lo, hi)
        n_words = int(rng.integers(8, 40))
        out.append(" ".join(str(rng.choice(AI_WORDS) if rng.random() < q else rng.choice(HUMAN_WORDS))
                            for _ in range(n_words)))
    return out


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _humans(tmp_path: Path) -> Path:
    """400 humans of the bundle's language, 40 of one whose humans write like its machine texts, 10 of a third."""
    rows = [{"text": t, "language": "en"} for t in _texts(400, 0, 0.0, 0.4)]
    rows += [{"text": t, "language": "xx"} for t in _texts(40, 1, 0.5, 0.9)]
    rows += [{"text": t, "language": "yy"} for t in _texts(10, 2, 0.5, 0.9)]
    rows += [{"text": t} for t in _texts(20, 3, 0.0, 0.4)]  # no language: counts only in the global thresholds
    return _write(tmp_path / "humans.jsonl", rows)


def test_group_thresholds_hold_a_language_that_scores_high(tiny_text_bundle: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine"
    assert main(["calibrate", str(tiny_text_bundle), str(_humans(tmp_path)), "--out", str(out), "--humans-only",
                 "--group-field", "language"]) == 0
    console = capsys.readouterr().out
    det = aigc.load(out)
    spec = det.spec
    gt, glob = spec["group_thresholds"], spec["thresholds"]
    assert gt["column"] == "language" and set(gt["groups"]) == {"en", "xx"} and "yy" in gt["skipped"]
    assert spec["recalibration"]["group_thresholds"] == {"column": "language", "groups": ["en", "xx"],
                                                       "global_only": ["yy"], "weak": []}
    # en: 400 humans support 1% and 5% conformally; no balanced without machine texts
    assert set(gt["groups"]["en"]) == {"fpr@1%", "fpr@5%"} and gt["groups"]["en"]["fpr@1%"]["rule"] == "conformal"
    # xx: 40 humans, too few for 1%: above all of them, and never below the global threshold
    xx = gt["groups"]["xx"]["fpr@1%"]
    assert xx["rule"] in ("above all 40 humans (fewer than 99)",
                          "the global threshold (above all 40 humans (fewer than 99): lower)"), xx["rule"]
    assert xx["value"] >= glob["fpr@1%"]["value"] and xx["achieved_fpr"] == 0.0 and xx["n_human"] == 40
    assert xx["small_group"] is True and "small_group" not in gt["groups"]["en"]["fpr@1%"]  # what aigc info reads
    p_xx = det.predict_proba(_texts(40, 1, 0.5, 0.9))[:, 1]
    assert xx["value"] > p_xx.max()
    assert "language=xx: fpr@1% " in console and "above all 40 humans" in console
    # fresh humans of xx: the global threshold flags many, xx's own far fewer; en items keep en's
    fresh = _texts(300, 11, 0.5, 0.9)
    r_glob = det.score(fresh, threshold="fpr@1%")
    r_xx = det.score(fresh, threshold="fpr@1%", groups=["xx"] * len(fresh))
    f_glob = np.mean([r.label == det.labels[1] for r in r_glob])
    f_xx = np.mean([r.label == det.labels[1] for r in r_xx])
    assert r_xx[0].threshold_name == "fpr@1%[language=xx]" and r_xx[0].threshold == xx["value"]
    assert f_glob > 0.08 and f_xx < 0.04, (f_glob, f_xx)  # seen: 12.3% and 0.0%
    r_en = det.score(fresh[:2], threshold="fpr@1%", groups=["en"] * 2)
    assert r_en[0].threshold_name == "fpr@1%[language=en]" and r_en[0].threshold == gt["groups"]["en"]["fpr@1%"]["value"]
    r_yy = det.score(fresh[:3], threshold="fpr@1%", groups=["yy"] * 3)  # too few humans: the global threshold
    assert r_yy[0].threshold_name == "fpr@1%" and r_yy[0].threshold == glob["fpr@1%"]["value"]
    card = (capsys.readouterr(), main(["info", str(out)]), capsys.readouterr().out)[2]
    assert "per-group thresholds by language" in card and "language=xx: fpr@1%" in card


def test_group_field_refusals(tiny_text_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _humans(tmp_path)
    capsys.readouterr()
    assert main(["calibrate", str(tiny_text_bundle), str(data), "--out", str(tmp_path / "a"), "--humans-only",
                 "--group-field", "lang"]) == 2
    err = capsys.readouterr().err
    assert "--group-field 'lang': no row of" in err and "language" in err
    few = _write(tmp_path / "few.jsonl", [{"text": t, "language": f"g{i % 12}"}  # 12 groups of 13-14 humans
                                           for i, t in enumerate(_texts(160, 5, 0.0, 0.4))])
    assert main(["calibrate", str(tiny_text_bundle), str(few), "--out", str(tmp_path / "b"), "--humans-only",
                 "--group-field", "language"]) == 1
    err = capsys.readouterr().err
    assert "no group has the 20 human items its own thresholds need" in err and "'g0': 14" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_info_tells_small_group_thresholds_by_their_mark_or_old_wording() -> None:
    from aigc.cli._info import _small_group

    assert _small_group({"rule": "conformal", "small_group": True})  # the mark decides, whatever the wording
    assert not _small_group({"rule": "above all 40 humans (fewer than 99)", "small_group": False})
    assert _small_group({"rule": "above all 40 humans (fewer than 99)"})  # a bundle written before the mark
    assert not _small_group({"rule": "conformal"})
