"""bench/textsets.py --newer-out: the newer generators' texts for ``data.extra_train`` and the rest share no group,
so with configs/text_lmfeatures_gemma_qwen15_probe_cut_newer.yaml every newer text trains and nothing of its
groups reaches dev (synthetic rows shaped as textsets writes them)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
import _train_helpers  # noqa: F401  (puts this checkout's training package first)

ROOT = Path(__file__).resolve().parents[1]


def _rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for a in range(40):  # fastdetectgpt articles; glimpse continues the first 20 (same human text, same group)
        g = f"art{a}"
        rows.append({"text": f"human article {a} words", "label": 0, "set": "fdg", "domain": "xsum", "group": g})
        rows += [{"text": f"fdg {m} continuation {a}", "label": 1, "set": "fdg", "domain": "xsum", "group": g,
                  "generator": m} for m in ("gpt2", "gpt-j")]
        if a < 20:
            rows.append({"text": f"claude continuation {a}", "label": 1, "set": "glimpse", "domain": "xsum",
                         "group": g, "generator": "claude-3-opus-20240229"})
    rows += [{"text": f"russian human {k}", "label": 0, "set": "glimpse", "domain": "m4-russian", "group": f"ru{k}"}
             for k in range(5)]
    rows += [{"text": f"russian chatgpt {k}", "label": 1, "set": "glimpse", "domain": "m4-russian",
              "group": f"ru{k}m"} for k in range(5)]
    for e in range(30):  # evobench pairs: one human, two machine texts
        rows.append({"text": f"evo human {e}", "label": 0, "set": "evobench", "domain": "news", "group": f"evo{e}"})
        rows += [{"text": f"evo {m} {e}", "label": 1, "set": "evobench", "domain": "news", "group": f"evo{e}",
                  "generator": m} for m in ("gpt-4o", "llama-3")]
    return rows


def test_newer_split_keeps_groups_apart_and_english_only() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import textsets

    rows = _rows()
    rest, newer = textsets.newer_split(rows, 8, 10, seed=0)
    assert Counter(r["set"] for r in newer) == {"glimpse": 8, "evobench": 9}  # whole triples: 3 of them fit in 10
    assert all(not r["domain"].startswith("m4-") for r in newer)  # languages' texts never go to training here
    assert {r["group"] for r in rest}.isdisjoint({r["group"] for r in newer})
    assert len(rest) == len(rows) - 17 - 8 * 3  # each glimpse text's article leaves the rest with its 3 fdg texts
    assert [r["text"] for r in rest] == [r["text"] for r in rows if r in rest]  # order kept
    assert textsets.newer_split(rows, 8, 10, seed=0) == (rest, newer)  # seeded
    assert textsets.newer_split(rows, 8, 10, seed=1)[1] != newer


def test_newer_config_trains_every_newer_text_and_keeps_its_groups_out_of_dev(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import textsets

    from training.config import load_config
    from training.data import make_splits

    rest, newer = textsets.newer_split(_rows(), 8, 10, seed=0)
    paths = [textsets.write_jsonl(part, tmp_path / name) for part, name in ((rest, "rest.jsonl"), (newer, "n.jsonl"))]
    with pytest.raises(FileExistsError):
        textsets.write_jsonl(rest, paths[0])  # an existing file is never overwritten
    cfg = load_config(ROOT / "configs" / "text_lmfeatures_gemma_qwen15_probe_cut_newer.yaml",
                      [f"data.train={paths[0]}", f"data.extra_train=[{paths[1]}]", "data.max_train=30"])
    splits = make_splits(cfg.data, "text")
    train_items = [r["item"] for r in splits["train"]]
    assert train_items[-len(newer):] == [r["text"] for r in newer]  # every newer text trains, none drawn away
    newer_groups = {json.loads(line)["group"] for line in paths[1].read_text().splitlines()}
    dev_texts = {r["item"] for r in splits["dev"]}
    assert not dev_texts & {r["text"] for r in _rows() if r["group"] in newer_groups}
