"""Round 13: does a domain's own human texts, continued by a small local LM, stand in for the labelled data of that
domain that an operator does not have? A pre-registered check on the fixed sample (``generalization_combos``).

Registered in session 19, in the commit before any text was generated or any candidate fitted. Rounds 6-12 changed
features, penalties, weights, thresholds, LM states and length handling, and pubmed and squad left out did not move
(recommended detector, confirmation chunks: 0.720 and 0.867). The one thing that moved pubmed was data of its kind:
32-40 evobench biomedical QA texts from 2024 generators in training (``bench/domain_kind.py``, exploratory: 0.720 ->
0.837). An operator has human texts of their own domain (archives written before these generators) but seldom machine
texts of it. Here the held-out domain's human texts that the fixed sample never uses are continued by small LMs the
recommended detector does not read (SmolLM2-135M-Instruct and Qwen2.5-Coder-0.5B-Instruct, alternately), the way
the shared sets were built: the first 30 words (pubmed: the question, up to ``Answer:``) as the prompt, sampled at
temperature 1.0 with top-p 0.95; both texts of each pair then lose their opening as every shared text does
(``drop_shared_prefix``). Nothing of the held-out part (its humans, its generators davinci / gpt-3.5-turbo / gpt-4 on
pubmed, the five GPT-2-era generators on squad) is read.

- texts: ``PROMPTS`` (40) human texts per domain of fastdetectgpt's pubmed and squad whose human text (group) is in
  no row of the fixed sample, a seeded draw; each gives its cut remainder (label 0) and one cut continuation (label 1;
  the even-numbered prompts SmolLM2, the odd ones Qwen-0.5B); 160 texts, written to ``bench/selfgen/round13.jsonl``
  (the continuations only; each human text is rebuilt from ../shared/data by its group on reading)
  and read by the LM passes of ``generalization_pair`` into ``bench/selfgen/lmcache``; a text left with fewer than 10
  words after the cut is dropped, as the shared sets' are (added after registration, before any fit: some
  continuations end at a blank line after one word);
- reference: round 10's choice (the recommended detector: the fourteen statistics and gemma's mid-layer states,
  ``l2`` by leave-one-domain-out, the threshold domain-held-out) on lodo-pubmed and lodo-squad as in
  ``generalization_combos``;
- candidates, the same detector with the held-out domain's generated texts added to the split's training part
  (domain = the held-out domain, so they also take part in choosing ``l2`` and in the domain-held-out threshold):
  ``+ own humans and their continuations`` (all 80 of that domain) and ``+ own humans only`` (the 40 human remainders,
  a control: what the domain's humans alone do);
- choice on chunks 1-54: the candidate with the higher mean AUROC over lodo-pubmed and lodo-squad among those whose
  held-out human FPR is at most 2% on both, else the lower highest FPR;
- rule on chunks 55-125: the chosen candidate's mean AUROC over the two columns at least 0.020 above the reference's,
  and its held-out human FPR on each at most the higher of 2% and the reference's plus one point. A yes says the
  recipe is worth building into training (an operator's human texts in, generated continuations beside them); it
  would still be short of the issue's 0.90 unless the figures say otherwise.

Usage (the generation and LM passes are resumable; texts and passes are committed, so the fits run in minutes)::

    .venv/bin/python bench/self_generated.py --generate          # about 10 min: 80 continuations
    .venv/bin/python bench/self_generated.py --lm-passes         # pair + gemma + gemma states over 160 texts
    .venv/bin/python bench/self_generated.py --chunks 1:54 --json r13_dev.json
    .venv/bin/python bench/self_generated.py --chunks 55:125 --chosen "<the choice>" --json r13.json
    .venv/bin/python bench/self_generated.py --chunks 55:125 --dose   # exploratory, after the round: 10 / 20 / 40 prompts
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import fixed_sample  # noqa: E402
import generalization_combos as gc  # noqa: E402
import generalization_pair as gp  # noqa: E402
import generalization_splits as gs  # noqa: E402
import textsets  # noqa: E402
from combo_heads import lodo_l2_head  # noqa: E402
from generalization_text import DATA, drop_shared_prefix  # noqa: E402
from generalization_tokens import base7  # noqa: E402

from training.continuations import _continue, opening  # noqa: E402  the product's sampling and opening

OUT = REPO / "bench" / "selfgen"
TEXTS = OUT / "round13.jsonl"
CACHE = OUT / "lmcache"
DOMAINS13 = ("pubmed", "squad")
PROMPTS = 40
GENERATORS = ("smollm2", "q05")  # alternately, by prompt index
MAX_NEW = {"pubmed": 96, "squad": 160}
PROMPT_WORDS = 30
MIN_WORDS = 10  # texts shorter after the cut are dropped, as textsets drops them
PASSES = ("pair", "gemma", "gemma_hidden")  # what round 10's features read
CANDIDATES = ("+ own humans and their continuations", "+ own humans only")


def draw_humans(domain: str, n: int, seed: int, used_groups: set[str], used_texts: set[str], min_words: int = 10
                ) -> list[dict[str, Any]]:
    """``n`` distinct fastdetectgpt human texts of ``domain`` (a seeded draw with ``seed``), skipping any whose group
    (``textsets._group``) is in ``used_groups``, whose cut remainder is in ``used_texts``, or whose remainder keeps
    fewer than ``min_words`` words."""
    rows = [json.loads(x) for x in DATA.open(encoding="utf-8")]
    humans = sorted({r["text"]: r for r in rows if r["domain"] == domain and r["label"] == 0}.values(),
                    key=lambda r: r["pair_id"])
    out = []
    for i in np.random.default_rng(seed).permutation(len(humans)):
        r = humans[int(i)]
        rest = drop_shared_prefix(r)
        if textsets._group(r["text"]) in used_groups or rest in used_texts or len(rest.split()) < min_words:
            continue
        out.append(r)
        if len(out) == n:
            break
    return out


def prompt_humans(domain: str, n: int = PROMPTS, seed: int = 13) -> list[dict[str, Any]]:
    """``n`` distinct fastdetectgpt human texts of ``domain`` whose group is in no row of the fixed sample and
    whose cut remainder is in none either, drawn with ``seed``; each keeps at least 10 words after the cut."""
    sample = gp.sample_rows((200, 30), (30, 50), (30, 378), seed=0)
    return draw_humans(domain, n, seed, {r["group"] for r in sample}, {r["text"] for r in sample}, MIN_WORDS)


def prompt_of(row: dict[str, Any]) -> str:
    """The opening a generator continues: pubmed up to and including ``Answer:``, else the first 30 words."""
    return opening(row["text"], PROMPT_WORDS, "Answer:" if row["domain"] == "pubmed" else None)


def generate(path: Path = TEXTS) -> list[dict[str, Any]]:
    """Write (or extend) ``path``: per domain and prompt its human remainder and one cut continuation."""
    from tqdm import tqdm

    done = {(r["domain"], r["group"], r["label"]) for r in read_texts(path)} if path.is_file() else set()
    lms: dict[str, Any] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        for d in DOMAINS13:
            for k, r in enumerate(tqdm(prompt_humans(d), desc=f"generate {d}")):
                g, gen = textsets._group(r["text"]), GENERATORS[k % 2]
                if (d, g, 1) in done:
                    continue
                if gen not in lms:
                    lms[gen] = gp._load(gen)
                lm, tok = lms[gen]
                prompt = prompt_of(r)
                full = prompt + " " + _continue(lm, tok, prompt, MAX_NEW[d], 24, seed=k).lstrip()
                base = {"domain": d, "group": g, "set": "selfgen", "family": "selfgen", "pair_id": r["pair_id"]}
                rows = [{**base, "text": drop_shared_prefix(r), "label": 0, "generator": "human"},
                        {**base, "text": drop_shared_prefix({"text": full, "domain": d}), "label": 1,
                         "generator": {"smollm2": "smollm2-135m-instruct", "q05": "qwen2.5-coder-0.5b-instruct"}[gen]}]
                rows[0].pop("text")  # rebuilt from the shared data on reading
                for row in rows if (d, g, 0) not in done else rows[1:]:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                fh.flush()
    return read_texts(path)


def read_texts(path: Path = TEXTS) -> list[dict[str, Any]]:
    """The generated rows, each human row's text rebuilt from ../shared/data by its group (the file keeps no shared
    text: the repository never holds a copy of that data)."""
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    if any(r["label"] == 0 and "text" not in r for r in rows):
        data = [json.loads(x) for x in DATA.open(encoding="utf-8")]
        human = {(r["domain"], textsets._group(r["text"])): drop_shared_prefix(r) for r in data if r["label"] == 0}
        rows = [{**r, "text": human[(r["domain"], r["group"])]} if "text" not in r else r for r in rows]
    return rows


def round10_features(arrs: dict[str, list[np.ndarray]]) -> np.ndarray:
    """Round 10's features (gemma's seven statistics, Qwen-1.5B's seven, gemma's 640 mid-layer states), in the column
    order of ``generalization_combos``' round 10 sets."""
    g7 = np.asarray([base7(a) for a in arrs["gemma"]])
    q15 = np.asarray([base7(a[:, 3:6]) for a in arrs["pair"]])
    mid = np.asarray([h[0] for h in arrs["gemma_hidden"]], dtype=float)
    return np.hstack([g7, q15, mid])


