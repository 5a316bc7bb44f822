"""Quoting of text that comes from data files, bundles or score logs before it reaches a reader.

Every value a report interpolates (bundle, threshold, slice and field names, data values, error texts) goes
through one of these, so that the value is shown literally and can never change the page around it:

- :func:`visible`: control characters (C0, DEL, C1), characters XML cannot hold (U+FFFE, U+FFFF, lone
  surrogates) and the invisible format characters that reorder or hide text (bidi overrides, zero-width
  characters) become visible escapes: ``\\n``, ``\\x1b``, ``\\u202e``. For the console and everything below.
- :func:`md` / :func:`md_code`: a Markdown text run / code span of summary.md (no table cell, line, link,
  image or raw HTML can be forged).
- :func:`html_text`: HTML text and attribute values.
- :func:`mpl_label`: text of a matplotlib artist (no mathtext, no hidden legend entry, valid SVG).
"""

from __future__ import annotations

import html
import re
from typing import Any

from .._printable import printable

__all__ = ["html_text", "md", "md_code", "mpl_label", "visible"]

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 and C1 controls, DEL, U+FFFE/U+FFFF, surrogates (only lone ones survive in a str), and the format
# characters that move or hide text: ALM, zero-width space..RLM, LRE..RLO, word joiner..PDI, BOM
_HIDDEN = "\x00-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff"
_HIDDEN_RE = re.compile(f"[{_HIDDEN}]")
# CommonMark: any ASCII punctuation may be backslash-escaped; these are the ones that start markup
_MD_RE = re.compile(f"([\\\\`*_\\[\\]<>!|#&~])|([{_HIDDEN}])|^([-+=])")


def _esc(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    o = ord(ch)
    return f"\\x{o:02x}" if o <= 0xFF else f"\\u{o:04x}"


def visible(s: Any, keep: str = "") -> str:
    """``str(s)`` with control, XML-invalid and invisible format characters as visible escapes (ESC ->
    ``\\x1b``, newline -> ``\\n``), except the characters in ``keep``: the console's
    :func:`aigc._printable.printable`, plus the few it leaves (a zero-width joiner) that XML or a page hides."""
    t = str(s)
    parts = re.split(f"([{re.escape(keep)}])", t) if keep else [t]
    return "".join(p if p and p in keep else _HIDDEN_RE.sub(lambda m: _esc(m.group()), printable(p)) for p in parts)


def md(s: Any) -> str:
    """``str(s)`` as literal Markdown text: markup characters backslash-escaped, newlines and control
    characters as visible escapes, so it stays inside its line and table cell."""

    def sub(m: re.Match[str]) -> str:
        if m.group(2):
            return _esc(m.group(2))
        return "\\" + (m.group(1) or m.group(3))

    return _MD_RE.sub(sub, str(s))


def md_code(s: Any) -> str:
    """``str(s)`` as a Markdown code span (fenced by more backticks than it holds; not for table cells)."""
    t = visible(s)
    run = max((len(r) for r in re.findall("`+", t)), default=0)
    fence = "`" * (run + 1)
    pad = " " if t.startswith("`") or t.endswith("`") or not t.strip(" ") else ""
    return f"{fence}{pad}{t}{pad}{fence}"


def html_text(s: Any) -> str:
    """``str(s)`` escaped for HTML text or a quoted attribute, hidden characters made visible (whitespace kept)."""
    return html.escape(visible(s, keep="\n\t\r"), quote=True)


def mpl_label(s: Any) -> str:
    """``str(s)`` for a matplotlib text artist: drawn literally (every ``$`` escaped, so no mathtext),
    hidden characters visible (the SVG stays valid XML), never dropped from a legend (a leading ``_``)."""
    t = visible(s).replace("$", "\\$")
    return " " + t if t.startswith("_") else t
