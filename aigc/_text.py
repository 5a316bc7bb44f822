"""Text normalisation, tokenisation into sliding windows, and token-budget batching.

The one implementation used by serving and by training's evaluation path (and training's own
windowing), so that a text is cut into the same windows everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._confusables import fold_confusables

__all__ = [
    "COMPANION_TOKENIZER",
    "LOGITS_BUDGET_BYTES",
    "NORMALIZE_MODES",
    "ZERO_WIDTH",
    "CompanionSpec",
    "TextSpec",
    "TextWindows",
    "batches_by_token_budget",
    "dominant_script",
    "encode_windows",
    "flatten_windows",
    "lm_token_budget",
    "load_tokenizer",
    "normalize_text",
    "normalize_with_note",
    "pool_scores",
    "window_feeds",
    "window_lengths",
]

# Zero-width and invisible format characters that carry no visible text but change tokenisation.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
_ZW_TABLE = {ord(c): None for c in ZERO_WIDTH + "\x00"}
_SURROGATE = re.compile("[\ud800-\udfff]")
_HSPACE = re.compile(r"[^\S\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")  # whitespace other than line breaks
_TRAILING = re.compile(r" +(?=[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]|$)")
# preprocessing.normalize: what is done to a text before it is tokenised (normalize_text)
NORMALIZE_MODES = ("nfc_strip_zw_fold_ws", "nfc_strip_zw", "none")


COMPANION_TOKENIZER = "tokenizer_b.json"  # the file of a companion LM's tokenizer, in a run and in a bundle


@dataclass(frozen=True)
class CompanionSpec:
    """A second LM's tokenizer in a text spec (``preprocessing.companion``, docs/bundle.md): each window of the
    first tokenizer is tokenized again by this one over the same characters, up to ``max_length`` tokens with
    its own special ``prefix_ids``, and fed as ``input_ids_b`` / ``attention_mask_b``."""

    tokenizer: str = COMPANION_TOKENIZER
    max_length: int = 256
    prefix_ids: tuple[int, ...] = ()
    pad_id: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CompanionSpec:
        if not isinstance(d, dict):
            raise ValueError(f"preprocessing.companion: found {type(d).__name__}, expected an object")
        spec = cls(tokenizer=str(d.get("tokenizer", COMPANION_TOKENIZER)), max_length=int(d.get("max_length", 256)),
                   prefix_ids=tuple(int(x) for x in d.get("prefix_ids", ())), pad_id=int(d.get("pad_id", 0)))
        if spec.max_length <= len(spec.prefix_ids):
            raise ValueError(f"preprocessing.companion.max_length: found {spec.max_length}, expected more than "
                             f"its {len(spec.prefix_ids)} special tokens")
        return spec

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer, "max_length": self.max_length, "prefix_ids": list(self.prefix_ids),
                "pad_id": self.pad_id}


@dataclass(frozen=True)
class TextSpec:
    """The text part of a bundle's preprocessing spec (docs/bundle.md)."""

    tokenizer: str = "tokenizer.json"
    max_length: int = 256
    stride: int = 128
    pooling: str = "mean"
    max_windows: int = 64
    normalize: str = "nfc_strip_zw_fold_ws"  # new specs; a bundle without the key reads as "nfc_strip_zw"
    prefix_ids: tuple[int, ...] = ()
    suffix_ids: tuple[int, ...] = ()
    pad_id: int = 0
    token_type_ids: bool = False
    max_tokens: int | None = None  # tokens scored per text (its first ones); None: all (up to max_windows)
    companion: CompanionSpec | None = None  # a second tokenizer (two LMs with different vocabularies)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextSpec:
        spec = cls(
            tokenizer=str(d.get("tokenizer", "tokenizer.json")),
            max_length=int(d.get("max_length", 256)),
            stride=int(d.get("stride", 128)),
            pooling=str(d.get("pooling", "mean")),
            max_windows=int(d.get("max_windows", 64)),
            normalize=str(d.get("normalize", "nfc_strip_zw")),
            prefix_ids=tuple(int(x) for x in d.get("prefix_ids", ())),
            suffix_ids=tuple(int(x) for x in d.get("suffix_ids", ())),
            pad_id=int(d.get("pad_id", 0)),
            token_type_ids=bool(d.get("token_type_ids", False)),
            max_tokens=None if d.get("max_tokens") is None else int(d["max_tokens"]),
            companion=None if d.get("companion") is None else CompanionSpec.from_dict(d["companion"]),
        )
        if spec.companion is not None and spec.suffix_ids:
            raise ValueError("preprocessing.companion: a spec with suffix_ids cannot have a companion tokenizer")
        if spec.max_tokens is not None and spec.max_tokens < 1:
            raise ValueError(f"preprocessing.max_tokens: found {spec.max_tokens}, expected >= 1 (or absent)")
        if spec.content_length < 1:
            raise ValueError(
                f"preprocessing.max_length: found {spec.max_length}, expected more than the "
                f"{len(spec.prefix_ids) + len(spec.suffix_ids)} special tokens"
            )
        if spec.normalize not in NORMALIZE_MODES:
            raise ValueError(f"preprocessing.normalize: found {spec.normalize!r}, expected one of "
                             f"{', '.join(repr(m) for m in NORMALIZE_MODES)}")
        return spec

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "text",
            "tokenizer": self.tokenizer,
            "max_length": self.max_length,
            "stride": self.stride,
            "pooling": self.pooling,
            "max_windows": self.max_windows,
            "normalize": self.normalize,
            "prefix_ids": list(self.prefix_ids),
            "suffix_ids": list(self.suffix_ids),
            "pad_id": self.pad_id,
            "token_type_ids": self.token_type_ids,
            **({"max_tokens": self.max_tokens} if self.max_tokens is not None else {}),
            **({"companion": self.companion.to_dict()} if self.companion is not None else {}),
        }

    @property
    def content_length(self) -> int:
        """Content tokens per window (max_length less the special tokens)."""
        return self.max_length - len(self.prefix_ids) - len(self.suffix_ids)