def cached_passes(rows: list[dict[str, Any]], cache: Path, what: str
                  ) -> tuple[list[dict[str, Any]], dict[str, list[np.ndarray]]]:
    """The rows every LM read and their cached arrays of round 10's ``PASSES``; a pass not cached is an error that
    names ``what`` (the texts) and says to run ``--lm-passes``."""
    arrs = gp.arrays(list(PASSES), [r["text"] for r in rows], 128, 4, cache, budget_s=0.0)
    if any(a is None for m in PASSES for a in arrs[m]):
        raise SystemExit(f"the LM passes of {what} are not all in {cache}: run --lm-passes first")
    return gp.texts_read(rows, arrs)


def own_texts(path: Path = TEXTS, cache: Path = CACHE) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The generated rows of ``path`` every LM read that keep ``MIN_WORDS`` words after the cut (the shared sets'
    rule), and their round 10 features (a pass not cached is an error)."""
    rows, arrs = cached_passes(read_texts(path), cache, f"{path.name}'s texts")
    keep = [i for i, r in enumerate(rows) if len(r["text"].split()) >= MIN_WORDS]
    return [rows[i] for i in keep], round10_features({m: [a[i] for i in keep] for m, a in arrs.items()})


def lm_passes(path: Path = TEXTS, cache: Path = CACHE) -> None:
    """Run (resumably) the LM passes round 10's features read over the generated texts of ``path``."""
    cache.mkdir(parents=True, exist_ok=True)
    gp.arrays(list(PASSES), [r["text"] for r in read_texts(path)], 128, 4, cache)


