"""The embedded data we ship in ``data/`` (or ``$PROSV_DATA_DIR``), schema-checked JSON Lines.

=====================================  ==========================================================
file                                   keys (type)
=====================================  ==========================================================
``concepts.jsonl``                     concept_id (int), concept (str), genre (text/code/math),
                                       split (dev/eval), keywords (list of str),
                                       steering_instruction (str), suppression_instruction (str)
``instructions/{train,eval}.jsonl``    instruction_id (int or str), instruction (str)
``concepts/exemplars.jsonl``           concept_id (int), instruction (str), response (str)
``utility/arithmetic.jsonl``           id (int or str), question (str), answer (int), steps (int)
``utility/multiple_choice.jsonl``      id (int or str), question (str), choices (4 str),
                                       answer (A-D), subject (str)
``tasks/reading.jsonl``                id (int), passage (str), question (str ending in '?'),
                                       answer (bool), split (train/test)
=====================================  ==========================================================

Readers check every line against the table's JSON Schema (:mod:`.schemas`) and raise
:class:`DataValidationError` naming the file, the line and the problem (missing key, wrong type,
empty file, duplicate id). Extra keys are kept as extra columns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pandas as pd

from .schemas import CONCEPT_SPLITS, READING_SPLITS, TABLES, TableSpec
from .tables import DataValidationError, json_lines

_MAX_REPORTED = 10


def default_data_dir() -> Path:
    """``$PROSV_DATA_DIR`` if set, else ``data/`` at the repository root (next to ``src/``)."""
    env = os.environ.get("PROSV_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "data"


def _problems(record, validator) -> list[str]:
    """The schema violations of one record, in the words of the schema's descriptions."""
    if not isinstance(record, dict):
        return [f"expected a JSON object, got {type(record).__name__}"]
    out = []
    missing = [k for k in validator.schema["required"] if k not in record]
    if missing:
        out.append(f"missing key(s) {missing}")
    for err in sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path)):
        if err.validator == "required":
            continue
        key = err.absolute_path[0] if err.absolute_path else None
        if key is None:
            out.append(err.message)
            continue
        expected = validator.schema["properties"][key].get("description", err.message)
        problem = f"key '{key}' should be {expected}, got {record[key]!r:.80}"
        if problem not in out:
            out.append(problem)
    return out


def _check_table(path: Path, records: list[dict], linenos: list[int], spec: TableSpec) -> None:
    """What one record cannot say: one id type per column, unique keys."""
    for col in spec.id_columns:
        kinds = {type(r[col]).__name__ for r in records}
        if len(kinds) > 1:
            raise DataValidationError(f"{path}: key '{col}' mixes types {sorted(kinds)}")
    if not spec.unique:
        return
    seen: dict[tuple, int] = {}
    dups: list[str] = []
    for rec, lineno in zip(records, linenos):
        key = tuple(json.dumps(rec[k], sort_keys=True) for k in spec.unique)
        if key in seen:
            shown = rec[spec.unique[0]] if len(key) == 1 else tuple(rec[k] for k in spec.unique)
            dups.append(f"{shown!r:.120} (lines {seen[key]} and {lineno})")
        else:
            seen[key] = lineno
    if dups:
        what = spec.unique[0] if len(spec.unique) == 1 else "(" + ", ".join(spec.unique) + ")"
        shown = "\n  ".join(dups[:_MAX_REPORTED])
        raise DataValidationError(f"{path}: duplicate {what}: {len(dups)} duplicate(s):\n  {shown}")


def read_jsonl_table(path: str | os.PathLike, table: TableSpec | str) -> pd.DataFrame:
    """Read a JSON Lines file and check it against a table's schema (a :class:`TableSpec` or a key of
    ``TABLES``). Blank lines are skipped. Schema columns come first, extra keys after them."""
    spec = TABLES[table] if isinstance(table, str) else table
    validator = jsonschema.Draft202012Validator(spec.schema)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    records, linenos, problems = [], [], []
    for lineno, rec, bad in json_lines(path):
        found = [bad] if bad else [f"line {lineno}: {p}" for p in _problems(rec, validator)]
        problems += found
        if not found:
            records.append(rec)
            linenos.append(lineno)
    if problems:
        shown = "\n  ".join(problems[:_MAX_REPORTED])
        more = f"\n  ... and {len(problems) - _MAX_REPORTED} more" if len(problems) > _MAX_REPORTED else ""
        raise DataValidationError(f"{path}: {len(problems)} problem(s):\n  {shown}{more}")
    if not records:
        raise DataValidationError(f"{path}: file is empty (no JSON records)")
    _check_table(path, records, linenos, spec)
    df = pd.DataFrame.from_records(records)
    df = df[spec.names + [c for c in df.columns if c not in spec.names]]
    for name in spec.int_columns:
        df[name] = df[name].astype("int64")
    return df