@dataclass
class TextWindows:
    """One text cut into windows: each window is a list of token ids, special tokens included."""

    windows: list[list[int]]
    n_tokens: int  # content tokens in the whole text (before windowing)
    warnings: list[str] = field(default_factory=list)
    companion: list[list[int]] | None = None  # the same windows under the companion tokenizer, if the spec has one


def normalize_text(text: str, mode: str = "nfc_strip_zw") -> str:
    """NFC-normalise and remove zero-width/invisible format characters and NUL bytes (``nfc_strip_zw``); with
    ``nfc_strip_zw_fold_ws`` also read Cyrillic/Greek look-alikes inside Latin words as Latin letters
    (``aigc._confusables``) and make each run of spaces, tabs and other horizontal spaces one space, with none
    before a line break or at the end; ``none`` returns the text as given."""
    return normalize_with_note(text, mode)[0]


def _one_space(t: str) -> str:
    """Each run of horizontal whitespace (tabs, no-break and other Unicode spaces) as one space; none before a
    line break or at the end. Line breaks stay as they are."""
    return _TRAILING.sub("", _HSPACE.sub(" ", t))


def normalize_with_note(text: str, mode: str) -> tuple[str, str | None]:
    """:func:`normalize_text` and, when the text holds look-alike letters inside Latin words (a homoglyph
    substitution, which makes a machine text look human to a language model), a warning for the item that
    says how many and whether this mode read them as Latin."""
    if mode == "none":
        return text, None
    t = unicodedata.normalize("NFC", text).translate(_ZW_TABLE)
    folded = fold_confusables(t)
    if mode == "nfc_strip_zw_fold_ws":
        return _one_space(folded.text), (f"read {folded.describe()} as Latin letters" if folded.letters else None)
    if not folded.letters:
        return t, None
    return t, (f"{folded.describe()}: read as written (this bundle's preprocessing.normalize is {mode!r}), "
               "which makes a machine text look human; bundles exported with 'nfc_strip_zw_fold_ws' read them as Latin")