def report(table: dict[str, Any], tested: str, verdict: dict[str, bool], chosen_given: bool, chunks: tuple[int, int],
           json_path: str) -> None:
    """Print the tested candidate and the rule's verdict; write the round's JSON where asked."""
    print(f"tested: {tested}" + ("" if chosen_given else " (the choice on these chunks; pass --chosen to confirm)"))
    for t, ok in verdict.items():
        print(f"  {t}: {'yes' if ok else 'no'}")
    if json_path:
        Path(json_path).write_text(json.dumps({"chunks": list(chunks), "tested": tested, "verdict": verdict,
                                               "results": table}, indent=2))


def fit_with_added(rows: list[dict[str, Any]], x: np.ndarray, tr: np.ndarray, te: np.ndarray, head: Any,
                   added: list[dict[str, Any]] | None = None, x_added: np.ndarray | None = None
                   ) -> tuple[np.ndarray, float]:
    """``gs.fit_and_score`` as rounds 13-15 fit (``l2`` 100 as the fallback, the domain-held-out threshold) on the
    split's training part ``tr`` plus the ``added`` rows with their features ``x_added`` (training only, never
    scored); ``te``'s scores and the threshold."""
    if not added or x_added is None:
        return gs.fit_and_score(rows, x, tr, te, 100.0, None, None, head, "domains")
    pad = np.zeros(len(added), bool)
    return gs.fit_and_score(rows + added, np.vstack([x, x_added]), np.concatenate([tr, ~pad]),
                            np.concatenate([te, pad]), 100.0, None, None, head, "domains")


