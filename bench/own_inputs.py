"""Human texts of one fastdetectgpt domain that a pipeline run never sees, for ``aigc continue-humans``: the run's
splits are rebuilt from its config (the domain held out, as the pipeline runs of BENCHMARKS.md hold it), and a seeded
draw of the domain's human texts whose group and cut text are in none of them is written as JSONL (``text``,
``domain``, ``pair_id``). Needs ``runs/data/text_cut.jsonl`` (``bench/textsets.py``) and ../shared/data.

    .venv/bin/python bench/own_inputs.py squad 40 own_squad_humans.jsonl data.max_train=600 data.max_dev=240

With ``--languages DOMAIN`` instead (the run's held-out domain), it writes ``n`` human texts of each of glimpse's six
languages (``m4-*``, already cut) that are in none of that run's splits: the non-English humans a detector is checked
on after training (``aigc score`` / ``aigc eval --fairness-by domain``)::

    .venv/bin/python bench/own_inputs.py --languages pubmed 40 m4_humans_unused.jsonl data.max_train=600 data.max_dev=240
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import self_generated as sg  # noqa: E402
from e2e_shared import write_jsonl  # noqa: E402

from training.config import load_config  # noqa: E402
from training.data import make_splits  # noqa: E402

CONFIG = REPO / "configs" / "text_lmfeatures_gemma3_probe_cut.yaml"


def write_languages(cut_data: Path, n: int, used_texts: set[str], out: Path) -> int:
    """``n`` human texts of each ``m4-*`` language of ``cut_data`` whose text is in no split (a seeded draw), as
    JSONL (``text``, ``domain``, ``label`` 0)."""
    import numpy as np

    rows = [json.loads(x) for x in cut_data.open(encoding="utf-8")]
    pick = []
    for lang in sorted({r["domain"] for r in rows if r["domain"].startswith("m4-")}):
        pool = sorted({r["text"] for r in rows if r["domain"] == lang and r["label"] == 0} - used_texts)
        order = np.random.default_rng(21).permutation(len(pool))[:n]
        pick += [{"text": pool[int(i)], "domain": lang, "label": 0} for i in order]
        print(f"{lang}: {min(n, len(pool))} of {len(pool)} humans outside the run's splits")
    write_jsonl(out, pick)
    print(f"{len(pick)} non-English humans -> {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    languages = args[0] == "--languages"
    args = args[1:] if languages else args
    domain, n, out, extra = args[0], int(args[1]), Path(args[2]), args[3:]
    if out.exists():
        raise SystemExit(f"{out} exists: choose another path")
    over = ["data.max_test=300", "data.holdout_column=domain", f"data.holdout_values=[{domain}]", *extra]
    cfg = load_config(CONFIG, over).data
    splits = make_splits(cfg, "text")
    groups = {str(r.get("group")).removeprefix("h:") for rows in splits.values() for r in rows}
    texts = {r.get("item") for rows in splits.values() for r in rows}
    if languages:
        return write_languages(Path(cfg.train), n, texts, out)
    drawn = sg.draw_humans(domain, n, 20, groups, texts, min_words=0)  # continue-humans names the short ones
    pick = [{"text": r["text"], "domain": domain, "pair_id": r["pair_id"]} for r in drawn]
    write_jsonl(out, pick)
    print(f"{len(pick)} {domain} humans outside the run's splits ({ {k: len(v) for k, v in splits.items()} }) -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