def load_tokenizer(path: str | Path) -> Any:
    """Load a Hugging Face ``tokenizers`` file (tokenizer.json) with truncation and padding turned off."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    return tok


def encode_windows(tokenizer: Any, texts: Sequence[str], spec: TextSpec, companion_tokenizer: Any = None
                   ) -> list[TextWindows | str]:
    """Tokenise texts and cut each into windows of ``spec.max_length`` tokens moving by ``spec.stride``.

    Returns, per text, a :class:`TextWindows` or an error string (empty text, only whitespace or
    invisible characters, not a str). A text is never dropped silently. With ``spec.companion``, each
    window's characters are tokenized again by ``companion_tokenizer`` (required then) into
    ``TextWindows.companion``.
    """
    if spec.companion is not None and companion_tokenizer is None:
        raise ValueError("this text spec has a companion tokenizer (preprocessing.companion); none was given")
    out: list[TextWindows | str | None] = [None] * len(texts)
    todo: list[int] = []
    norm: list[str] = []
    notes: dict[int, str] = {}
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            out[i] = f"expected a str, got {type(t).__name__}"
            continue
        bad = _SURROGATE.search(t)
        if bad:
            out[i] = (f"text is not valid Unicode: a lone surrogate U+{ord(bad.group()):04X} at character "
                      f"{bad.start()} (a JSON \\u escape of half a UTF-16 pair, or text decoded with errors "
                      "='surrogateescape')")
            continue
        n, note = normalize_with_note(t, spec.normalize)
        if note:
            notes[i] = note
        if not n.strip():
            out[i] = "empty text" if not t else "text has no visible characters (only whitespace or invisible characters)"
            continue
        todo.append(i)
        norm.append(n)
    if norm:
        encs = tokenizer.encode_batch(norm, add_special_tokens=False)
        for i, text, enc in zip(todo, norm, encs, strict=True):
            w = _windows_of(list(enc.ids), spec)
            if isinstance(w, TextWindows) and spec.companion is not None:
                w = _with_companion(w, text, list(enc.offsets), spec, companion_tokenizer)
            if isinstance(w, TextWindows) and i in notes:
                w.warnings.insert(0, notes[i])
            out[i] = w
    return [o if o is not None else "internal error: text not processed" for o in out]


def _starts(n: int, spec: TextSpec) -> list[int]:
    """First content token of each window of a text of ``n`` tokens (before ``max_windows``)."""
    c = spec.content_length
    step = max(1, min(spec.stride, c))
    starts = [0] if n <= c else list(range(0, n - c + step, step))
    return [s for s in starts if s < n]


def _windows_of(ids: list[int], spec: TextSpec) -> TextWindows | str:
    if not ids:
        return "text produced no tokens"
    n_tokens = len(ids)
    warns: list[str] = []
    if spec.max_tokens is not None and n_tokens > spec.max_tokens:
        warns.append(f"text has {n_tokens} tokens: scored the first {spec.max_tokens} (max_tokens)")
        ids = ids[: spec.max_tokens]
    starts = _starts(len(ids), spec)
    c, pre, suf = spec.content_length, list(spec.prefix_ids), list(spec.suffix_ids)
    if len(starts) > spec.max_windows:
        k = spec.max_windows
        covered = min(len(ids), starts[k - 1] + c)
        warns.append(f"text has {len(ids)} tokens: scored the first {k} window{'s' if k != 1 else ''} of "
                     f"{len(starts)}, its first {covered} tokens (max_windows)")
        starts = starts[:k]
    return TextWindows([pre + ids[s : s + c] + suf for s in starts], n_tokens, warns)


def _with_companion(win: TextWindows, text: str, offsets: list[tuple[int, int]], spec: TextSpec, tok_b: Any
                    ) -> TextWindows | str:
    """``win`` with each window's characters (from its first token's start to its last token's end) tokenized
    by the companion tokenizer, cut to its ``max_length``; an error string if a window gives it no token."""
    assert spec.companion is not None
    comp = spec.companion
    n_pre, n_suf = len(spec.prefix_ids), len(spec.suffix_ids)
    starts = _starts(min(win.n_tokens, spec.max_tokens or win.n_tokens), spec)[: len(win.windows)]
    spans = []
    for s, w in zip(starts, win.windows, strict=True):
        last = s + len(w) - n_pre - n_suf - 1
        spans.append(text[offsets[s][0]: offsets[last][1]])
    room = comp.max_length - len(comp.prefix_ids)
    full = [list(e.ids) for e in tok_b.encode_batch(spans, add_special_tokens=False)]
    for k, ids in enumerate(full):
        if not ids:
            return f"window {k + 1}: the companion tokenizer produced no tokens for {spans[k][:40]!r}"
    ids_b = [ids[:room] for ids in full]
    cut = sum(len(ids) > room for ids in full)
    if cut:
        win.warnings.append(f"{cut} window(s) run past the companion tokenizer's {comp.max_length} tokens; "
                            "their tail was not read by the second LM")
    win.companion = [list(comp.prefix_ids) + ids for ids in ids_b]
    return win


def flatten_windows(encoded: Sequence[TextWindows | str]) -> tuple[list[list[int]], list[list[int]], dict[int, list[int]]]:
    """The windows of every encoded text in one list (batched across texts), their companion windows (empty
    without a companion), and for each text that has windows the positions of its own; a text that could
    not be encoded (its entry is the error string) has none."""
    flat: list[list[int]] = []
    flat_b: list[list[int]] = []
    per: dict[int, list[int]] = {}
    for i, enc in enumerate(encoded):
        if isinstance(enc, TextWindows):
            per[i] = list(range(len(flat), len(flat) + len(enc.windows)))
            flat.extend(enc.windows)
            flat_b.extend(enc.companion or [])
    return flat, flat_b, per


def window_lengths(windows: Sequence[Sequence[int]], companion: Sequence[Sequence[int]] | None = None) -> list[int]:
    """Each window's length for token-budget batching: the longer of its two tokenizations with a companion."""
    if not companion:
        return [len(w) for w in windows]
    return [max(len(w), len(c)) for w, c in zip(windows, companion, strict=True)]


