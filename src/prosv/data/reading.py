"""A yes/no reading task for task steering: our embedded passages and real BoolQ, as one item type.

- :func:`embedded_reading`: ``data/tasks/reading.jsonl`` (fictional passages written for this
  project, so only the passage can answer the question), split 'train' or 'test';
- :func:`load_boolq`: BoolQ from a local file or folder, or from the Hugging Face Hub through
  :mod:`.hub` (offline-aware, one cache). Formats: ``google/boolq`` parquet (question, answer,
  passage), the original jsonl release (``train.jsonl``/``dev.jsonl``: question, title, answer,
  passage) and super_glue rows with ``label`` 0/1 instead of ``answer``;
- :func:`reading_prompt`, :func:`answer_text`, :func:`parse_answer`: the one user message, the
  training target, and the strict reading of a model's reply (None is a format failure, counted
  apart from a wrong answer).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .embedded import default_data_dir, read_reading
from .hub import DatasetUnavailableError, hub_snapshot
from .tables import DataValidationError, nonempty_str, read_table, require_columns, table_files

HUB_BOOLQ = "google/boolq"
BOOLQ_SPLITS = ("train", "validation")
# file-name stems of each split: the hub's 'validation-00000-of-00001', the original release's 'dev'
_BOOLQ_STEMS = {"train": ("train",), "validation": ("validation", "dev", "val")}
_BOOLQ_ALIASES = {"dev": "validation", "val": "validation"}

_PROMPT = "Passage: {passage}\n\nQuestion: {question}"
# off by default: without it the answer format is part of what a trained arm must learn (the blog's
# unsteered BoolQ accuracy, 38%, is below what answering yes/no at random gets)
_INSTRUCTION = "\n\nAnswer with one word: yes or no."


@dataclass(frozen=True)
class ReadingItem:
    id: str
    passage: str
    question: str
    answer: bool
    split: str


def embedded_reading(split: str | None = None, data_dir: str | os.PathLike | None = None) -> list[ReadingItem]:
    """The embedded reading items (``split`` 'train', 'test' or None for both), schema-checked;
    ids are 'reading-{id}'. ``data_dir`` defaults to ``$PROSV_DATA_DIR`` or ``data/``."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    df = read_reading(root / "tasks" / "reading.jsonl", split=split)
    return [
        ReadingItem(f"reading-{int(r.id)}", r.passage, r.question, bool(r.answer), r.split)
        for r in df.itertuples(index=False)
    ]


