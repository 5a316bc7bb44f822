"""Cyrillic and Greek letters that look like Latin ones, used inside Latin words to hide text from a detector.

A homoglyph substitution ("revіеwed" with a Cyrillic і and е) reads the same to a person but not to a
tokenizer: each touched word breaks into rare byte-level tokens that a language model finds improbable, so a
machine text looks human. :func:`fold_confusables` reads such letters as the Latin ones they imitate, and only
where the imitation is evident:

- only in a text written in Latin letters: of its letters that are not look-alikes, most are Latin. A Russian
  or Greek text is never touched, even where a word of it is glued to a stray Latin letter ("nВ" after a
  literal "\\n" in scraped news);
- only in a word with no other Cyrillic or Greek letter (a quoted Russian word keeps its letters), that holds
  Latin letters too;
- and, once such a mixed word shows the substitution, in a word made of look-alikes alone: the same text's
  Cyrillic "а" standing for the article. Without a mixed word nothing is read again (a Bulgarian "в" or "с"
  among Latin currency codes stays), and a single Greek letter alone never is (ρ, ν and ο are symbols in
  science writing).

The map is hand-written from the letters' shapes in common fonts (a subset of the idea behind Unicode's
confusables data, UTS #39): lower- and upper-case letters whose glyphs match a Latin letter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CONFUSABLES", "Folded", "fold_confusables"]

CONFUSABLES: dict[str, str] = {
    # Cyrillic, lower case
    "\u0430": "a", "\u0441": "c", "\u0501": "d", "\u0435": "e", "\u04bb": "h", "\u0456": "i", "\u0458": "j",
    "\u04cf": "l", "\u043e": "o", "\u0440": "p", "\u051b": "q", "\u0455": "s", "\u051d": "w", "\u0445": "x",
    "\u0443": "y",
    # Cyrillic, upper case
    "\u0410": "A", "\u0412": "B", "\u0421": "C", "\u0415": "E", "\u041d": "H", "\u0406": "I", "\u0408": "J",
    "\u041a": "K", "\u041c": "M", "\u041e": "O", "\u0420": "P", "\u0405": "S", "\u0422": "T", "\u0425": "X",
    "\u04ae": "Y",
    # Greek, lower case
    "\u03bf": "o", "\u03bd": "v", "\u03c1": "p", "\u03b9": "i",
    # Greek, upper case
    "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u0396": "Z", "\u0397": "H", "\u0399": "I", "\u039a": "K",
    "\u039c": "M", "\u039d": "N", "\u039f": "O", "\u03a1": "P", "\u03a4": "T", "\u03a5": "Y", "\u03a7": "X",
}  # fmt: skip

_WORD = re.compile(r"[^\W\d_]+")  # runs of letters
_ANY = re.compile("[" + "".join(CONFUSABLES) + "]")


def _script(ch: str) -> str:
    """'latin', 'cyrillic', 'greek' or 'other' for a letter (by code point block, enough for this test)."""
    o = ord(ch)
    if ch.isascii() or 0x00C0 <= o <= 0x024F or 0x1E00 <= o <= 0x1EFF:
        return "latin"
    if 0x0400 <= o <= 0x052F:
        return "cyrillic"
    if 0x0370 <= o <= 0x03FF or 0x1F00 <= o <= 0x1FFF:
        return "greek"
    return "other"


@dataclass(frozen=True)
class Folded:
    """A text after :func:`fold_confusables`, with how many letters in how many words were read as Latin."""

    text: str
    letters: int
    words: int

    def describe(self) -> str:
        """One line for an item's warnings."""
        return (f"{self.letters} Cyrillic/Greek look-alike letter{'s' * (self.letters != 1)} in {self.words} "
                f"Latin word{'s' * (self.words != 1)} (a homoglyph substitution)")


def fold_confusables(text: str) -> Folded:
    """``text`` with the look-alikes of Latin letters that stand in Latin words read as those letters (see the
    module docstring for when a word counts as Latin). Everything else is returned unchanged."""
    if not _ANY.search(text):
        return Folded(text, 0, 0)
    words = list(_WORD.finditer(text))
    latin_letters = sum(_script(c) == "latin" for m in words for c in m.group())
    other_letters = sum(c not in CONFUSABLES and _script(c) != "latin" for m in words for c in m.group())
    if latin_letters <= other_letters:
        return Folded(text, 0, 0)
    fold: list[re.Match[str]] = []
    mixed = False
    for m in words:
        w = m.group()
        look = sum(c in CONFUSABLES for c in w)
        latin = sum(_script(c) == "latin" for c in w)
        if not look or latin + look < len(w):  # no look-alike, or another Cyrillic/Greek (or other) letter
            continue
        if latin or not (len(w) == 1 and _script(w) == "greek"):
            fold.append(m)
            mixed = mixed or latin > 0
    if not mixed:
        return Folded(text, 0, 0)
    parts: list[str] = []
    last = letters = 0
    for m in fold:
        parts += [text[last: m.start()], "".join(CONFUSABLES.get(c, c) for c in m.group())]
        last = m.end()
        letters += sum(c in CONFUSABLES for c in m.group())
    parts.append(text[last:])
    return Folded("".join(parts), letters, len(fold))
