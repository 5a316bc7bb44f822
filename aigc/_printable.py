"""Text from data files and bundles, made safe to print on a terminal.

Content read from a bundle.json, a data file or an image's metadata must never change what the reader sees:
an ANSI/OSC escape could clear the screen, colour a line or retitle the window, a ``\\r`` or a newline inside a
value could forge a line of the output, a bidi override could reorder it. :func:`printable` shows such
characters as visible escapes (``\\x1b``, ``\\n``, ``\\u202e``); every console line that carries such
content passes its values through it. Files written for programs (JSON, JSONL, CSV) keep the exact values.
"""

from __future__ import annotations

import unicodedata
from typing import Any

__all__ = ["has_controls", "printable"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Cc: C0, DEL, C1 (ESC and so ANSI/OSC sequences); Cf: format characters (bidi embeddings, overrides and
# isolates U+202A-U+202E and U+2066-U+2069, LRM/RLM, zero-width spaces); Zl/Zp: U+2028/U+2029; Cs: lone
# surrogates; Co/Cn: private use and unassigned code points, whose rendering no one can predict.
_ESCAPED = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"))
_CONTROLS = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))
_ZWJ = "\u200d"  # joins emoji sequences; shown as it is


def _escape(c: str) -> str:
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def printable(v: Any) -> str:
    """``str(v)`` as one line of plain text: control characters (C0, C1, DEL, so every ANSI/OSC escape),
    newlines and tabs, bidirectional and other format characters, line and paragraph separators, lone
    surrogates, private-use and unassigned code points written as visible escapes (``\\n``, ``\\x1b``,
    ``\\u202e``). Everything else, backslashes included, is kept as it is."""
    s = str(v)
    if s.isprintable():  # no Cc/Cf/Zl/Zp/Cs/Co/Cn character: the common case, kept cheap
        return s
    return "".join(_NAMED.get(c) or (_escape(c) if c != _ZWJ and unicodedata.category(c) in _ESCAPED else c) for c in s)


def has_controls(s: str) -> bool:
    """Whether ``s`` holds a control, format (bidi), line/paragraph separator or surrogate character: what a
    name shown to a person (a bundle's ``name``, a threshold's) may not contain."""
    return not s.isprintable() and any(c != _ZWJ and unicodedata.category(c) in _CONTROLS for c in s)
