"""tinyBenchmarks (tinyGSM8K, tinyMMLU) normalised to the embedded utility-task shapes.

- arithmetic tasks: ``id, question, answer (int), steps (int: reasoning steps)``; tinyGSM8K adds
  ``solution`` (the worked solution text before ``####``);
- multiple-choice tasks: ``id, question, choices (list of 4), answer (letter), subject``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pandas as pd

from .hub import DatasetUnavailableError, hub_snapshot, short_error
from .schemas import CHOICE_LETTERS
from .tables import DataValidationError, read_table, require_columns, table_files

ARITHMETIC_COLUMNS = ("id", "question", "answer", "steps")
MULTIPLE_CHOICE_COLUMNS = ("id", "question", "choices", "answer", "subject")
HUB_TINY_GSM8K = "tinyBenchmarks/tinyGSM8k"
HUB_TINY_MMLU = "tinyBenchmarks/tinyMMLU"


_GSM8K_SEP = "####"


def parse_gsm8k_answer(answer: str) -> tuple[int, str]:
    """'worked solution ... #### 1,234' -> (1234, 'worked solution ...'). The final answer must be
    an integer (GSM8K's always are)."""
    if not isinstance(answer, str) or _GSM8K_SEP not in answer:
        raise DataValidationError(f"GSM8K answer without '{_GSM8K_SEP}': {answer!r:.80}")
    steps, final = answer.rsplit(_GSM8K_SEP, 1)
    cleaned = re.sub(r"[,\s$]", "", final)
    try:
        value = float(cleaned)
    except ValueError:
        raise DataValidationError(f"GSM8K final answer is not a number: {final.strip()!r}") from None
    if not math.isfinite(value) or value != int(value):
        raise DataValidationError(f"GSM8K final answer is not an integer: {final.strip()!r}")
    return int(value), steps.strip()


def normalize_tiny_gsm8k(df: pd.DataFrame, *, id_prefix: str = "tinygsm8k") -> pd.DataFrame:
    """tinyGSM8K rows (question, answer 'solution #### n') -> ``id, question, answer (int), steps,
    solution``: the embedded arithmetic shape, ``steps`` counting the solution's non-empty lines
    (GSM8K writes one reasoning step per line), plus the solution text for few-shot prompts."""
    require_columns(df, ("question", "answer"), "tinyGSM8K")
    parsed = [parse_gsm8k_answer(a) for a in df["answer"]]
    return pd.DataFrame(
        {
            "id": [f"{id_prefix}-{i}" for i in range(len(df))],
            "question": df["question"].astype(object).to_numpy(),
            "answer": pd.array([p[0] for p in parsed], dtype="int64"),
            "steps": pd.array(
                [max(1, sum(1 for ln in p[1].splitlines() if ln.strip())) for p in parsed], dtype="int64"
            ),
            "solution": [p[1] for p in parsed],
        }
    )


def normalize_tiny_mmlu(df: pd.DataFrame, *, id_prefix: str = "tinymmlu") -> pd.DataFrame:
    """tinyMMLU rows (question, choices, answer index 0-3, subject) -> ``id, question, choices,
    answer (letter A-D), subject``."""
    require_columns(df, ("question", "choices", "answer"), "tinyMMLU")
    choices = [[str(x) for x in c] for c in df["choices"]]
    bad = [i for i, c in enumerate(choices) if len(c) != 4]
    if bad:
        raise DataValidationError(f"tinyMMLU: rows {bad[:5]} do not have exactly 4 choices")
    letters = []
    for i, a in enumerate(df["answer"]):
        if isinstance(a, str) and a.strip().upper() in CHOICE_LETTERS:
            letters.append(a.strip().upper())
            continue
        try:
            idx = int(a)
        except (TypeError, ValueError):
            idx = -1
        if not 0 <= idx < 4:
            raise DataValidationError(f"tinyMMLU: row {i}: answer {a!r} is not an index 0-3")
        letters.append(CHOICE_LETTERS[idx])
    subject = df["subject"].astype(object).to_numpy() if "subject" in df.columns else [""] * len(df)
    return pd.DataFrame(
        {
            "id": [f"{id_prefix}-{i}" for i in range(len(df))],
            "question": df["question"].astype(object).to_numpy(),
            "choices": choices,
            "answer": letters,
            "subject": subject,
        }
    )


def _pick_split_files(root: Path, split: str, config: str | None) -> list[Path]:
    files = table_files(root)
    if config:
        in_config = [f for f in files if config in f.relative_to(root).parts]
        files = in_config or files
    return [f for f in files if f.name.startswith(split) or f.parent.name == split]


def _load_hub_table(
    repo_id: str,
    config: str | None,
    split: str,
    *,
    how_to_provide: str,
    revision: str | None,
    cache_dir: str | os.PathLike | None,
) -> pd.DataFrame:
    """A hub dataset split as a frame: ``datasets`` when installed, else the repo's table files."""
    reasons = []
    try:
        import datasets  # optional
    except ImportError:
        datasets = None
    if datasets is not None:
        try:
            ds = datasets.load_dataset(repo_id, config, split=split, revision=revision, cache_dir=cache_dir)
            return ds.to_pandas()
        except Exception as exc:
            reasons.append(f"datasets: {short_error(exc)}")
    try:
        patterns = [f"{config}/*"] if config else []
        patterns += ["*.parquet", "data/*"]
        root = hub_snapshot(repo_id, patterns, revision=revision, cache_dir=cache_dir, how_to_provide=how_to_provide)
    except DatasetUnavailableError as exc:
        reasons.append(exc.reason)
        raise DatasetUnavailableError(repo_id, "; ".join(reasons), how_to_provide) from None
    files = _pick_split_files(root, split, config)
    if not files:
        raise DatasetUnavailableError(repo_id, f"no '{split}' table files in the snapshot {root}", how_to_provide)
    return pd.concat([read_table(f) for f in files], ignore_index=True)


def _load_local_split(path: Path, split: str, config: str | None) -> pd.DataFrame:
    if path.is_file():
        return read_table(path)
    if path.is_dir():
        files = _pick_split_files(path, split, config) or table_files(path)
        if not files:
            raise DataValidationError(f"{path}: no table files")
        return pd.concat([read_table(f) for f in files], ignore_index=True)
    raise FileNotFoundError(f"{path}: not found")


def _tiny_raw(path, repo_id: str, config: str, split: str, revision, cache_dir, loader: str) -> pd.DataFrame:
    if path is not None:
        return _load_local_split(Path(path), split, config)
    return _load_hub_table(
        repo_id,
        config,
        split,
        revision=revision,
        cache_dir=cache_dir,
        how_to_provide=f"{loader}('path/to/{repo_id.split('/')[-1]} {split} parquet/jsonl')",
    )


def load_tiny_gsm8k(
    path: str | os.PathLike | None = None,
    *,
    repo_id: str = HUB_TINY_GSM8K,
    config: str = "main",
    split: str = "test",
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """tinyGSM8K (100 items) normalised to ``id, question, answer (int), steps (int), solution``
    like the embedded arithmetic tasks. ``path``: a local table file or folder (e.g. a hub snapshot)."""
    return normalize_tiny_gsm8k(_tiny_raw(path, repo_id, config, split, revision, cache_dir, "load_tiny_gsm8k"))


def load_tiny_mmlu(
    path: str | os.PathLike | None = None,
    *,
    repo_id: str = HUB_TINY_MMLU,
    config: str = "all",
    split: str = "test",
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """tinyMMLU (100 items) normalised to ``id, question, choices, answer (A-D), subject`` like the
    embedded multiple-choice tasks. ``path``: a local table file or folder."""
    return normalize_tiny_mmlu(_tiny_raw(path, repo_id, config, split, revision, cache_dir, "load_tiny_mmlu"))
