"""The text sets of ../shared/data as the generalization benches read them, every shared opening cut.

Every set there is a continuation setup: a machine text repeats its human text's opening. Each row comes
back with that opening cut from both texts of a pair (``text``), so that no detector is judged on human
words, and with the fields the benches split on: ``set``, ``domain``, ``generator``, ``family``, ``label``,
``group`` (a hash of the human text: nothing that shares a human text is ever on both sides of a split).

- ``fdg``: the fixed sample of fastdetectgpt.jsonl (``generalization_lmfeatures.sample_rows``, seeded),
  its first 35 words cut (pubmed: up to ``Answer:``).
- ``glimpse``: the newer generators (claude-3-opus, claude-3-sonnet, gemini-1.5-pro) on xsum / writing /
  pubmed, cut the same way, and human texts in six languages (``m4-*``: pairs there share a prompt, not
  an opening, so nothing is cut).
- ``evobench``: 2024 generators; each machine text loses its ``shared_prefix_chars``, each human text the
  longest opening any of its machine partners shares with it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from generalization_lmfeatures import sample_rows
from generalization_text import DATA, drop_shared_prefix

TEXT = DATA.parent
GLIMPSE_NEW = ("claude-3-opus-20240229", "claude-3-sonnet-20240229", "gemini-1.5-pro")
FAMILIES = ("claude", "gemini", "llama", "qwen", "openai")
EVO_DOMAIN = {"news (XSum)": "news", "creative writing (WritingPrompts)": "writing",
              "peer review (PeerRead)": "review", "biomedical QA (PubMedQA)": "biomed-qa"}


def family(generator: str) -> str:
    """The vendor family of an evobench / glimpse generator name (``human`` for humans)."""
    g = generator.lower()
    for f, keys in (("claude", ("claude",)), ("gemini", ("gemini",)), ("llama", ("llama",)),
                    ("qwen", ("qwen",)), ("openai", ("gpt", "chatgpt", "davinci"))):
        if any(k in g for k in keys):
            return f
    return "human" if g == "human" else "other"


def _read(name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (TEXT / name).open(encoding="utf-8")]


def _group(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _pick(rows: list[dict[str, Any]], n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    return [rows[i] for i in sorted(rng.permutation(len(rows))[:n])]


def fdg_rows(per_domain_human: int, per_cell: int, seed: int = 0) -> list[dict[str, Any]]:
    rows = sample_rows(per_domain_human, per_cell, seed, drop_prefix=True)
    return [{**r, "set": "fdg", "family": family(r["generator"])} for r in rows]


def glimpse_rows(per_cell: int, per_language: int, seed: int = 0) -> list[dict[str, Any]]:
    """Newer generators' English texts (``per_cell`` per domain and generator) and ``per_language`` human
    texts per language."""
    rows = _read("glimpse.jsonl")
    human_of = {r["pair_id"]: r["text"] for r in rows if r["label"] == 0}
    rng = np.random.default_rng(seed)
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["generator"] in GLIMPSE_NEW or (r["domain"].startswith("m4-") and r["label"] == 0):
            cells[(r["domain"], r["generator"])].append(r)
    out: list[dict[str, Any]] = []
    for (dom, _), cell in sorted(cells.items()):
        lang = dom.startswith("m4-")
        for r in _pick(cell, per_language if lang else per_cell, rng):
            text = r["text"] if lang else drop_shared_prefix(r)
            if len(text.split()) >= 10 or (lang and len(text) >= 40):
                out.append({**r, "text": text, "set": "glimpse", "family": family(r["generator"]),
                            "group": _group(human_of.get(r["pair_id"], r["text"]))})
    return out


def evobench_rows(per_generator: int, humans: int, seed: int = 0) -> list[dict[str, Any]]:
    """``per_generator`` machine texts of each 2024 generator and ``humans`` human texts, openings cut."""
    rows = _read("evobench.jsonl")
    cut: dict[str, int] = defaultdict(int)  # pair_id -> the longest opening a machine partner shares
    for r in rows:
        if r["label"] == 1:
            cut[r["pair_id"]] = max(cut[r["pair_id"]], int(r.get("shared_prefix_chars") or 0))
    human_of = {r["pair_id"]: r["text"] for r in rows if r["label"] == 0}
    rng = np.random.default_rng(seed)
    by_gen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_gen[r["generator"]].append(r)
    out: list[dict[str, Any]] = []
    for g, cell in sorted(by_gen.items()):
        for r in _pick(cell, humans if g == "human" else per_generator, rng):
            n = int(r.get("shared_prefix_chars") or 0) if r["label"] == 1 else cut[r["pair_id"]]
            text = r["text"][n:].strip()
            if len(text.split()) >= 10:
                out.append({**r, "text": text, "set": "evobench", "domain": EVO_DOMAIN.get(r["domain"], r["domain"]),
                            "family": family(g), "group": _group(human_of.get(r["pair_id"], r["text"]))})
    return out


def all_rows(fdg: tuple[int, int], glimpse: tuple[int, int], evobench: tuple[int, int], seed: int = 0
             ) -> list[dict[str, Any]]:
    """The three sets together (sizes as the functions above take them)."""
    return fdg_rows(*fdg, seed) + glimpse_rows(*glimpse, seed) + evobench_rows(*evobench, seed)


def write_jsonl(rows: list[dict[str, Any]], out: Path) -> Path:
    """The rows as JSONL (the fields the training configs read: text, label, domain, generator, family, set,
    group, pair_id), written atomically; an existing file is refused."""
    if out.exists():
        raise FileExistsError(f"{out} exists; remove it or pick another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    keys = ("text", "label", "domain", "generator", "family", "set", "group", "pair_id", "source")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps({k: r.get(k) for k in keys}, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return out


def newer_split(rows: list[dict[str, Any]], n_glimpse: int, n_evobench: int, seed: int = 0
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(rest, newer)``: ``newer`` holds ``n_glimpse`` of glimpse's newer generators' English machine texts and
    whole evobench groups (a human text with its machine partners) up to ``n_evobench`` texts, drawn at random
    (``seed``), for ``data.extra_train`` (every one in training; BENCHMARKS.md, session 24's pipeline run);
    ``rest`` is every other row except those sharing a group with ``newer`` (a glimpse text's group is the
    fastdetectgpt article it continues: its fastdetectgpt texts would otherwise land in dev or test beside it).
    The order of ``rows`` is kept in both."""
    rng = np.random.default_rng(seed)
    glimpse = [i for i, r in enumerate(rows) if r["set"] == "glimpse" and r["label"] == 1
               and not r["domain"].startswith("m4-")]
    chosen = {glimpse[i] for i in rng.permutation(len(glimpse))[:n_glimpse]}
    evo_groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r["set"] == "evobench":
            evo_groups[r["group"]].append(i)
    taken = 0
    for g in rng.permutation(sorted(evo_groups)):
        if taken + len(evo_groups[g]) <= n_evobench:
            chosen.update(evo_groups[g])
            taken += len(evo_groups[g])
    groups = {rows[i]["group"] for i in chosen}
    newer = [r for i, r in enumerate(rows) if i in chosen]
    rest = [r for i, r in enumerate(rows) if i not in chosen and r["group"] not in groups]
    return rest, newer


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="write the three shared text sets, every shared opening cut, as one JSONL")
    ap.add_argument("--out", required=True)
    ap.add_argument("--fdg", default="100000,100000", help="fastdetectgpt: humans per domain, per (domain, generator)")
    ap.add_argument("--glimpse", default="100000,100000", help="glimpse: per (domain, newer generator), per language")
    ap.add_argument("--evobench", default="100000,100000", help="evobench: per generator, humans")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--newer-out", default="", help="also split off newer generators' texts for data.extra_train "
                    "into this file (--out then holds the rest, without their groups)")
    ap.add_argument("--newer", default="130,170", help="with --newer-out: glimpse machine texts, evobench texts")
    args = ap.parse_args(argv)
    if not exists():
        print(f"{TEXT} lacks the three text sets (the shared data folder beside the repository)", file=sys.stderr)
        return 2
    sizes = [tuple(int(v) for v in a.split(",")) for a in (args.fdg, args.glimpse, args.evobench)]
    rows = all_rows(*sizes, seed=args.seed)  # type: ignore[arg-type]
    parts = [(rows, args.out)]
    if args.newer_out:
        if Path(args.newer_out).exists():  # refused before anything is written
            raise FileExistsError(f"{args.newer_out} exists; remove it or pick another --newer-out")
        n_glimpse, n_evo = (int(v) for v in args.newer.split(","))
        rest, newer = newer_split(rows, n_glimpse, n_evo, args.seed)
        parts = [(rest, args.out), (newer, args.newer_out)]
    for part, out in parts:
        write_jsonl(part, Path(out))
        print(f"{len(part)} texts ({sum(r['label'] == 1 for r in part)} machine) -> {out}")
    return 0


def exists() -> bool:
    return all((TEXT / n).is_file() for n in ("fastdetectgpt.jsonl", "glimpse.jsonl", "evobench.jsonl"))


__all__ = [
    "FAMILIES",
    "GLIMPSE_NEW",
    "all_rows",
    "evobench_rows",
    "exists",
    "family",
    "fdg_rows",
    "glimpse_rows",
    "newer_split",
    "write_jsonl",
]


if __name__ == "__main__":
    raise SystemExit(main())
