"""The support's lexicon check: a text in another Latin-script language than the calibration texts (which the
script check cannot see) is flagged out of support; texts like the calibration ones, and texts too short to
judge, are not; the runtime computes the same category as export."""

from __future__ import annotations

import numpy as np

from aigc import _lexicon
from aigc._support import check_support, compute_support, describe_support, lexicon_meta

EN_FUNCTION = "the of and to a in is that it was for on with as by at from this be are have not or his".split()
ID_FUNCTION = "yang dan di ini dengan untuk dari dalam tidak akan pada juga ke itu adalah atau oleh".split()


def _text(rng: np.random.Generator, function: list[str], n: int) -> str:
    """``n`` words: half the language's function words (Zipf-like), half made-up content words."""
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            out.append(function[min(int(rng.zipf(1.5)) - 1, len(function) - 1)])
        else:
            out.append("".join(rng.choice(list("bcdfghklmnprstvw")) + rng.choice(list("aeiou")) for _ in range(3)))
    return " ".join(out).capitalize() + "."


def _calibration(n: int = 400, seed: int = 0) -> tuple[list[dict], list[str]]:
    rng = np.random.default_rng(seed)
    texts = [_text(rng, EN_FUNCTION, int(rng.integers(40, 300))) for _ in range(n)]
    metas = [{"n_tokens": len(t) // 4, "n_chars": len(t), "script": "latin"} for t in texts]
    return metas, texts


def _meta(text: str, sup: dict) -> dict:
    return {"n_tokens": len(text) // 4, "n_chars": len(text), "script": "latin", **lexicon_meta(text, sup["text"]["lexicon"])}


def test_another_latin_language_is_flagged_and_the_calibration_language_is_not() -> None:
    metas, texts = _calibration()
    sup = compute_support(metas, "text", texts=texts)
    lex = sup["text"]["lexicon"]
    assert len(lex["words"]) == _lexicon.N_WORDS and 0 < lex["cutoff"] < lex["median"]
    rng = np.random.default_rng(1)
    indonesian = [_text(rng, ID_FUNCTION, int(rng.integers(40, 300))) for _ in range(100)]
    english = [_text(rng, EN_FUNCTION, int(rng.integers(40, 300))) for _ in range(500)]
    flagged_id = [check_support(_meta(t, sup), sup) for t in indonesian]
    assert all(flagged_id)
    assert all(r[0].startswith("words: ") and "another language" in r[0] for r in flagged_id)
    assert all(_meta(t, sup)["lexicon"] == "uncommon" for t in indonesian)
    en_rate = float(np.mean([bool(check_support(_meta(t, sup), sup)) for t in english]))
    assert en_rate <= 0.03  # the combined score's stated 1%, with room for 500 draws
    assert "a script or lexicon never seen in calibration is flagged on its own" in describe_support(sup)


def test_short_texts_are_not_judged_and_metas_from_another_bundle_are_dropped() -> None:
    metas, texts = _calibration()
    sup = compute_support(metas, "text", texts=texts)
    short = " ".join(ID_FUNCTION[:10])
    assert lexicon_meta(short, sup["text"]["lexicon"]) == {}  # under MIN_WORDS words: no category
    reasons = check_support({"n_tokens": 10, "n_chars": len(short), "script": "latin"}, sup)
    assert not any(r.startswith("words:") for r in reasons)
    stale = [{**m, "lexicon": "uncommon", "common_word_share": 0.01} for m in metas]  # a runtime's metas
    no_texts = compute_support(stale, "text")
    assert "lexicon" not in no_texts["text"] and "categories" not in no_texts["text"]["outlier"]
    refit = compute_support(stale, "text", texts=texts)
    assert refit["text"]["outlier"]["categories"][0]["shares"] == {"latin:common": 1.0}


def test_no_lexicon_from_too_few_or_too_short_texts() -> None:
    assert _lexicon.fit_lexicon(["one two three"] * 50) is None
    assert _lexicon.fit_lexicon([]) is None
    metas, texts = _calibration(10)
    assert _lexicon.fit_lexicon(texts) is None and "lexicon" not in compute_support(metas, "text", texts=texts)["text"]


def test_the_runtime_adds_the_lexicon_to_a_texts_meta(tiny_text_bundle, tmp_path) -> None:
    """A bundle whose support has a lexicon: Detector computes each text's category as export did, and flags
    the Indonesian text with the lexicon's reason; a bundle without one (older) leaves metas as they were."""
    import json
    import shutil

    import aigc

    b = tmp_path / "b"
    shutil.copytree(tiny_text_bundle, b)
    metas, texts = _calibration()
    sup = compute_support(metas, "text", texts=texts)
    spec = json.loads((b / "bundle.json").read_text())
    plain = aigc.load(b)
    rng = np.random.default_rng(2)
    indonesian, english = _text(rng, ID_FUNCTION, 120), _text(rng, EN_FUNCTION, 120)
    assert "lexicon" not in plain.score([indonesian])[0].meta
    spec["support"] = sup
    (b / "bundle.json").write_text(json.dumps(spec))
    det = aigc.load(b)
    r_id, r_en = det.score([indonesian, english])
    assert r_id.meta["lexicon"] == "uncommon" and r_en.meta["lexicon"] == "common"
    assert r_id.meta == _meta(indonesian, sup) | {"n_tokens": r_id.meta["n_tokens"]}
    assert r_id.out_of_support and any(x.startswith("words: ") for x in r_id.support_reasons)
    assert not any(x.startswith("words: ") for x in r_en.support_reasons)


RU_FUNCTION = "и в не на что с по как это из за от для он она".split()


def test_other_languages_in_calibration_do_not_open_the_door_to_a_third() -> None:
    """Calibration texts 95% English and 5% Russian: Russian texts are in support (their script and their
    words were seen), Indonesian ones are not: the Russian texts neither drag the cutoff down nor, since the
    lexicon's category is taken within the script, make an uncommon Latin-script text look seen. One or two calibration texts of a script do not make
    that script seen."""
    rng = np.random.default_rng(4)
    metas, texts = _calibration(380, 4)
    for _ in range(20):
        t = _text(rng, RU_FUNCTION, int(rng.integers(40, 200)))
        texts.append(t)
        metas.append({"n_tokens": len(t) // 4, "n_chars": len(t), "script": "cyrillic"})
    sup = compute_support(metas, "text", texts=texts)
    assert sup["text"]["lexicon"]["cutoff"] > 0.1  # the Russian 5% do not drag it to zero
    russian = _text(rng, RU_FUNCTION, 120)
    ru_meta = {**_meta(russian, sup), "script": "cyrillic"}
    assert not any(r.startswith("words:") for r in check_support(ru_meta, sup))  # common or cyrillic:uncommon: seen
    indonesian = _text(rng, ID_FUNCTION, 120)
    assert any(r.startswith("words:") and "in latin script" in r for r in check_support(_meta(indonesian, sup), sup))
    metas2, texts2 = _calibration(398, 5)
    metas2 += [{"n_tokens": 40, "n_chars": 180, "script": "cyrillic"}] * 2
    texts2 += [_text(rng, RU_FUNCTION, 40)] * 2
    sup2 = compute_support(metas2, "text", texts=texts2)
    assert "cyrillic" not in sup2["text"]["outlier"]["category"]["shares"]
    assert check_support({**_meta(russian, sup2), "script": "cyrillic"}, sup2)