def load_boolq(
    source: str | Path = HUB_BOOLQ,
    split: str = "validation",
    limit: int | None = None,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> list[ReadingItem]:
    """Real BoolQ as reading items, in file order, ids 'boolq-{split}-{row}'; ``limit`` keeps the
    first rows. ``source``: a local table file (parquet, jsonl, json, csv), a folder holding the
    split's files (a hub snapshot or the original release), or a hub dataset id. ``split``:
    'train' or 'validation' ('dev' is the original release's name for it)."""
    split = _BOOLQ_ALIASES.get(split, split)
    if split not in BOOLQ_SPLITS:
        raise ValueError(f"split must be one of {BOOLQ_SPLITS}, got {split!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be None or a non-negative number of rows, got {limit!r}")
    path = Path(source).expanduser()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = _boolq_split_files(path, split)
    elif _looks_like_path(str(source)):
        raise FileNotFoundError(f"{path}: not found (a local copy of BoolQ, or give a hub id like '{HUB_BOOLQ}')")
    else:
        files = _boolq_hub_files(str(source), split, revision, cache_dir)
    items: list[ReadingItem] = []
    for file in files:
        wanted = None if limit is None else limit - len(items)
        if wanted == 0:
            break
        items += _boolq_items(read_table(file), str(file), split, start=len(items), limit=wanted)
    return items


def _boolq_hub_files(repo_id: str, split: str, revision: str | None, cache_dir) -> list[Path]:
    """The split's files from a hub snapshot: google/boolq's data/, super_glue's boolq/, or jsonl."""
    how = f"load_boolq('path/to/boolq folder or {split} parquet/jsonl file')"
    patterns = [f"data/{split}-*", f"boolq/{split}-*", f"{split}-*"]
    patterns += [f"{stem}.jsonl" for stem in _BOOLQ_STEMS[split]]
    root = hub_snapshot(repo_id, patterns, revision=revision, cache_dir=cache_dir, how_to_provide=how)
    try:
        return _boolq_split_files(root, split)
    except DataValidationError as exc:
        raise DatasetUnavailableError(repo_id, str(exc), how) from None


def _looks_like_path(source: str) -> bool:
    """A hub id is 'owner/name' (or a bare name); anything else that does not exist is a missing path."""
    return (
        source.count("/") > 1
        or source.startswith((".", "/", "~"))
        or "\\" in source
        or Path(source).suffix.lower() in (".parquet", ".jsonl", ".json", ".csv")
    )


def _boolq_split_files(root: Path, split: str) -> list[Path]:
    """The table files of one split in a folder: names starting with the split's stem, all in one
    folder and of one type (shards of one file are read in order)."""
    stems = _BOOLQ_STEMS[split]
    found = [f for f in table_files(root) if any(re.match(rf"{s}(\.|-|_|$)", f.name.lower()) for s in stems)]
    if not found:
        raise DataValidationError(f"{root}: no BoolQ '{split}' file (looked for names starting with {list(stems)})")
    if len({(f.parent, f.suffix.lower()) for f in found}) > 1:
        shown = [str(f.relative_to(root)) for f in found]
        raise DataValidationError(f"{root}: several BoolQ '{split}' files {shown}; pass the one to read")
    return found


def _boolq_items(df: pd.DataFrame, where: str, split: str, *, start: int, limit: int | None) -> list[ReadingItem]:
    require_columns(df, ("question", "passage"), where)
    column = next((c for c in ("answer", "label") if c in df.columns), None)
    if column is None:
        raise DataValidationError(
            f"{where}: missing column 'answer' (or super_glue's 'label'); found {list(df.columns)}"
        )
    if limit is not None:
        df = df.head(limit)
    items = []
    for row, (question, passage, value) in enumerate(zip(df["question"], df["passage"], df[column])):
        for name, text in (("question", question), ("passage", passage)):
            if not nonempty_str(text):
                raise DataValidationError(f"{where}: row {row}: '{name}' is empty or not text ({text!r:.60})")
        ident = f"boolq-{split}-{start + row}"
        items.append(
            ReadingItem(ident, passage.strip(), _as_question(question), _as_bool(value, where, row, column), split)
        )
    return items


def _as_question(text: str) -> str:
    """BoolQ writes 'is the sky blue': capitalise it and end it with '?' like our own items."""
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith("?") else text + "?"


def _as_bool(value, where: str, row: int, column: str) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    hint = " (super_glue's test split has no labels)" if column == "label" and value == -1 else ""
    raise DataValidationError(f"{where}: row {row}: '{column}' should be true/false or 0/1, got {value!r:.40}{hint}")


def reading_prompt(item: ReadingItem, instruction: bool = False) -> str:
    """The single user message: the passage and the question, and with `instruction` a request to
    answer with one word, yes or no."""
    return _PROMPT.format(passage=item.passage, question=item.question) + (_INSTRUCTION if instruction else "")


def answer_text(answer: bool) -> str:
    """The target response used for training: 'Yes' or 'No'."""
    if not isinstance(answer, bool | np.bool_):
        raise TypeError(f"answer must be a bool, got {answer!r}")
    return "Yes" if answer else "No"


# what may come before the first word: whitespace, quotes, markdown (emphasis, headings, quotes,
# bullets, code fences) and punctuation
_LEADING = " \t\r\n\"'`*_~#>-+.,:;!?()[]{}\u201c\u201d\u2018\u2019\u00ab\u00bb\u2022"
# yes/no as a whole word: 'Yes.' and 'No,' count, 'Yesterday', 'No-one' and "No's" do not
_FIRST_WORD = re.compile(r"(yes|no)(?!\w|['\u2019-]\w)", re.IGNORECASE)


def parse_answer(text: str) -> bool | None:
    """True for a reply whose first word is yes, False for no, None for anything else (a format
    failure: empty, 'Maybe', 'The answer is yes', 'Yesterday'). Case-insensitive; leading
    whitespace, quotes, markdown and punctuation are skipped, trailing punctuation is allowed."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    match = _FIRST_WORD.match(text.lstrip(_LEADING))
    if match is None:
        return None
    return match.group(1).lower() == "yes"
