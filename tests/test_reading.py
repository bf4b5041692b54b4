"""The yes/no reading task: the embedded file, its generator, the prompt and answer parser, and
BoolQ in each of its real formats (small files written here; the hub is never contacted)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from test_data import make_hf_cache, no_network  # noqa: F401  (no_network: an autouse fixture, offline here too)

from prosv import data as D

REPO_DATA = Path(__file__).resolve().parents[1] / "data"
READING = REPO_DATA / "tasks" / "reading.jsonl"


# ------------------------------------------------------------------------------------------
# the embedded file


def test_embedded_reading_file():
    items = D.embedded_reading()
    assert len(items) >= 200 and all(isinstance(it, D.ReadingItem) for it in items)
    assert len({it.id for it in items}) == len(items)
    assert [it.id for it in items] == [f"reading-{i}" for i in range(len(items))]  # ids 0.. without gaps
    by_split = {s: [it for it in items if it.split == s] for s in D.READING_SPLITS}
    assert {s: len(v) for s, v in by_split.items()} == {"train": 160, "test": 80}
    for split, rows in by_split.items():
        answers = Counter(it.answer for it in rows)
        assert answers[True] == answers[False] == len(rows) // 2, (split, answers)
    assert not {it.id for it in by_split["train"]} & {it.id for it in by_split["test"]}
    assert not {it.passage for it in by_split["train"]} & {it.passage for it in by_split["test"]}
    for it in items:
        assert it.question.endswith("?") and it.question[0].isupper(), it
        assert 40 <= len(it.passage.split()) <= 120, it
        assert type(it.answer) is bool
    assert [it.id for it in D.embedded_reading("test")] == [it.id for it in by_split["test"]]


def test_embedded_reading_bad_split():
    with pytest.raises(ValueError, match=r"one of \('train', 'test'\).*'validation'"):
        D.embedded_reading("validation")


def test_generator_rewrites_the_file_byte_for_byte(tmp_path):
    out = tmp_path / "reading.jsonl"
    script = REPO_DATA / "tasks" / "build_reading.py"
    done = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == READING.read_bytes()


def copy_data(tmp_path) -> Path:
    root = tmp_path / "data"
    (root / "tasks").mkdir(parents=True)
    shutil.copy(READING, root / "tasks" / "reading.jsonl")
    return root


def break_line(path: Path, lineno: int, **changes) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    rec = json.loads(lines[lineno - 1])
    for key, value in changes.items():
        if value is ...:
            del rec[key]
        else:
            rec[key] = value
    lines[lineno - 1] = json.dumps(rec) + "\n"
    path.write_text("".join(lines), encoding="utf-8")


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"answer": "yes"}, "key 'answer' should be true or false"),
        ({"answer": 1}, "key 'answer' should be true or false"),
        ({"question": "Is it red"}, "key 'question' should be a question ending in '?'"),
        ({"split": "dev"}, "key 'split' should be one of ['train', 'test']"),
        ({"passage": ...}, "missing key(s) ['passage']"),
        ({"id": "7"}, "key 'id' should be a non-negative integer"),
    ],
)
def test_broken_embedded_line_names_file_line_and_key(tmp_path, monkeypatch, changes, needle):
    root = copy_data(tmp_path)
    path = root / "tasks" / "reading.jsonl"
    break_line(path, 5, **changes)
    with pytest.raises(D.DataValidationError) as err:
        D.embedded_reading(data_dir=root)
    msg = str(err.value)
    assert str(path) in msg and "line 5:" in msg and needle in msg, msg
    monkeypatch.setenv("PROSV_DATA_DIR", str(root))  # the default data folder follows the variable
    with pytest.raises(D.DataValidationError, match="line 5:"):
        D.embedded_reading()


def test_duplicate_embedded_id(tmp_path):
    root = copy_data(tmp_path)
    break_line(root / "tasks" / "reading.jsonl", 3, id=0)
    with pytest.raises(D.DataValidationError, match=r"(?s)duplicate id.*0 \(lines 1 and 3\)"):
        D.embedded_reading(data_dir=root)


# ------------------------------------------------------------------------------------------
# prompt, target and parser


def test_prompt_and_target():
    item = D.ReadingItem("x-0", "The pump was blue.", "Was the pump blue?", True, "test")
    prompt = D.reading_prompt(item, instruction=True)
    assert prompt.index(item.passage) < prompt.index(item.question) < prompt.index("yes or no")
    assert prompt.rstrip().endswith("Answer with one word: yes or no.")
    bare = D.reading_prompt(item)
    assert bare.endswith(item.question) and "yes or no" not in bare
    assert (D.answer_text(True), D.answer_text(False)) == ("Yes", "No")
    with pytest.raises(TypeError):
        D.answer_text("no")
    with pytest.raises(TypeError):
        D.parse_answer(None)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Yes", True),
        ("no", False),
        ("YES", True),
        ("  No.", False),
        ("Yes, it was.", True),
        ("No, the passage says otherwise.", False),
        ("yes!", True),
        ("No;", False),
        ("**Yes**", True),
        ("*no*", False),
        ('"Yes"', True),
        ("'no'", False),
        ("\u201cYes\u201d", True),
        ("`No`", False),
        ("```\nyes\n```", True),
        ("- Yes", True),
        ("> No", False),
        ("## Yes", True),
        ("\n\nNo\n\nBecause the flood wall...", False),
        ("...yes", True),
        ("Yes\tbecause", True),
        ("", None),
        ("   ", None),
        ("**", None),
        ("Maybe", None),
        ("The answer is yes", None),
        ("Answer: Yes", None),
        ("Yesterday it was.", None),
        ("Nope", None),
        ("None of them", None),
        ("Noah did", None),
        ("No-one knows", None),
        ("Yes's", None),
        ("No\u2019s", None),
        ("yes\u2019", True),
        ("No-", False),
        ("Y", None),
        ("1. Yes", None),
        ("I think no", None),
        ("Oui", None),
    ],
)
def test_parse_answer(text, expected):
    assert D.parse_answer(text) is expected


# ------------------------------------------------------------------------------------------
# BoolQ in its real formats

ROWS = [
    {"question": "is the harbour wall made of stone", "answer": True, "passage": "The harbour wall is stone."},
    {"question": "does the ferry run on sundays", "answer": False, "passage": "The ferry rests on Sundays."},
    {"question": "Can a heron fly?", "answer": True, "passage": "  Herons fly low over water.  "},
]
EXPECTED = [("Is the harbour wall made of stone?", True), ("Does the ferry run on sundays?", False)]
EXPECTED += [("Can a heron fly?", True)]


def check_items(items, split, rows=ROWS):
    assert [it.id for it in items] == [f"boolq-{split}-{i}" for i in range(len(items))]
    assert [(it.question, it.answer) for it in items] == EXPECTED[: len(items)]
    assert [it.passage for it in items] == [r["passage"].strip() for r in rows[: len(items)]]
    assert all(it.split == split and type(it.answer) is bool for it in items)


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_boolq_hub_parquet_layout(tmp_path):
    """google/boolq: data/{train,validation}-00000-of-00001.parquet with question, answer, passage."""
    root = tmp_path / "boolq"
    (root / "data").mkdir(parents=True)
    pd.DataFrame(ROWS).to_parquet(root / "data" / "validation-00000-of-00001.parquet", index=False)
    pd.DataFrame(ROWS[:1] * 4).to_parquet(root / "data" / "train-00000-of-00001.parquet", index=False)
    check_items(D.load_boolq(root), "validation")
    check_items(D.load_boolq(root, split="validation", limit=2), "validation")
    assert len(D.load_boolq(root, split="train")) == 4 and D.load_boolq(root, limit=0) == []
    check_items(D.load_boolq(root / "data" / "validation-00000-of-00001.parquet"), "validation")


def test_boolq_original_jsonl_release(tmp_path):
    """The original release: train.jsonl and dev.jsonl with question, title, answer, passage."""
    rows = [
        {"question": r["question"], "title": "harbour", "answer": r["answer"], "passage": r["passage"]} for r in ROWS
    ]
    write_jsonl(tmp_path / "release" / "dev.jsonl", rows)
    write_jsonl(tmp_path / "release" / "train.jsonl", rows[::-1])
    check_items(D.load_boolq(tmp_path / "release"), "validation", rows)
    check_items(D.load_boolq(tmp_path / "release", split="dev"), "validation", rows)
    check_items(D.load_boolq(str(tmp_path / "release" / "dev.jsonl"), split="validation"), "validation", rows)
    assert [it.answer for it in D.load_boolq(tmp_path / "release", split="train")] == [True, False, True]


def test_boolq_super_glue_labels(tmp_path):
    """super_glue/boolq rows: question, passage, idx, label (1 = true, 0 = false)."""
    rows = [
        {"question": r["question"], "passage": r["passage"], "idx": i, "label": int(r["answer"])}
        for i, r in enumerate(ROWS)
    ]
    root = tmp_path / "super_glue"
    (root / "boolq").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(root / "boolq" / "validation-00000-of-00001.parquet", index=False)
    check_items(D.load_boolq(root), "validation", rows)
    check_items(D.load_boolq(write_jsonl(tmp_path / "val.jsonl", rows)), "validation", rows)
    test_rows = [dict(r, label=-1) for r in rows]
    with pytest.raises(D.DataValidationError, match=r"row 0: 'label' .*no labels"):
        D.load_boolq(write_jsonl(tmp_path / "test.jsonl", test_rows))


@pytest.mark.parametrize("drop, needle", [("passage", "missing column(s) ['passage']"), ("answer", "'answer'")])
def test_boolq_missing_column_names_file_and_column(tmp_path, drop, needle):
    path = tmp_path / "validation.parquet"
    pd.DataFrame(ROWS).drop(columns=[drop]).to_parquet(path, index=False)
    with pytest.raises(D.DataValidationError) as err:
        D.load_boolq(path)
    msg = str(err.value)
    assert str(path) in msg and needle in msg and "\n" not in msg, msg


def test_boolq_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        D.load_boolq(tmp_path / "nope.parquet")
    with pytest.raises(ValueError, match=r"one of \('train', 'validation'\)"):
        D.load_boolq(tmp_path, split="test")
    with pytest.raises(D.DataValidationError, match="no BoolQ 'validation' file"):
        D.load_boolq(tmp_path)
    write_jsonl(tmp_path / "dev.jsonl", ROWS)
    pd.DataFrame(ROWS).to_parquet(tmp_path / "validation.parquet")
    with pytest.raises(D.DataValidationError, match="several BoolQ 'validation' files"):
        D.load_boolq(tmp_path)
    bad = write_jsonl(tmp_path / "x" / "dev.jsonl", [dict(ROWS[0], answer="perhaps")])
    with pytest.raises(D.DataValidationError, match=r"row 0: 'answer' should be true/false"):
        D.load_boolq(bad)


def test_boolq_from_the_hub_cache_and_offline_error(tmp_path):
    parquet = tmp_path / "v.parquet"
    pd.DataFrame(ROWS).to_parquet(parquet, index=False)
    cache = tmp_path / "hf"
    make_hf_cache(cache, D.HUB_BOOLQ, {"data/validation-00000-of-00001.parquet": parquet.read_bytes()})
    check_items(D.load_boolq(cache_dir=cache), "validation")
    with pytest.raises(D.DatasetUnavailableError, match="no BoolQ 'train' file"):
        D.load_boolq(split="train", cache_dir=cache)
    with pytest.raises(D.DatasetUnavailableError) as err:
        D.load_boolq(cache_dir=tmp_path / "empty")
    msg = str(err.value)
    assert D.HUB_BOOLQ in msg and "offline" in msg and "load_boolq('path/to/" in msg
