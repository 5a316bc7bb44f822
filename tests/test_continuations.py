"""``aigc continue-humans``: pairs from a user's own human texts, cut like the shared sets, bad lines named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._train_helpers import HUMAN_WORDS, tiny_llama_dir

pytest.importorskip("torch")

from training.continuations import continue_humans, cut, opening


def _human(i: int, n_words: int = 60) -> str:
    return " ".join(HUMAN_WORDS[(i + j) % len(HUMAN_WORDS)] for j in range(n_words))


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tiny_llama_dir(tmp_path_factory.mktemp("lm")))


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_opening_and_cut_split_a_text_and_honour_the_marker() -> None:
    text = " ".join(f"w{i}" for i in range(50))
    assert opening(text, 30) == " ".join(f"w{i}" for i in range(30))
    assert cut(text, 35) == " ".join(f"w{i}" for i in range(35, 50))
    assert opening("Question: why? Answer: because it is", 30, "Answer:") == "Question: why? Answer:"
    assert cut("Question: why? Answer: because it is", 30, "Answer:") == "because it is"
    assert opening("too short", 30) == "" and cut("too short", 35) == ""


def test_pairs_are_cut_grouped_and_take_the_lms_in_turn(tmp_path: Path, lm: str) -> None:
    src = _write(tmp_path / "h.jsonl", [json.dumps({"text": _human(i), "domain": "mine", "id": i}) for i in range(4)])
    rows, skipped = continue_humans(src, [lm, lm + "/"], prompt_words=30, cut_words=35, max_new_tokens=40,
                                    min_words=3, seed=1)
    assert skipped == []
    assert len(rows) == 8
    humans, machines = rows[0::2], rows[1::2]
    assert [r["label"] for r in humans] == [0] * 4 and [r["label"] for r in machines] == [1] * 4
    assert [r["generator"] for r in machines] == [lm, lm + "/", lm, lm + "/"]
    for i, (h, m) in enumerate(zip(humans, machines, strict=True)):
        assert h["group"] == m["group"] and h["domain"] == m["domain"] == "mine" and h["id"] == m["id"] == i
        assert h["text"] == cut(_human(i), 35)  # the human text loses the same opening
        prompt = opening(_human(i), 30)
        assert not m["text"].startswith(prompt[:20]) and len(m["text"].split()) >= 3
    assert len({r["group"] for r in humans}) == 4
    again, _ = continue_humans(src, [lm, lm + "/"], max_new_tokens=40, min_words=3, seed=1)
    assert again == rows  # seeded
    other, _ = continue_humans(src, [lm, lm + "/"], max_new_tokens=40, min_words=3, seed=2)
    assert [r["text"] for r in other[1::2]] != [r["text"] for r in machines]


def test_bad_lines_are_named_and_the_rest_go_on(tmp_path: Path, lm: str) -> None:
    src = _write(tmp_path / "h.jsonl", [json.dumps({"text": _human(0)}), "{not json", json.dumps([1, 2]),
                                        json.dumps({"body": "x"}), json.dumps({"text": "only a few words"}),
                                        json.dumps({"text": _human(1)})])
    rows, skipped = continue_humans(src, [lm], max_new_tokens=40, min_words=3)
    assert len(rows) == 4
    assert [s.split(": ", 1)[0] for s in skipped] == [f"{src}:{n}" for n in (2, 3, 4, 5)]
    assert "not JSON" in skipped[0] and "expected an object" in skipped[1] and "no text under 'text'" in skipped[2]
    assert "too short" in skipped[3]
    # a continuation that stays too short after every try is named with the tries, its human text left out too
    rows, skipped = continue_humans(src, [lm], max_new_tokens=8, min_words=20, retries=1)
    assert rows == [] and "the last of 2 tries (need 20)" in skipped[0] and skipped[0].startswith(f"{src}:1: ")
    for bad in ({"retries": -1}, {"prompt_words": 0}, {"min_words": 0}):
        with pytest.raises(ValueError, match="must be"):
            continue_humans(src, [lm], **bad)  # type: ignore[arg-type]


def test_cli_refuses_to_overwrite_and_writes_jsonl(tmp_path: Path, lm: str, capsys: pytest.CaptureFixture[str]) -> None:
    from aigc.cli import main

    src = _write(tmp_path / "h.jsonl", [json.dumps({"text": _human(i)}) for i in range(2)])
    assert main(["continue-humans", str(src), "--out", str(src), "--lm", lm]) == 2
    assert "nothing is overwritten" in capsys.readouterr().err
    out = tmp_path / "pairs.jsonl"
    assert main(["continue-humans", str(src), "--out", str(out), "--lm", lm, "--max-new-tokens", "40",
                 "--min-words", "3"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["label"] for r in rows] == [0, 1, 0, 1]
    before = out.read_bytes()
    assert main(["continue-humans", str(src), "--out", str(out), "--lm", lm]) == 2
    assert out.read_bytes() == before
    none = tmp_path / "none.jsonl"
    assert main(["continue-humans", str(_write(tmp_path / "short.jsonl", ['{"text": "a few words"}'])), "--out",
                 str(none), "--lm", lm]) == 1
    assert not none.exists()  # nothing made, nothing written
    with pytest.raises(ValueError, match="cut-words"):
        continue_humans(src, [lm], prompt_words=30, cut_words=20)


def test_extra_train_rows_all_train_and_change_no_other_split(tmp_path: Path) -> None:
    from training.config import DataConfig
    from training.data import DataError, make_splits

    base = []
    for i in range(60):
        dom = ("d1", "d2", "mine")[i % 3]
        base += [{"text": f"human {dom} text {i} " + _human(i, 12), "label": 0, "domain": dom, "group": f"g{i}"},
                 {"text": f"machine {dom} text {i} " + _human(i + 1, 12), "label": 1, "domain": dom, "group": f"g{i}"}]
    main = _write(tmp_path / "main.jsonl", [json.dumps(r) for r in base])
    own = [{"text": f"own {k} " + _human(k, 15), "label": k % 2, "domain": "mine", "group": f"own{k // 2}"}
           for k in range(10)]
    extra = _write(tmp_path / "own.jsonl", [json.dumps(r) for r in own])
    kw = dict(train=str(main), group_by="group", holdout_column="domain", holdout_values=["mine"], max_train=30,
              max_dev=10, dev_fraction=0.3)
    plain = make_splits(DataConfig(**kw), "text")  # type: ignore[arg-type]
    more = make_splits(DataConfig(**kw, extra_train=[str(extra)]), "text")  # type: ignore[arg-type]
    items = {k: [r["item"] for r in v] for k, v in more.items()}
    assert items["train"] == [r["item"] for r in plain["train"]] + [r["text"] for r in own]  # none dropped by max_train
    assert items["dev"] == [r["item"] for r in plain["dev"]] and items["test"] == [r["item"] for r in plain["test"]]
    assert {r["domain"] for r in more["test"]} == {"mine"}  # the held-out domain, its own pairs training
    assert [r["domain"] for r in more["train"][-10:]] == ["mine"] * 10
    with pytest.raises(DataError, match=r"empty.jsonl: no records"):
        make_splits(DataConfig(**kw, extra_train=[str(_write(tmp_path / "empty.jsonl", [""]))]), "text")  # type: ignore[arg-type]