def _embedded_path(data_dir: str | os.PathLike | None, *parts: str) -> Path:
    return Path(data_dir if data_dir is not None else default_data_dir()).joinpath(*parts)


def read_concepts(path: str | os.PathLike | None = None, *, split: str | None = None) -> pd.DataFrame:
    """The embedded concept list; ``split`` ('dev' or 'eval') keeps one split."""
    df = read_jsonl_table(path or _embedded_path(None, "concepts.jsonl"), "concepts")
    if split is not None:
        if split not in CONCEPT_SPLITS:
            raise ValueError(f"split must be one of {CONCEPT_SPLITS}, got {split!r}")
        df = df[df["split"] == split].reset_index(drop=True)
    return df


def read_instructions(split: str = "eval", path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Embedded instructions, ``split`` 'train' (training prompts) or 'eval' (steering prompts)."""
    if path is None:
        if split not in ("train", "eval"):
            raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
        path = _embedded_path(None, "instructions", f"{split}.jsonl")
    return read_jsonl_table(path, "instructions")


def read_exemplars(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Embedded concept exemplars (the positives used for training): concept_id, instruction, response."""
    return read_jsonl_table(path or _embedded_path(None, "concepts", "exemplars.jsonl"), "exemplars")


def read_arithmetic(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Embedded arithmetic word problems: id, question, answer (int), steps."""
    return read_jsonl_table(path or _embedded_path(None, "utility", "arithmetic.jsonl"), "arithmetic")


def read_multiple_choice(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Embedded multiple-choice questions: id, question, choices (4), answer (A-D), subject."""
    return read_jsonl_table(path or _embedded_path(None, "utility", "multiple_choice.jsonl"), "multiple_choice")


def read_reading(path: str | os.PathLike | None = None, *, split: str | None = None) -> pd.DataFrame:
    """The embedded yes/no reading task: id, passage, question, answer (bool), split ('train' or
    'test'); ``split`` keeps one split. :mod:`.reading` turns the rows into items and prompts."""
    if split is not None and split not in READING_SPLITS:
        raise ValueError(f"split must be one of {READING_SPLITS} (or None for both), got {split!r}")
    df = read_jsonl_table(path or _embedded_path(None, "tasks", "reading.jsonl"), "reading")
    if split is not None:
        df = df[df["split"] == split].reset_index(drop=True)
    return df


def load_embedded(data_dir: str | os.PathLike | None = None) -> dict[str, pd.DataFrame]:
    """All embedded files, checked, plus cross-file checks (every exemplar's concept exists).

    Keys: concepts, instructions_train, instructions_eval, exemplars, arithmetic, multiple_choice.
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    out = {
        "concepts": read_concepts(root / "concepts.jsonl"),
        "instructions_train": read_instructions(path=root / "instructions" / "train.jsonl"),
        "instructions_eval": read_instructions(path=root / "instructions" / "eval.jsonl"),
        "exemplars": read_exemplars(root / "concepts" / "exemplars.jsonl"),
        "arithmetic": read_arithmetic(root / "utility" / "arithmetic.jsonl"),
        "multiple_choice": read_multiple_choice(root / "utility" / "multiple_choice.jsonl"),
    }
    unknown = sorted(set(out["exemplars"]["concept_id"]) - set(out["concepts"]["concept_id"]))
    if unknown:
        raise DataValidationError(
            f"{root / 'concepts' / 'exemplars.jsonl'}: concept_id(s) {unknown[:10]} not in {root / 'concepts.jsonl'}"
        )
    return out