def mean_auroc(cells: dict[str, Any], columns: tuple[str, ...]) -> float:
    """The mean held-out AUROC over ``columns``, the figure rounds 13-15 choose and test by."""
    return float(np.mean([cells[c]["auroc"] for c in columns]))


def choose_by_mean(table: dict[str, dict[str, Any]], candidates: tuple[str, ...], columns: tuple[str, ...]) -> str:
    """Rounds 13-15's choice: of the ``candidates`` in ``table``, the highest mean AUROC over ``columns`` among those
    whose held-out human FPR is at most 2% on every column, else the lowest highest FPR."""
    cands = [n for n in candidates if n in table]
    ok = [n for n in cands if all(table[n][c]["fpr"] <= 0.02 for c in columns)]
    return max(ok, key=lambda n: mean_auroc(table[n], columns)) if ok else min(
        cands, key=lambda n: max(table[n][c]["fpr"] for c in columns))


def mean_rule(table: dict[str, dict[str, Any]], name: str, reference: str, columns: tuple[str, ...],
              fpr_columns: tuple[str, ...], conclusion: str) -> dict[str, bool]:
    """Rounds 13-15's test: ``name``'s mean AUROC over ``columns`` at least 0.020 above ``reference``'s, and its
    held-out human FPR on each of ``fpr_columns`` at most max(2%, the reference's + 1 point); ``conclusion`` names
    the verdict (all tests pass)."""
    ref, got = table[reference], table[name]
    tests = {f"mean AUROC over {', '.join(columns)} >= reference + 0.020":
             mean_auroc(got, columns) >= mean_auroc(ref, columns) + 0.020,
             **{f"{c} held-out human FPR <= max(2%, reference + 1 point)":
                bool(got[c]["fpr"] <= max(0.02, ref[c]["fpr"] + 0.01)) for c in fpr_columns}}
    return {**tests, conclusion: all(tests.values())}


