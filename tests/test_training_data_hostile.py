"""Hostile training data: every misread is an error naming the file and line (or a counted warning), labels
are never flipped or defaulted, and splits that share items with train are flagged or refused."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_helpers import make_image_folder, make_text_jsonl, text_rows

from training.config import DataConfig
from training.data import DataError, make_splits, read_image_folder, read_table

pytestmark = pytest.mark.train


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _splits(train: Path | str, **kw: Any) -> dict[str, list[dict[str, Any]]]:
    return make_splits(DataConfig(train=str(train), **kw), "text")


# ------------------------------------------------------------------------------------------------ CSV
def test_csv_row_with_unquoted_comma_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "extra.csv"
    p.write_text('text,label\n"the old man walked",0\nthe river and rain, 1,0\n"walked along",0\n')
    with pytest.raises(DataError, match=r"extra.csv line 3: row has 3 cells, header has 2"):
        read_table(p, DataConfig())
    p.write_text('text,label\n"the old man walked",0\nonly a text\n')  # too few cells: not a None label
    with pytest.raises(DataError, match=r"extra.csv line 3: row has 1 cells, header has 2"):
        read_table(p, DataConfig())


def test_csv_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text('text,label\n"line one\nline two",1\n\n"ok",0\n"bad one",maybe\n')
    with pytest.raises(DataError, match=r"m.csv line 6: unknown label 'maybe'"):
        read_table(p, DataConfig())
    p.write_text('text,label\n"a",0\n"never closed,1\nb,0\n')
    with pytest.raises(DataError, match=r"m.csv line 3: unterminated quote.*line 4\)"):
        read_table(p, DataConfig())
    p.write_text('text,label\n"a",0\n"closed late,1\n"b",0\n')  # the quote closes on line 4: b follows it
    with pytest.raises(DataError, match=r"m.csv line 3: CSV parse error"):
        read_table(p, DataConfig())
    p.write_text('text,label\n"a"x,0\n')
    with pytest.raises(DataError, match=r"m.csv line 2: CSV parse error"):
        read_table(p, DataConfig())
    p.write_text("text,text\na,0\n")
    with pytest.raises(DataError, match=r"m.csv line 1: the header repeats column\(s\) \['text'\]"):
        read_table(p, DataConfig())


def test_csv_encodings(tmp_path: Path) -> None:
    p = tmp_path / "bom.csv"
    p.write_bytes("text,label\r\ncaf\u00e9 au lait,0\r\nsecond,1\r\n".encode("utf-8-sig"))
    rows = read_table(p, DataConfig())
    assert [(r["item"], r["label"]) for r in rows] == [("caf\u00e9 au lait", 0), ("second", 1)]
    p = tmp_path / "latin1.csv"
    p.write_bytes("text,label\nfine,0\ncaf\u00e9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.csv line 3: invalid UTF-8 \(byte 0xe9"):
        read_table(p, DataConfig())


def test_empty_files_name_the_file(tmp_path: Path) -> None:
    for name, content in (("e.jsonl", "\n\n"), ("e.csv", ""), ("h.csv", "text,label\n")):
        p = tmp_path / name
        p.write_text(content)
        with pytest.raises(DataError, match=rf"{name}: no records"):
            read_table(p, DataConfig())


# ------------------------------------------------------------------------------------------ JSON(L)
def test_jsonl_rows_are_named_by_line(tmp_path: Path) -> None:
    rows: list[Any] = [{"text": f"text {i}", "label": i % 2} for i in range(4)]
    p = tmp_path / "missing.jsonl"
    p.write_text("\n" + "".join(json.dumps(r) + "\n" for r in rows) + json.dumps({"text": "no label"}) + "\n")
    with pytest.raises(DataError, match=r"missing.jsonl line 6: no column 'label'"):
        read_table(p, DataConfig())
    for bad, kind in (('"text and label"', "str"), ("5", "int"), ("[1, 2]", "list")):
        p.write_text(json.dumps(rows[0]) + "\n" + bad + "\n")
        with pytest.raises(DataError, match=rf"missing.jsonl line 2: expected a JSON object .* found {kind}"):
            read_table(p, DataConfig())
    p.write_text(json.dumps(rows[0]) + "\n{oops\n")
    with pytest.raises(DataError, match=r"missing.jsonl line 2: not JSON"):
        read_table(p, DataConfig())


def test_json_file_shapes(tmp_path: Path) -> None:
    p = tmp_path / "d.json"
    p.write_text(json.dumps({"rows": [{"text": "a", "label": 0}]}))
    with pytest.raises(DataError, match=r"d.json: .*no 'data' key \(keys: \['rows'\]\)"):
        read_table(p, DataConfig())
    p.write_text(json.dumps({"data": [{"text": "a", "label": 0}, {"text": "b", "label": 3}]}))
    with pytest.raises(DataError, match=r"d.json row 2: unknown label 3"):
        read_table(p, DataConfig())
    p.write_text(json.dumps([{"text": "a", "label": 0}, "b"]))
    with pytest.raises(DataError, match=r"d.json row 2: expected an object"):
        read_table(p, DataConfig())


def test_parquet_rows_count_from_one(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"text": "a", "label": 0}, {"text": " ", "label": 1}]), tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r"t.parquet row 2: empty text"):
        read_table(tmp_path / "t.parquet", DataConfig())


# ------------------------------------------------------------------------------------- texts, labels
def test_empty_and_blank_texts_are_errors(tmp_path: Path) -> None:
    for text in ("", "   \n\t"):
        p = _write_jsonl(tmp_path / "t.jsonl", [{"text": "fine", "label": 0}, {"text": text, "label": 1}])
        with pytest.raises(DataError, match=r"t.jsonl line 2: empty text in column 'text'"):
            read_table(p, DataConfig())


def test_json_booleans_are_not_labels_unless_mapped(tmp_path: Path) -> None:
    p = _write_jsonl(tmp_path / "b.jsonl", [{"text": "a", "label": False}, {"text": "b", "label": True}])
    with pytest.raises(DataError, match=r"b.jsonl line 1: unknown label False \(a JSON boolean\)"):
        read_table(p, DataConfig())
    s = _write_jsonl(tmp_path / "s.jsonl", [{"text": "a", "label": "false"}])
    with pytest.raises(DataError, match=r"s.jsonl line 1: unknown label 'false'"):
        read_table(s, DataConfig())
    # mapped explicitly (as YAML `{true: 1, false: 0}` arrives: 'True' / 'False'), booleans read as mapped
    rows = read_table(p, DataConfig(labels={"True": 1, "False": 0}))
    assert [r["label"] for r in rows] == [0, 1]
    n = _write_jsonl(tmp_path / "n.jsonl", [{"text": "a", "label": None}])
    with pytest.raises(DataError, match=r"n.jsonl line 1: no label in column 'label'"):
        read_table(n, DataConfig())


def test_group_column_errors_name_file_and_line(tmp_path: Path) -> None:
    rows = [{"text": f"t {i}", "label": i % 2, "pair_id": f"p{i // 2}"} for i in range(6)]
    for missing in (None, "", "  "):
        rows[4]["pair_id"] = missing
        p = _write_jsonl(tmp_path / "g.jsonl", rows)
        with pytest.raises(DataError, match=r"g.jsonl line 5: no value in column 'pair_id' \(data.group_by\)"):
            _splits(p, group_by="pair_id")


# ------------------------------------------------------------------------------------------ leakage
def test_dev_file_equal_to_train_is_refused(tmp_path: Path) -> None:
    p = make_text_jsonl(tmp_path / "x.jsonl")
    with pytest.raises(DataError, match=r"48 of 48 dev samples \(100%\) are also in the train split.*is data.dev"):
        _splits(p, dev=str(p))
    with pytest.raises(DataError, match=r"test samples .* are also in the train split"):
        _splits(p, test=str(p), group_by="pair_id")


def test_duplicated_rows_stay_in_one_split(tmp_path: Path) -> None:
    rows = text_rows(12)
    # every row twice, the copies differing only in whitespace; no group_by
    doubled = rows + [dict(r, text=" " + r["text"].replace(" ", "  ") + "\n") for r in rows]
    p = _write_jsonl(tmp_path / "d.jsonl", doubled)
    for seed in range(4):
        s = _splits(p, dev_fraction=0.3, test_fraction=0.2, seed=seed)
        key = {k: {" ".join(r["item"].split()) for r in v} for k, v in s.items()}
        assert not key["train"] & key["dev"] and not key["train"] & key["test"] and not key["dev"] & key["test"]
        assert sum(len(v) for v in s.values()) == 48
    # unique rows keep their former groups (run fingerprints of undup data do not change)
    s = _splits(make_text_jsonl(tmp_path / "u.jsonl", n_pairs=6))
    assert sorted(r["group"] for v in s.values() for r in v) == sorted(f"train:{i}" for i in range(12))


def test_a_few_shared_items_warn_with_examples(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = text_rows(20)
    leak = dict(rows[2], pair_id="other")  # the same human text under a second group
    p = _write_jsonl(tmp_path / "w.jsonl", [*rows, leak])
    hits = 0
    for seed in range(6):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="training.data"):
            s = _splits(p, group_by="pair_id", dev_fraction=0.3, seed=seed)
        split_of = {r["group"]: k for k, v in s.items() for r in v}
        if split_of["other"] != split_of[rows[2]["pair_id"]]:
            hits += 1
            assert "1 of " in caplog.text and "also in the train split" in caplog.text
            assert re.search(r"w.jsonl line (3|41) '.*' \(in train: .*w.jsonl line (41|3)\)", caplog.text)
            assert "group_human_text" in caplog.text
        else:
            assert "also in the" not in caplog.text
    assert hits
    # dev and test given as one file: a warning (no training item is evaluated), not a refusal
    ev = make_text_jsonl(tmp_path / "ev.jsonl", n_pairs=4, seed=7)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="training.data"):
        s = _splits(p, group_by="pair_id", dev=str(ev), test=str(ev))
    assert "8 of 8 test samples (100%) are also in the dev split" in caplog.text and len(s["test"]) == 8


def test_conflicting_labels_are_refused(tmp_path: Path) -> None:
    rows = text_rows(6)
    p = _write_jsonl(tmp_path / "c.jsonl", [*rows, dict(rows[0], label=1, pair_id="q")])
    with pytest.raises(DataError, match=r"1 text\(s\) carry both labels, 0 and 1: .*c.jsonl line 1 .*c.jsonl line 13 \(label 1\)"):
        _splits(p)
    # across files too
    dev = _write_jsonl(tmp_path / "dev.jsonl", [dict(rows[1], label=0)])
    with pytest.raises(DataError, match=r"carry both labels"):
        _splits(make_text_jsonl(tmp_path / "t.jsonl", n_pairs=6), dev=str(dev))


# --------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize(("key", "value", "msg"), [
    ("dev_fraction", -0.3, r"data.dev_fraction = -0.3: expected a fraction"),
    ("dev_fraction", 1.0, r"data.dev_fraction = 1.0: expected a fraction"),
    ("test_fraction", -0.1, r"data.test_fraction = -0.1: expected a fraction"),
    ("test_fraction", float("nan"), r"data.test_fraction = nan"),
    ("max_train", -5, r"data.max_train = -5: expected 0"),
    ("max_dev", -1, r"data.max_dev = -1"),
    ("max_test", -1, r"data.max_test = -1"),
])
def test_split_settings_out_of_range(tmp_path: Path, key: str, value: Any, msg: str) -> None:
    p = make_text_jsonl(tmp_path / "x.jsonl", n_pairs=6)
    with pytest.raises(DataError, match=msg):
        _splits(p, **{key: value})


def test_split_setting_combinations(tmp_path: Path) -> None:
    p = make_text_jsonl(tmp_path / "x.jsonl", n_pairs=6)
    with pytest.raises(DataError, match=r"sum must be below 1"):
        _splits(p, dev_fraction=0.6, test_fraction=0.5)
    other = make_text_jsonl(tmp_path / "o.jsonl", n_pairs=4, seed=1)
    with pytest.raises(DataError, match=r"data.holdout_column .* and data.test .* set one of them"):
        _splits(p, holdout_column="domain", holdout_values=["news"], test=str(other))
    with pytest.raises(DataError, match=r"data.holdout_values \['news'\] is set but data.holdout_column is empty"):
        _splits(p, holdout_values=["news"])


def test_given_sources_that_hold_nothing(tmp_path: Path) -> None:
    p = make_text_jsonl(tmp_path / "x.jsonl", n_pairs=6)
    other = _write_jsonl(tmp_path / "blog.jsonl", [dict(r, domain="blog") for r in text_rows(4, seed=1)])
    with pytest.raises(DataError, match=r"data.test '.*blog.jsonl': none of its 8 samples passes data.include"):
        _splits(p, test=str(other), include={"domain": ["news"]})
    (tmp_path / "empty.jsonl").write_text("")
    for key in ("dev", "test"):
        with pytest.raises(DataError, match=r"empty.jsonl: no records \(the file is empty\)"):
            _splits(p, **{key: str(tmp_path / "empty.jsonl")})


# ------------------------------------------------------------------------------------------ images
def test_image_folder_counts_skipped_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_image_folder(tmp_path / "img", n_per_class=2, size=8)
    (root / "real" / "a.heic").write_bytes(b"x")
    (root / "ai" / "gan" / "notes.txt").write_text("x")
    (root / "ai" / "gan" / "b.avif").write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="training.data"):
        rows = read_image_folder(root)
    assert len(rows) == 4
    assert "skipped 3 files" in caplog.text and ".heic: 1" in caplog.text and ".txt: 1" in caplog.text


def test_image_copies_are_found_by_content(tmp_path: Path) -> None:
    import shutil

    root = make_image_folder(tmp_path / "img", n_per_class=4, size=8)
    shutil.copytree(root, tmp_path / "copy")
    with pytest.raises(DataError, match=r"8 of 8 dev samples \(100%\) are also in the train split \(same image content\)"):
        make_splits(DataConfig(train=str(root), dev=str(tmp_path / "copy")), "image")
    # a real image copied into ai/: one image, two labels
    shutil.copy(root / "real" / "000.png", root / "ai" / "gan" / "copied.png")
    with pytest.raises(DataError, match=r"1 image\(s\) carry both labels"):
        make_splits(DataConfig(train=str(root), dev_fraction=0.25), "image")


def test_training_image_decode_errors_name_the_file(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from training.loop import _load_image

    bad = tmp_path / "empty.jpg"
    bad.write_bytes(b"")
    with pytest.raises(DataError, match=r"training image .*empty.jpg: "):
        _load_image({"item": str(bad), "label": 0}, SimpleNamespace(spec=None))  # type: ignore[arg-type]
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match=r"training image .*empty.jpg: "):
        _load_image({"item": str(bad), "label": 0}, SimpleNamespace(spec=None))  # type: ignore[arg-type]


def test_a_few_conflicting_labels_are_left_out_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # one text among 121 with both labels (as public continuation sets hold a few): left out, not a refusal
    p = make_text_jsonl(tmp_path / "t.jsonl", n_pairs=60)
    rows = [json.loads(line) for line in p.read_text().splitlines()]
    p.write_text("".join(json.dumps(r) + "\n" for r in [*rows, dict(rows[0], label=1 - rows[0]["label"], pair_id="q")]))
    with caplog.at_level(logging.WARNING, logger="training.data"):
        s = _splits(p)
    assert "1 text(s) carry both labels" in caplog.text and "left out of every split (2 of 121 samples" in caplog.text
    texts = [r["item"] for split in s.values() for r in split]
    assert rows[0]["text"] not in texts and len(texts) == 119
