"""``aigc continue-humans``: machine texts of your own domain, made from your own human texts by small local LMs.

A detector trained without a domain ranks that domain's texts poorly (BENCHMARKS.md: pubmed left out 0.72 AUROC for
the recommended detector). Labelled machine texts of the domain are what helps, and an operator seldom has them;
human texts of the domain they do have. This command continues each human text's opening with one of the given
causal LMs (in turn), then cuts the opening from both texts of the pair, as the shared sets are cut, and writes
both as labelled JSONL rows with one ``group`` per pair (the training configs' ``data.group_by: group`` keeps a pair
on one side of every split). Add the file to the training data. Round 13 (BENCHMARKS.md; ``bench/self_generated.py``,
SmolLM2-135M and Qwen2.5-Coder-0.5B continuing 40 human texts per domain) raised pubmed left out from 0.720 to 0.827
and squad from 0.867 to 0.888, pre-registered, with no held-out human flagged.

Input: JSONL, one object per line with the text under ``--text-field``; its other fields are kept on both rows (a
``domain`` field is what leave-one-domain-out and ``--worst-group domain`` read). A line that is not a JSON object,
has no text, or is too short to leave ``--min-words`` words after the cut is named on stderr and skipped; the rest
go on. The output is written atomically and never replaces an existing file or the input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "continue_humans", "cut", "opening", "run"]

_WORD = re.compile(r"\S+")


def opening(text: str, words: int, until: str | None = None) -> str:
    """The part of ``text`` an LM continues: up to and including ``until`` where the text holds it (e.g. a question
    before ``Answer:``), else its first ``words`` words; "" when the text has no more than that."""
    if until and until in text:
        return text.split(until, 1)[0] + until
    ends = [m.end() for m in _WORD.finditer(text)]
    return text[: ends[words - 1]] if len(ends) > words else ""


def cut(text: str, words: int, until: str | None = None) -> str:
    """``text`` without its shared opening: after ``until`` where it holds it, else after its first ``words`` words
    (applied to both texts of a pair alike, so that no detector is judged on the words they share)."""
    if until and until in text:
        return text.split(until, 1)[1].strip()
    starts = [m.start() for m in _WORD.finditer(text)]
    return text[starts[words]:] if len(starts) > words else ""


def _rows(path: Path, field: str) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, the object or None, what is wrong) for every non-blank line."""
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield n, None, f"not JSON ({e.msg})"
                continue
            if not isinstance(obj, dict):
                yield n, None, f"a JSON {type(obj).__name__}, expected an object"
            elif not isinstance(obj.get(field), str) or not obj[field].strip():
                yield n, None, f"no text under {field!r}"
            else:
                yield n, obj, ""


def _continue(lm: Any, tok: Any, prompt: str, max_new: int, min_new: int, seed: int) -> str:
    import torch

    torch.manual_seed(seed)
    ids = tok(prompt, return_tensors="pt").to(lm.device)
    ids.pop("token_type_ids", None)
    with torch.no_grad():
        out = lm.generate(**ids, do_sample=True, temperature=1.0, top_p=0.95, top_k=0, max_new_tokens=max_new,
                          min_new_tokens=min_new, pad_token_id=tok.pad_token_id or tok.eos_token_id)
    new = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    return new.split("\n\n", 1)[0].rstrip()


