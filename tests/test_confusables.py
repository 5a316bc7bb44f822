"""Look-alike letters in Latin words (a homoglyph substitution) are read as Latin by bundles that say so, and
every text bundle warns about them; genuine Cyrillic and Greek text is never changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aigc._confusables import CONFUSABLES, fold_confusables
from aigc._text import NORMALIZE_MODES, TextSpec, encode_windows, normalize_text, normalize_with_note
from aigc.perturb import HOMOGLYPHS, perturb_text
from tests._bundles import build_bundle, make_tokenizer

ENGLISH = [
    "The committee reviewed the proposal in detail and concluded that the methodology was sound.",
    "A cat sat on the mat while the dog ran across the yard, chasing a ball that nobody had thrown.",
    "Moreover, the tapestry of evidence suggests that researchers should delve into larger datasets.",
    "In 2019 the city council approved a plan to expand public transport by 40 percent over ten years.",
]
GENUINE = [
    "Москва, 12 мая. Российское представительство концерна отзывает около тысячи автомобилей.",
    "Он сказал: сор в доме, а мы ушли.",  # "сор", "в", "а" are made of look-alikes, in a Russian text
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας και η μεγαλύτερη πόλη της χώρας.",
    "Днес в 10 часа. SOFIX BGBX40 BGREIT BGTR30 CGIX BGNAUDCADCHF в ЕС с е",  # Latin-heavy, no mixed word
    "The density ρ of water and the frequency ν of light are measured in SI units.",
    'He said "Мама мыла раму" and left.',
]


def test_every_perturbation_homoglyph_is_folded_back() -> None:
    assert set(HOMOGLYPHS.values()) <= set(CONFUSABLES)
    for i, t in enumerate(ENGLISH * 5):
        attacked = perturb_text(t, "homoglyph", seed=0, index=i)
        folded = fold_confusables(attacked)
        assert folded.text == t, (attacked, folded.text)
        assert folded.letters == sum(a != b for a, b in zip(attacked, t, strict=True))


@pytest.mark.parametrize("text", GENUINE)
def test_genuine_cyrillic_greek_and_symbols_are_untouched(text: str) -> None:
    folded = fold_confusables(text)
    assert (folded.text, folded.letters, folded.words) == (text, 0, 0)
    assert normalize_with_note(text, "nfc_strip_zw_fold_ws") == (normalize_text(text, "nfc_strip_zw"), None)


def test_fold_counts_and_scope() -> None:
    f = fold_confusables("W\u0435 r\u0435viewed \u0430 cat and the word \u0441\u043e\u0440 in \u041c\u0430\u043c\u0430.")
    # "Wе", "rеviewed" are mixed; "а" and "сор" are look-alikes alone once a mixed word shows the substitution;
    # "Мама" holds м, not a look-alike: it stays Cyrillic
    assert f.text == "We reviewed a cat and the word cop in \u041c\u0430\u043c\u0430."
    assert (f.letters, f.words) == (6, 4)
    assert "6 Cyrillic/Greek look-alike letters in 4 Latin words" in f.describe()
    # a look-alike word alone, with no mixed word, is not evidence enough
    assert fold_confusables("I said \u0430 word").letters == 0


def test_spec_modes() -> None:
    assert TextSpec().normalize == "nfc_strip_zw_fold_ws"  # new specs fold
    assert TextSpec.from_dict({"type": "text"}).normalize == "nfc_strip_zw"  # a bundle without the key: as before
    with pytest.raises(ValueError, match="nfc_strip_zw_fold_ws"):
        TextSpec.from_dict({"type": "text", "normalize": "nfkc"})
    assert NORMALIZE_MODES[0] == "nfc_strip_zw_fold_ws"


def _ids(tok: object, text: str, mode: str) -> tuple[list[list[int]], list[str]]:
    spec = TextSpec(max_length=16, stride=8, normalize=mode, prefix_ids=(2,), suffix_ids=(3,))
    (enc,) = encode_windows(tok, [text], spec)
    assert not isinstance(enc, str)
    return enc.windows, enc.warnings


def test_encode_windows_reads_attacked_text_as_clean_and_warns() -> None:
    tok = make_tokenizer()
    clean = "the cat sat moreover the dog ran"
    attacked = "th\u0435 \u0441\u0430t s\u0430t moreover th\u0435 dog r\u0430n"
    w_clean, warn_clean = _ids(tok, clean, "nfc_strip_zw_fold_ws")
    w_fold, warn_fold = _ids(tok, attacked, "nfc_strip_zw_fold_ws")
    w_old, warn_old = _ids(tok, attacked, "nfc_strip_zw")
    w_none, warn_none = _ids(tok, attacked, "none")
    assert warn_clean == [] and w_fold == w_clean
    assert warn_fold[0].startswith("read 6 Cyrillic/Greek look-alike letters in 5 Latin words")
    assert w_old != w_clean and "read as written" in warn_old[0] and "'nfc_strip_zw'" in warn_old[0]
    assert w_none == w_old and warn_none == []


def test_detector_result_carries_the_warning(tmp_path: Path) -> None:
    import aigc

    attacked = ["th\u0435 \u0441\u0430t s\u0430t on th\u0435 m\u0430t", "the cat sat on the mat", "Мама мыла раму"]
    old = aigc.load(build_bundle(tmp_path / "old", "text"))
    pre = json.loads((tmp_path / "old" / "bundle.json").read_text())["preprocessing"]
    new = aigc.load(build_bundle(tmp_path / "new", "text", {"preprocessing": {**pre, "normalize": "nfc_strip_zw_fold_ws"}}))
    r_old, r_new = old.score(attacked), new.score(attacked)
    assert np.isclose(r_new[0].probability, r_new[1].probability)  # read as the clean text
    assert not np.isclose(r_old[0].probability, r_old[1].probability)
    assert any("look-alike" in w and "as Latin" in w for w in r_new[0].warnings)
    assert any("read as written" in w for w in r_old[0].warnings)
    for r in (*r_old[1:], *r_new[1:]):
        assert not any("look-alike" in w for w in r.warnings)


def test_whitespace_is_one_space_under_the_new_mode() -> None:
    text = "The  cat\tsat\u00a0on \u3000the mat.  \nA dog ran.\t\n\nEnd "
    assert normalize_text(text, "nfc_strip_zw_fold_ws") == "The cat sat on the mat.\nA dog ran.\n\nEnd"
    assert normalize_text(text, "nfc_strip_zw") == text  # older bundles read it as written
    for i, t in enumerate(ENGLISH):
        edited = perturb_text(t, "whitespace", seed=0, index=i)
        assert edited != t and normalize_text(edited, "nfc_strip_zw_fold_ws") == t
