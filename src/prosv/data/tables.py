"""Reading public data tables: parquet, JSON, JSON Lines or CSV, with errors that name the file."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd


class DataValidationError(ValueError):
    """A data file exists but does not have the shape we expect."""


def read_table(path: Path) -> pd.DataFrame:
    """Read .parquet, .json (array or lines), .jsonl or .csv into a frame with a RangeIndex. A file
    that is missing, empty or not of its type raises an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".json", ".jsonl", ".csv"):
        raise DataValidationError(f"{path}: unsupported file type '{suffix}' (use parquet, json, jsonl or csv)")
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path}: file is empty")
    try:
        df = _parse_table(path, suffix)
    except DataValidationError:
        raise
    except Exception as err:  # each reader has its own errors (pyarrow, json, csv, unicode); all mean the same
        problem = " ".join(str(err).split())[:200]
        raise DataValidationError(
            f"{path}: not a readable {suffix[1:]} file ({type(err).__name__}: {problem})"
        ) from None
    if df.empty:
        raise DataValidationError(f"{path}: no rows")
    return df.reset_index(drop=True)


def _parse_table(path: Path, suffix: str) -> pd.DataFrame:
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path)
    with path.open(encoding="utf-8") as fh:
        head = fh.read(4096).lstrip()
    if not head:
        raise DataValidationError(f"{path}: file is empty")
    if head.startswith("["):
        with path.open(encoding="utf-8") as fh:
            return pd.DataFrame.from_records(json.load(fh))
    return pd.read_json(path, lines=True, dtype=False)


def require_columns(df: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(f"{where}: missing column(s) {missing}; found {list(df.columns)}")


_TABLE_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")


def table_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _TABLE_SUFFIXES and not p.name.startswith(".")
    )


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def nonempty_str(v) -> bool:
    return isinstance(v, str) and v.strip() != ""


def json_lines(path: Path):
    """(line number, record or None, problem or None) for each non-blank line of a JSON Lines file."""
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line), None
            except json.JSONDecodeError as exc:
                yield lineno, None, f"line {lineno}: not valid JSON ({exc.msg})"
