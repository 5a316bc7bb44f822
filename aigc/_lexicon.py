"""Whether a text's words are the calibration texts' words: the support's lexicon check (numpy only).

A script check sees a Cyrillic text under an English bundle, but not Indonesian, Spanish or German: they are
written in Latin letters too, and a detector calibrated on English texts says nothing trustworthy about them
(BENCHMARKS.md, round 9: an English-trained probe flagged 16% of Indonesian humans held out of training). The
words say it: in any language a few hundred function words make up about half of running text, and another
language's function words are not among them.

Export fits the model on the calibration texts (:func:`fit_lexicon`): their ``N_WORDS`` most frequent words
(lower-cased runs of letters in the first ``MAX_CHARS`` characters, as :func:`aigc._text.dominant_script`
reads), and a cutoff. A text's *common-word share* is the share of its words among them, shrunk toward the
calibration median by ``PRIOR`` words (a 25-word text moves far less than a 500-word one); a text of at least
``MIN_WORDS`` words whose share is under the cutoff (4 robust standard deviations under the calibration texts'
median shrunk share, and at least a quarter of it) is ``"uncommon"``, any other ``"common"``; under
``MIN_WORDS`` words it is not judged. The category, within the text's script (``latin:uncommon``), joins the
support's combined score like the script (``aigc._support_score``): one that fewer than 3 calibration texts had
flags the text on its own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["MIN_WORDS", "N_WORDS", "common_share", "common_share_of", "fit_lexicon", "judge", "words"]

N_WORDS = 200
PRIOR = 10.0
MIN_WORDS = 20
MAX_CHARS = 4000
_WORD = re.compile(r"[^\W\d_]+")


def words(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """The lower-cased runs of letters in the first ``max_chars`` characters."""
    return [w.lower() for w in _WORD.findall(text[:max_chars])]


def common_share(text: str, model: dict[str, Any]) -> tuple[float, int]:
    """The text's common-word share under ``model`` (shrunk toward the calibration median by ``PRIOR`` words)
    and its number of words."""
    ws = words(text)
    return common_share_of(ws, set(model["words"]), float(model["median"]), float(model.get("prior", PRIOR))), len(ws)


def judge(text: Any, model: dict[str, Any] | None) -> tuple[str, float] | None:
    """``("common" | "uncommon", the common-word share)``, or None (no model, not a string, or fewer than the
    model's ``min_words``): the text is split once."""
    if not model or not isinstance(text, str):
        return None
    share, n = common_share(text, model)
    if n < int(model.get("min_words", MIN_WORDS)):
        return None
    return ("uncommon" if share < float(model["cutoff"]) else "common"), share


def fit_lexicon(texts: Sequence[Any]) -> dict[str, Any] | None:
    """The support's ``lexicon`` object from the calibration texts, or None when fewer than 20 of them have
    ``MIN_WORDS`` words (no basis for a cutoff)."""
    lists = [words(t) for t in texts if isinstance(t, str)]
    cnt = Counter(w for ws in lists for w in ws)
    top = [w for w, _ in cnt.most_common(N_WORDS)]
    if not top:
        return None
    common = set(top)
    raw = np.array([sum(w in common for w in ws) / len(ws) for ws in lists if len(ws) >= MIN_WORDS])
    if raw.size < 20:
        return None
    med = float(np.median(raw))
    model: dict[str, Any] = {"words": top, "prior": PRIOR, "min_words": MIN_WORDS, "median": round(med, 6)}
    shares = np.array([common_share_of(ws, common, med) for ws in lists if len(ws) >= MIN_WORDS])
    # far below the bulk: a few other-language calibration texts must not drag the cutoff to zero
    centre = float(np.median(shares))
    spread = 1.4826 * float(np.median(np.abs(shares - centre)))
    model["cutoff"] = round(max(0.25 * centre, centre - 4.0 * spread), 6)
    model["n"] = int(shares.size)
    return model


def common_share_of(ws: list[str], common: set[str], median: float, prior: float = PRIOR) -> float:
    """:func:`common_share` of an already split text."""
    return (sum(w in common for w in ws) + prior * median) / (len(ws) + prior)