def continue_humans(src: Path, lms: list[str], field: str = "text", prompt_words: int = 30, cut_words: int = 35,
                    until: str | None = None, max_new_tokens: int = 160, min_words: int = 10, seed: int = 0,
                    device: str = "cpu", retries: int = 2) -> tuple[list[dict[str, Any]], list[str]]:
    """The pairs' rows (human remainder, label 0; continuation, label 1; each pair one ``group``) and one message per
    line skipped. The LMs (hub names, local folders or presets such as ``smollm2``) take the lines in turn; each
    continuation is sampled at temperature 1.0, top-p 0.95, seeded by ``seed``, the line number and the try; one that
    keeps fewer than ``min_words`` words after the cut is sampled again, up to ``retries`` more times."""
    from tqdm import tqdm

    from training.causal_lm import load_causal_lm

    if not lms:
        raise ValueError("continue-humans: give at least one --lm")
    for name, v in (("--prompt-words", prompt_words), ("--min-words", min_words), ("--max-new-tokens", max_new_tokens)):
        if v < 1:
            raise ValueError(f"{name} must be at least 1, found {v}")
    if retries < 0:
        raise ValueError(f"--retries must be 0 or more, found {retries}")
    if cut_words < prompt_words:
        raise ValueError(f"--cut-words ({cut_words}) must be at least --prompt-words ({prompt_words}): the machine "
                         "text would keep human words")
    loaded: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    k = 0
    for n, obj, why in tqdm(list(_rows(src, field)), desc="continue", unit="text"):
        if obj is None:
            skipped.append(f"{src}:{n}: {why}")
            continue
        text = obj[field]
        rest, prompt = cut(text, cut_words, until), opening(text, prompt_words, until)
        if not prompt or len(rest.split()) < min_words:
            skipped.append(f"{src}:{n}: too short: {len(text.split())} words leave {len(rest.split())} after the cut "
                           f"(need {min_words})")
            continue
        name = lms[k % len(lms)]
        k += 1
        if name not in loaded:
            loaded[name] = load_causal_lm(name, dtype="float32" if device == "cpu" else None, device=device)
        lm, tok = loaded[name]
        for attempt in range(1 + retries):  # a small LM often stops at a blank line after "Yes."
            new = _continue(lm, tok, prompt, max_new_tokens, min(24, max_new_tokens), (seed * 1_000_003 + n) * 8 + attempt)
            machine = cut(prompt + " " + new.lstrip(), cut_words, until)
            if len(machine.split()) >= min_words:
                break
        else:
            skipped.append(f"{src}:{n}: {name}'s continuation left {len(machine.split())} word(s) after the cut on "
                           f"the last of {1 + retries} tries (need {min_words}); its human text is left out too")
            continue
        keep = {key: v for key, v in obj.items() if key not in (field, "label", "generator", "group")}
        group = hashlib.sha1(text.encode()).hexdigest()[:16]
        rows += [{**keep, "text": rest, "label": 0, "generator": "human", "group": group},
                 {**keep, "text": machine, "label": 1, "generator": name, "group": group}]
    return rows, skipped


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("humans", help="JSONL of your human texts (one object a line)")
    parser.add_argument("--out", required=True, help="JSONL to write the pairs to (never an existing file)")
    parser.add_argument("--lm", action="append", required=True, dest="lms",
                        help="a causal LM that continues the texts (hub name, local folder or preset: smollm2, "
                             "qwen2.5-coder-0.5b); give it twice or more and they take the texts in turn")
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--prompt-words", type=int, default=30, help="words of each human text the LM continues")
    parser.add_argument("--cut-words", type=int, default=35, help="words cut from the start of both texts of a pair")
    parser.add_argument("--until", default=None,
                        help="where a text holds this marker (e.g. 'Answer:'), prompt and cut end there instead")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--min-words", type=int, default=10, help="words a text must keep after the cut")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retries", type=int, default=2,
                        help="samples more for a continuation too short after the cut before the line is skipped")
    parser.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    src, out = Path(args.humans), Path(args.out)
    if not src.is_file():
        print(f"aigc continue-humans: {src}: no such file", file=sys.stderr)
        return 2
    if out.exists() or out.resolve() == src.resolve():
        print(f"aigc continue-humans: {out} exists; give another --out (nothing is overwritten)", file=sys.stderr)
        return 2
    rows, skipped = continue_humans(src, args.lms, args.text_field, args.prompt_words, args.cut_words, args.until,
                                    args.max_new_tokens, args.min_words, args.seed, args.device, args.retries)
    for msg in skipped:
        print(f"skipped {msg}", file=sys.stderr)
    if not rows:
        print(f"aigc continue-humans: no pair made from {src}; {out} not written", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(out)
    print(f"{len(rows) // 2} pairs written to {out}; {len(skipped)} lines skipped")
    return 0