def evaluate(rows: list[dict[str, Any]], x: np.ndarray, own: list[dict[str, Any]], x_own: np.ndarray,
             names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """name -> lodo-pubmed / lodo-squad cells for the reference (round 10's choice) and each candidate in ``names``."""
    head, masks = lodo_l2_head(False), gs.split_masks(rows)
    y_all = np.asarray([r["label"] for r in rows])
    out: dict[str, dict[str, Any]] = {gc.reference_name(13): {}, **{n: {} for n in names}}
    for d in DOMAINS13:
        tr, te = masks[f"lodo-{d}"]
        grp = [r["group"] for r, m in zip(rows, te, strict=True) if m]
        for name in out:
            keep = np.asarray([r["domain"] == d and (name == CANDIDATES[0] or r["label"] == 0) for r in own])
            if name == gc.reference_name(13):
                keep[:] = False
            s, thr = fit_with_added(rows, x, tr, te, head, [r for r, k in zip(own, keep, strict=True) if k],
                                    x_own[keep])
            out[name][f"lodo-{d}"] = {**gs._cell(y_all[te], s, thr, grp), "added": int(keep.sum())}
    return out


COLUMNS13 = tuple(f"lodo-{d}" for d in DOMAINS13)


def choose(table: dict[str, dict[str, Any]]) -> str:
    """The registered choice on the development chunks (module docstring)."""
    return choose_by_mean(table, CANDIDATES, COLUMNS13)


def rule(table: dict[str, dict[str, Any]], name: str) -> dict[str, bool]:
    """The registered test on the confirmation chunks (module docstring)."""
    return mean_rule(table, name, gc.reference_name(13), COLUMNS13, COLUMNS13, "the recipe holds")


def dose(rows: list[dict[str, Any]], x: np.ndarray, own: list[dict[str, Any]], x_own: np.ndarray) -> int:
    """Exploratory (not registered): round 13's choice with the texts of each domain's first 10, 20 and 40 prompts
    (in the order they were generated), to see how many of a domain's own human texts the gain needs."""
    order: dict[str, list[str]] = {d: [] for d in DOMAINS13}
    for r in own:
        if r["group"] not in order[r["domain"]]:
            order[r["domain"]].append(r["group"])
    for k in (10, 20, 40):
        first = {g for d in DOMAINS13 for g in order[d][:k]}
        keep = np.asarray([r["group"] in first for r in own])
        cells = evaluate(rows, x, [r for r, m in zip(own, keep, strict=True) if m], x_own[keep], CANDIDATES[:1])
        print(f"first {k:2d} prompts a domain: " + "  ".join(
            f"{c} {v['auroc']:.3f} FPR {100 * v['fpr']:.1f}% (+{v['added']})" for c, v in cells[CANDIDATES[0]].items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generate", action="store_true", help="generate the continuations (resumable)")
    ap.add_argument("--lm-passes", action="store_true", help="run the LM passes over the generated texts")
    ap.add_argument("--chunks", default="1:54", help="first:last chunk of the fixed sample, 1-based and inclusive")
    ap.add_argument("--chosen", default="", help="the candidate chosen on the development chunks")
    ap.add_argument("--cache-dir", default=str(REPO / "bench" / "lmcache"))
    ap.add_argument("--json", default="")
    ap.add_argument("--dose", action="store_true", help="exploratory, after the round: the chosen candidate with the "
                    "first 10, 20 and 40 prompts' texts of each domain only")
    args = ap.parse_args(argv)
    if not textsets.exists():
        print("the shared data folder beside the repository is missing (../shared/data/text)", file=sys.stderr)
        return 2
    if args.generate:
        rows = generate()
        print(f"{len(rows)} texts in {TEXTS}")
        return 0
    if args.lm_passes:
        lm_passes()
        return 0
    if args.chosen and args.chosen not in CANDIDATES:
        raise SystemExit(f"--chosen {args.chosen!r} is not a candidate: {CANDIDATES}")
    first, last = (int(v) for v in args.chunks.split(":"))
    rows, arrs = fixed_sample.load_part(first, last, Path(args.cache_dir), gc.ROUND_PASSES[10])
    x = round10_features(arrs)
    own, x_own = own_texts()
    if args.dose:
        return dose(rows, x, own, x_own)
    table = evaluate(rows, x, own, x_own, (args.chosen,) if args.chosen else CANDIDATES)
    for name, cells in table.items():
        print(f"{name:52s} " + "  ".join(f"{c} {v['auroc']:.3f} [{v['auroc_ci'][0]:.2f}, {v['auroc_ci'][1]:.2f}] "
                                         f"FPR {100 * v['fpr']:.1f}% TPR {100 * v['tpr']:.0f}% (+{v['added']})"
                                         for c, v in cells.items()))
    tested = args.chosen or choose(table)
    report(table, tested, rule(table, tested), bool(args.chosen), (first, last), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