def window_feeds(spec: TextSpec, windows: Sequence[Sequence[int]],
                 companion: Sequence[Sequence[int]] | None = None) -> dict[str, np.ndarray]:
    """The graph inputs of a batch of windows: ``input_ids`` and ``attention_mask`` (right-padded int64),
    and with a companion tokenizer ``input_ids_b`` and ``attention_mask_b`` of the same windows."""
    ids, mask = pad_windows(windows, spec.pad_id)
    feeds = {"input_ids": ids, "attention_mask": mask}
    if spec.companion is not None:
        if companion is None or len(companion) != len(windows):
            raise ValueError("window_feeds: a companion spec needs the companion windows of every window")
        feeds["input_ids_b"], feeds["attention_mask_b"] = pad_windows(companion, spec.companion.pad_id)
    return feeds


def batches_by_token_budget(lengths: Sequence[int], max_tokens: int, max_batch: int) -> Iterator[list[int]]:
    """Group indices into batches whose padded size (count x longest) stays within ``max_tokens``.

    Indices are sorted by length first so that similar lengths share a batch (less padding); the
    caller restores the input order. A single sequence longer than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batch: list[int] = []
    longest = 0
    for i in order:
        L = lengths[i]
        new_longest = max(longest, L)
        if batch and (new_longest * (len(batch) + 1) > max_tokens or len(batch) >= max_batch):
            yield batch
            batch, new_longest = [], L
        batch.append(i)
        longest = new_longest
    if batch:
        yield batch


# A graph that scores with a language model holds its logits, (N, T, V) float32, and several tensors of
# the same size (log-softmax, softmax, their products, rank comparisons: about 8 for zeroshot:features,
# bench/export_memory.py); one batch's logits are kept within this many bytes.
LOGITS_BUDGET_BYTES = 128 * 2**20


def lm_token_budget(max_tokens: int, logits_per_token: int | None, budget_bytes: int = LOGITS_BUDGET_BYTES) -> int:
    """Tokens per batch for a graph holding ``logits_per_token`` float32 logits per token (the LM
    vocabulary, summed over the LMs of the graph; None: not an LM graph): ``max_tokens``, lowered so that
    a batch's logits take at most ``budget_bytes`` (SmolLM2's 49,152 tokens: 682 tokens a batch;
    Qwen2.5's 151,936: 220; a Qwen pair: 110). A window longer than that is still scored, alone."""
    if not logits_per_token:
        return max_tokens
    return max(1, min(max_tokens, budget_bytes // (4 * int(logits_per_token))))


def pad_windows(windows: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad windows to a (N, T) int64 array of ids and the matching attention mask."""
    T = max(len(w) for w in windows)
    ids = np.full((len(windows), T), pad_id, dtype=np.int64)
    mask = np.zeros((len(windows), T), dtype=np.int64)
    for r, w in enumerate(windows):
        ids[r, : len(w)] = w
        mask[r, : len(w)] = 1
    return ids, mask


def pool_scores(scores: np.ndarray, how: str) -> float:
    """Pool the raw scores of one text's windows into one raw score (``mean``, ``max`` or ``first``)."""
    if how == "mean":
        return float(np.mean(scores))
    if how == "max":
        return float(np.max(scores))
    if how == "first":
        return float(scores[0])
    raise ValueError(f"pooling: found {how!r}, expected mean|max|first")


_SCRIPTS = [
    ("latin", 0x0041, 0x024F),
    ("greek", 0x0370, 0x03FF),
    ("cyrillic", 0x0400, 0x04FF),
    ("arabic", 0x0600, 0x06FF),
    ("devanagari", 0x0900, 0x097F),
    ("hiragana_katakana", 0x3040, 0x30FF),
    ("han", 0x4E00, 0x9FFF),
    ("hangul", 0xAC00, 0xD7AF),
]
_LO = np.array([lo for _, lo, _ in _SCRIPTS])
_HI = np.array([hi for _, _, hi in _SCRIPTS])


def dominant_script(text: str, max_chars: int = 4000) -> str:
    """The writing system of most letters in the first ``max_chars`` characters of ``text``
    (latin, cyrillic, arabic, han, ...; ``other`` for letters outside these blocks; ``none`` without letters).
    """
    letters = [ord(c) for c in text[:max_chars] if c.isalpha()]
    if not letters:
        return "none"
    cps = np.asarray(letters)
    k = np.searchsorted(_LO, cps, side="right") - 1
    inside = (k >= 0) & (cps <= _HI[np.clip(k, 0, None)])
    counts = np.bincount(np.where(inside, k, len(_SCRIPTS)), minlength=len(_SCRIPTS) + 1)
    best = int(np.argmax(counts))
    return "other" if best == len(_SCRIPTS) else _SCRIPTS[best][0]
