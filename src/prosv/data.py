"""Data: the embedded files we ship, and loaders for the public benchmark data.

Everything returns a pandas DataFrame with a fixed, documented set of columns.

Embedded files (``data/`` at the repository root, or ``$PROSV_DATA_DIR``), JSON Lines:

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
=====================================  ==========================================================

Readers check every line and raise :class:`DataValidationError` naming the file, the line and the
problem (missing key, wrong type, empty file, duplicate id). Extra keys are kept as extra columns.

Public data (AxBench, AlpacaEval, tinyBenchmarks) comes either from a local path or from the
Hugging Face Hub. Hub access goes through ``huggingface_hub`` (a dependency of ``transformers``);
``datasets`` is optional and only tried for tinyBenchmarks. With ``HF_HUB_OFFLINE=1`` or
``HF_DATASETS_OFFLINE=1`` the hub is never contacted, only the local cache is read. When a dataset
cannot be had, :class:`DatasetUnavailableError` says which one and how to provide it.

Tidy shapes produced here:

- AxBench examples: ``concept_id, concept, genre, instruction, response, category``
  (category ``positive``/``negative``; shared negatives have concept_id -1 and no concept).
- contrastive pairs: ``concept_id, concept, instruction, chosen, rejected``.
- AlpacaEval: the file's own columns (``instruction`` at least), file order, RangeIndex: the
  index is the row number in ``alpaca_eval.json``, which the factor-free sampler relies on.
- arithmetic tasks: ``id, question, answer (int), steps (int: reasoning steps)``; tinyGSM8K
  adds ``solution`` (the worked solution text before ``####``).
- multiple-choice tasks: ``id, question, choices (list of 4), answer (letter), subject``.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

__all__ = [
    "DataValidationError",
    "DatasetUnavailableError",
    "default_data_dir",
    "read_jsonl_table",
    "read_concepts",
    "read_instructions",
    "read_exemplars",
    "read_arithmetic",
    "read_multiple_choice",
    "load_embedded",
    "read_axbench_metadata",
    "tidy_axbench",
    "load_axbench_concept500",
    "load_axbench_hub",
    "concept_positives",
    "load_contrastive_pairs",
    "tidy_contrastive",
    "load_alpaca_eval",
    "normalize_tiny_gsm8k",
    "normalize_tiny_mmlu",
    "load_tiny_gsm8k",
    "load_tiny_mmlu",
    "parse_gsm8k_answer",
    "AXBENCH_NEGATIVE_CONCEPT",
    "AXBENCH_POSITIVES_PER_CONCEPT",
    "ALPACA_EVAL_SIZE",
    "TIDY_AXBENCH_COLUMNS",
    "CONTRASTIVE_COLUMNS",
    "ARITHMETIC_COLUMNS",
    "MULTIPLE_CHOICE_COLUMNS",
]

AXBENCH_NEGATIVE_CONCEPT = "EEEEE"  # output_concept of AxBench's shared negatives
AXBENCH_POSITIVES_PER_CONCEPT = 72
ALPACA_EVAL_SIZE = 805
GENRES = ("text", "code", "math")
CONCEPT_SPLITS = ("dev", "eval")
CHOICE_LETTERS = ("A", "B", "C", "D")

TIDY_AXBENCH_COLUMNS = ("concept_id", "concept", "genre", "instruction", "response", "category")
CONTRASTIVE_COLUMNS = ("concept_id", "concept", "instruction", "chosen", "rejected")
ARITHMETIC_COLUMNS = ("id", "question", "answer", "steps")
MULTIPLE_CHOICE_COLUMNS = ("id", "question", "choices", "answer", "subject")

HUB_AXBENCH_CONCEPT10 = "pyvene/axbench-concept10"
HUB_AXBENCH_CONCEPT16K = "pyvene/axbench-concept16k"
HUB_CONTRASTIVE = "colored-dye/concept500-contrastive"
HUB_ALPACA_EVAL = "tatsu-lab/alpaca_eval"
HUB_TINY_GSM8K = "tinyBenchmarks/tinyGSM8k"
HUB_TINY_MMLU = "tinyBenchmarks/tinyMMLU"


# --------------------------------------------------------------------------------------------
# errors


class DataValidationError(ValueError):
    """A data file exists but does not have the shape we expect."""


class DatasetUnavailableError(RuntimeError):
    """A public dataset could not be read: not given locally and not reachable or cached."""

    def __init__(self, dataset: str, reason: str, how_to_provide: str):
        self.dataset = dataset
        self.reason = reason
        super().__init__(
            f"Dataset '{dataset}' is not available: {reason}\n"
            f"How to provide it:\n"
            f"  - pass a local copy: {how_to_provide}\n"
            f"  - or pre-populate the Hugging Face cache on a machine with internet access,\n"
            f"    e.g. `hf download {dataset} --repo-type dataset` (older clients:\n"
            f"    `huggingface-cli download {dataset} --repo-type dataset`), copy the cache\n"
            f"    (HF_HOME, default ~/.cache/huggingface) over, and run with HF_HUB_OFFLINE=1."
        )


# --------------------------------------------------------------------------------------------
# embedded files: schema-checked JSON Lines


def default_data_dir() -> Path:
    """``$PROSV_DATA_DIR`` if set, else ``data/`` at the repository root (next to ``src/``)."""
    env = os.environ.get("PROSV_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "data"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _nonempty_str(v: Any) -> bool:
    return isinstance(v, str) and v.strip() != ""


def _is_id(v: Any) -> bool:
    return _is_int(v) or _nonempty_str(v)


def _str_list(min_len: int = 1, exact: int | None = None) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if not isinstance(v, list) or not all(_nonempty_str(x) for x in v):
            return False
        return len(v) == exact if exact is not None else len(v) >= min_len

    return check


def _one_of(values: Sequence[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in values


@dataclass(frozen=True)
class Column:
    name: str
    check: Callable[[Any], bool]
    expected: str  # human description used in error messages


@dataclass(frozen=True)
class TableSchema:
    columns: tuple[Column, ...]
    unique: tuple[str, ...] = ()  # key columns whose combination must be unique
    int_columns: tuple[str, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


_INT = ("an integer", _is_int)
_STR = ("a non-empty string", _nonempty_str)
_ID = ("an integer or a non-empty string", _is_id)


def _col(name: str, spec: tuple[str, Callable[[Any], bool]]) -> Column:
    return Column(name, spec[1], spec[0])


SCHEMAS: dict[str, TableSchema] = {
    "concepts": TableSchema(
        columns=(
            _col("concept_id", _INT),
            _col("concept", _STR),
            Column("genre", _one_of(GENRES), f"one of {list(GENRES)}"),
            Column("split", _one_of(CONCEPT_SPLITS), f"one of {list(CONCEPT_SPLITS)}"),
            Column("keywords", _str_list(1), "a non-empty list of non-empty strings"),
            _col("steering_instruction", _STR),
            _col("suppression_instruction", _STR),
        ),
        unique=("concept_id",),
        int_columns=("concept_id",),
    ),
    "instructions": TableSchema(
        columns=(_col("instruction_id", _ID), _col("instruction", _STR)),
        unique=("instruction_id",),
    ),
    "exemplars": TableSchema(
        columns=(_col("concept_id", _INT), _col("instruction", _STR), _col("response", _STR)),
        unique=("concept_id", "instruction", "response"),
        int_columns=("concept_id",),
    ),
    "arithmetic": TableSchema(
        columns=(
            _col("id", _ID),
            _col("question", _STR),
            _col("answer", _INT),
            Column("steps", lambda v: _is_int(v) and v >= 1, "a positive integer (number of steps)"),
        ),
        unique=("id",),
        int_columns=("answer", "steps"),
    ),
    "multiple_choice": TableSchema(
        columns=(
            _col("id", _ID),
            _col("question", _STR),
            Column("choices", _str_list(exact=4), "a list of exactly 4 non-empty strings"),
            Column("answer", _one_of(CHOICE_LETTERS), f"one of {list(CHOICE_LETTERS)}"),
            _col("subject", _STR),
        ),
        unique=("id",),
    ),
}

_MAX_REPORTED = 10


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def read_jsonl_table(path: str | os.PathLike, schema: TableSchema | str) -> pd.DataFrame:
    """Read a JSON Lines file and check it against ``schema`` (a :class:`TableSchema` or a key of
    ``SCHEMAS``). Blank lines are skipped. Schema columns come first, extra keys after them."""
    if isinstance(schema, str):
        schema = SCHEMAS[schema]
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    records: list[dict] = []
    linenos: list[int] = []
    problems: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"line {lineno}: not valid JSON ({exc.msg})")
                continue
            if not isinstance(rec, dict):
                problems.append(f"line {lineno}: expected a JSON object, got {type(rec).__name__}")
                continue
            missing = [c.name for c in schema.columns if c.name not in rec]
            if missing:
                problems.append(f"line {lineno}: missing key(s) {missing}")
            for col in schema.columns:
                if col.name in rec and not col.check(rec[col.name]):
                    problems.append(
                        f"line {lineno}: key '{col.name}' should be {col.expected}, "
                        f"got {rec[col.name]!r:.80}"
                    )
            records.append(rec)
            linenos.append(lineno)
    if problems:
        shown = "\n  ".join(problems[:_MAX_REPORTED])
        more = f"\n  ... and {len(problems) - _MAX_REPORTED} more" if len(problems) > _MAX_REPORTED else ""
        raise DataValidationError(f"{path}: {len(problems)} problem(s):\n  {shown}{more}")
    if not records:
        raise DataValidationError(f"{path}: file is empty (no JSON records)")

    # one id type per column (mixing 1 and "1" is almost always a bug)
    for col in schema.columns:
        if col.check is _is_id:
            kinds = {type(r[col.name]).__name__ for r in records}
            if len(kinds) > 1:
                raise DataValidationError(f"{path}: key '{col.name}' mixes types {sorted(kinds)}")

    if schema.unique:
        seen: dict[tuple, int] = {}
        dups: list[str] = []
        for rec, lineno in zip(records, linenos):
            key = tuple(_hashable(rec[k]) for k in schema.unique)
            if key in seen:
                shown_key = key[0] if len(key) == 1 else key
                dups.append(f"{shown_key!r:.120} (lines {seen[key]} and {lineno})")
            else:
                seen[key] = lineno
        if dups:
            what = schema.unique[0] if len(schema.unique) == 1 else "(" + ", ".join(schema.unique) + ")"
            shown = "\n  ".join(dups[:_MAX_REPORTED])
            raise DataValidationError(f"{path}: duplicate {what}: {len(dups)} duplicate(s):\n  {shown}")

    df = pd.DataFrame.from_records(records)
    extra = [c for c in df.columns if c not in schema.names]
    df = df[schema.names + extra]
    for name in schema.int_columns:
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
    return read_jsonl_table(
        path or _embedded_path(None, "utility", "multiple_choice.jsonl"), "multiple_choice"
    )


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
            f"{root / 'concepts' / 'exemplars.jsonl'}: concept_id(s) {unknown[:10]} "
            f"not in {root / 'concepts.jsonl'}"
        )
    return out


# --------------------------------------------------------------------------------------------
# generic table reading and hub access


def _read_table(path: Path) -> pd.DataFrame:
    """Read .parquet, .json (array or lines), .jsonl or .csv into a frame with a RangeIndex."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df = pd.read_parquet(path)
    elif suffix in (".json", ".jsonl"):
        with path.open(encoding="utf-8") as fh:
            head = fh.read(4096).lstrip()
        if not head:
            raise DataValidationError(f"{path}: file is empty")
        if head.startswith("["):
            with path.open(encoding="utf-8") as fh:
                df = pd.DataFrame.from_records(json.load(fh))
        else:
            df = pd.read_json(path, lines=True, dtype=False)
    elif suffix == ".csv":
        df = pd.read_csv(path)
    else:
        raise DataValidationError(f"{path}: unsupported file type '{suffix}' (use parquet, json, jsonl or csv)")
    if df.empty:
        raise DataValidationError(f"{path}: no rows")
    return df.reset_index(drop=True)


def _require_columns(df: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(f"{where}: missing column(s) {missing}; found {list(df.columns)}")


def _offline() -> bool:
    truthy = {"1", "true", "yes", "on"}
    return any(
        os.environ.get(k, "").strip().lower() in truthy for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg[:300]}" if msg else type(exc).__name__


def _from_hub(repo_id: str, what: str, how_to_provide: str, fetch: Callable[[Any], str]) -> Path:
    """Run ``fetch(huggingface_hub)`` and turn any failure into a DatasetUnavailableError for ``repo_id``."""
    try:
        import huggingface_hub
    except ImportError:
        raise DatasetUnavailableError(repo_id, "huggingface_hub is not installed", how_to_provide) from None
    try:
        return Path(fetch(huggingface_hub))
    except Exception as exc:  # network, auth, missing file, offline cache miss: all the same to us
        mode = "offline mode, not in the local cache" if _offline() else "download failed"
        raise DatasetUnavailableError(repo_id, f"could not get {what} ({mode}; {_short(exc)})", how_to_provide) from None


def _hub_file(
    repo_id: str, filename: str, *, how_to_provide: str, revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """One file of a hub dataset repo (from the cache only when offline)."""
    return _from_hub(repo_id, f"'{filename}'", how_to_provide, lambda hub: hub.hf_hub_download(
        repo_id, filename, repo_type="dataset", revision=revision, cache_dir=cache_dir,
        local_files_only=_offline()))


def _hub_snapshot(
    repo_id: str, allow_patterns: list[str], *, how_to_provide: str, revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """A (filtered) snapshot folder of a hub dataset repo."""
    return _from_hub(repo_id, "a snapshot", how_to_provide, lambda hub: hub.snapshot_download(
        repo_id, repo_type="dataset", revision=revision, cache_dir=cache_dir, allow_patterns=allow_patterns,
        local_files_only=_offline()))


_TABLE_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")


def _table_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in _TABLE_SUFFIXES and not p.name.startswith(".")
    )


# --------------------------------------------------------------------------------------------
# AxBench


def read_axbench_metadata(path: str | os.PathLike) -> pd.DataFrame:
    """AxBench ``metadata.jsonl`` -> concept_id, concept, genre (+ ref when present).

    Accepts both layouts seen in AxBench releases: a ``genre`` key, or the original
    ``concept_genres_map: {concept: [genre, ...]}`` (first genre wins). Without ``concept_id`` the
    line order (0, 1, ...) is the id, as in the earliest releases.
    """
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataValidationError(f"{path}: line {lineno}: not valid JSON ({exc.msg})") from None
            if not _nonempty_str(rec.get("concept")):
                raise DataValidationError(f"{path}: line {lineno}: missing or empty 'concept'")
            concept = rec["concept"]
            genre = rec.get("genre") or rec.get("concept_genre")
            if genre is None and isinstance(rec.get("concept_genres_map"), dict):
                genres = rec["concept_genres_map"].get(concept) or next(
                    iter(rec["concept_genres_map"].values()), None
                )
                genre = genres[0] if isinstance(genres, list) and genres else genres
            cid = rec.get("concept_id", len(rows))
            if not _is_int(cid):
                try:
                    cid = int(cid)
                except (TypeError, ValueError):
                    raise DataValidationError(
                        f"{path}: line {lineno}: concept_id should be an integer, got {cid!r}"
                    ) from None
            row = {"concept_id": cid, "concept": concept, "genre": genre}
            if "ref" in rec:
                row["ref"] = rec["ref"]
            rows.append(row)
    if not rows:
        raise DataValidationError(f"{path}: file is empty (no JSON records)")
    df = pd.DataFrame(rows)
    dups = df["concept_id"][df["concept_id"].duplicated()].tolist()
    if dups:
        raise DataValidationError(f"{path}: duplicate concept_id {dups[:10]}")
    df["concept_id"] = df["concept_id"].astype("int64")
    return df


def tidy_axbench(
    train_df: pd.DataFrame, metadata: pd.DataFrame | None = None, *, source: str = "AxBench data"
) -> pd.DataFrame:
    """AxBench's ``input/output/output_concept/concept_genre/category/concept_id`` rows -> the tidy
    frame ``concept_id, concept, genre, instruction, response, category``.

    ``concept`` and ``genre`` come from ``metadata`` when given (matched on concept_id), else from
    ``output_concept`` / ``concept_genre``. Shared negatives (``output_concept == 'EEEEE'`` or
    concept_id -1) keep their concept_id from the file (-1) and get no concept (None).
    Row order is the file's order.
    """
    _require_columns(train_df, ("input", "output", "category", "concept_id"), source)
    if metadata is None:
        _require_columns(train_df, ("output_concept",), f"{source} (no metadata given)")
    cid = pd.to_numeric(train_df["concept_id"], errors="coerce")
    if cid.isna().any():
        bad = train_df["concept_id"][cid.isna()].unique()[:5].tolist()
        raise DataValidationError(f"{source}: non-integer concept_id values {bad}")
    cid = cid.astype("int64")
    category = train_df["category"].astype(str).str.strip().str.lower()

    if "output_concept" in train_df.columns:
        out_concept = train_df["output_concept"].astype(object)
        is_shared_negative = (out_concept == AXBENCH_NEGATIVE_CONCEPT) | (cid < 0)
    else:
        out_concept = pd.Series([None] * len(train_df), index=train_df.index, dtype=object)
        is_shared_negative = cid < 0

    concept = out_concept.where(~is_shared_negative, None)
    genre = (
        train_df["concept_genre"].astype(object)
        if "concept_genre" in train_df.columns
        else pd.Series([None] * len(train_df), index=train_df.index, dtype=object)
    )
    if metadata is not None:
        _require_columns(metadata, ("concept_id", "concept"), "AxBench metadata")
        meta_concept = cid.map(dict(zip(metadata["concept_id"], metadata["concept"])))
        concept = meta_concept.where(meta_concept.notna() & ~is_shared_negative, concept)
        if "genre" in metadata.columns:
            meta_genre = cid.map(dict(zip(metadata["concept_id"], metadata["genre"])))
            genre = meta_genre.where(meta_genre.notna(), genre)

    out = pd.DataFrame(
        {
            "concept_id": cid.to_numpy(),
            "concept": concept.to_numpy(dtype=object),
            "genre": genre.to_numpy(dtype=object),
            "instruction": train_df["input"].to_numpy(dtype=object),
            "response": train_df["output"].to_numpy(dtype=object),
            "category": category.to_numpy(dtype=object),
        }
    )
    return out


def _find_concept500_dir(path: Path, subset: str | None) -> Path:
    """Accept the ``generate`` folder itself, or a Concept500 root plus a subset like '2b_l10'."""
    candidates = [path]
    if subset:
        candidates += [
            path / f"prod_{subset}_v1" / "generate",
            path / f"prod_{subset}_v1",
            path / subset / "generate",
            path / subset,
        ]
    for c in candidates:
        if (c / "train_data.parquet").is_file():
            return c
    hint = f" (subset {subset!r})" if subset else " (pass subset='2b_l10' for a Concept500 root)"
    raise FileNotFoundError(f"{path}: no train_data.parquet found{hint}; looked in {[str(c) for c in candidates]}")


def load_axbench_concept500(
    path: str | os.PathLike, *, subset: str | None = None, include_negatives: bool = True
) -> pd.DataFrame:
    """Concept500 from a local folder holding ``metadata.jsonl`` and ``train_data.parquet``.

    ``path`` is either that folder (AxBench's ``prod_2b_l10_v1/generate``) or the Concept500 root
    with ``subset`` (``2b_l10``, ``2b_l20``, ``9b_l20``, ``9b_l31``). Returns the tidy frame.
    """
    folder = _find_concept500_dir(Path(path), subset)
    meta_path = folder / "metadata.jsonl"
    metadata = read_axbench_metadata(meta_path) if meta_path.is_file() else None
    train = pd.read_parquet(folder / "train_data.parquet")
    if train.empty:
        raise DataValidationError(f"{folder / 'train_data.parquet'}: no rows")
    df = tidy_axbench(train, metadata, source=str(folder / "train_data.parquet"))
    if not include_negatives:
        df = df[df["category"] == "positive"].reset_index(drop=True)
    return df


def load_axbench_hub(
    repo_id: str = HUB_AXBENCH_CONCEPT10,
    *,
    model: str = "2b",
    layer: int = 10,
    split: str = "train",
    filename: str | None = None,
    local_path: str | os.PathLike | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """AxBench's hub copies (``pyvene/axbench-concept10`` / ``pyvene/axbench-concept16k``), file
    ``{model}/l{layer}/{split}/data.parquet`` (override with ``filename``), as the tidy frame.

    ``local_path`` replaces the hub: a parquet file, or a folder with the hub layout (a snapshot).
    The hub copies carry no metadata.jsonl: concept and genre come from ``output_concept`` and
    ``concept_genre``.
    """
    rel = filename or f"{model}/l{layer}/{split}/data.parquet"
    if local_path is not None:
        p = Path(local_path)
        file = p / rel if p.is_dir() else p
        if not file.is_file():
            raise FileNotFoundError(f"{file}: not found (local copy of {repo_id}, expected {rel})")
    else:
        file = _hub_file(
            repo_id, rel, revision=revision, cache_dir=cache_dir,
            how_to_provide=f"load_axbench_hub(..., local_path='path/to/{rel}' or a folder with the hub layout)",
        )
    train = pd.read_parquet(file)
    if train.empty:
        raise DataValidationError(f"{file}: no rows")
    return tidy_axbench(train, None, source=f"{repo_id}:{rel}")


def concept_positives(
    df: pd.DataFrame, concept_id: int, *, expected: int | None = None
) -> pd.DataFrame:
    """The positive examples of one concept from a tidy AxBench frame, in file order.

    AxBench has 72 per concept (``AXBENCH_POSITIVES_PER_CONCEPT``); pass ``expected`` to check.
    """
    _require_columns(df, ("concept_id", "category"), "tidy AxBench frame")
    out = df[(df["concept_id"] == concept_id) & (df["category"] == "positive")].reset_index(drop=True)
    if out.empty:
        raise KeyError(f"no positive examples for concept_id {concept_id}")
    if expected is not None and len(out) != expected:
        raise DataValidationError(
            f"concept_id {concept_id}: {len(out)} positive examples, expected {expected}"
        )
    return out


# --------------------------------------------------------------------------------------------
# contrastive (SimPO) pairs


def _message_text(v: Any) -> Any:
    """Chat-format cells (a list of {role, content} or one such dict) -> their last content."""
    if isinstance(v, dict) and "content" in v:
        return v["content"]
    if isinstance(v, (list, tuple)) or (hasattr(v, "tolist") and not isinstance(v, str)):
        items = list(v)
        if items and all(isinstance(x, dict) and "content" in x for x in items):
            return items[-1]["content"]
    return v


# (instruction, chosen, rejected) column names, in order of preference
_PAIR_LAYOUTS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    # PrOSV reference layout (contrast_train_data.parquet): the concept-neutral instruction is
    # `negative_input`; `positive_output` answers it with the concept, `negative_output` without.
    (("negative_input", "input", "positive_input"), "positive_output", "negative_output"),
    # generic preference layout
    (("instruction", "prompt", "input", "question"), "chosen", "rejected"),
    (("instruction", "prompt", "input"), "winning_output", "losing_output"),
)


def tidy_contrastive(
    df: pd.DataFrame, metadata: pd.DataFrame | None = None, *, source: str = "contrastive pairs"
) -> pd.DataFrame:
    """Preference rows -> ``concept_id, concept, instruction, chosen, rejected``.

    Recognised input layouts (first that fits wins):

    1. the PrOSV reference layout: ``concept_id``, ``negative_input`` (the instruction; falls back
       to ``input`` / ``positive_input``), ``positive_output`` (chosen: answers with the concept),
       ``negative_output`` (rejected: concept-neutral answer to the same instruction);
    2. a generic layout: ``instruction`` / ``prompt`` / ``input`` / ``question`` with ``chosen`` and
       ``rejected`` (chat-format cells, lists of ``{role, content}``, are reduced to their text);
    3. AxBench DPO style ``winning_output`` / ``losing_output``.

    ``concept`` comes from ``metadata`` (concept_id -> concept) if given, else from a ``concept`` or
    ``output_concept`` column, else stays missing. ``concept_id`` is required.
    """
    _require_columns(df, ("concept_id",), source)
    for instr_cols, chosen_col, rejected_col in _PAIR_LAYOUTS:
        instr_col = next((c for c in instr_cols if c in df.columns), None)
        if instr_col and chosen_col in df.columns and rejected_col in df.columns:
            break
    else:
        raise DataValidationError(
            f"{source}: unrecognised layout, columns {list(df.columns)}; expected "
            "(negative_input, positive_output, negative_output) or (instruction|prompt, chosen, rejected)"
        )
    cid = pd.to_numeric(df["concept_id"], errors="coerce")
    if cid.isna().any():
        raise DataValidationError(f"{source}: non-integer concept_id values")
    cid = cid.astype("int64")
    concept_col = next((c for c in ("concept", "output_concept") if c in df.columns), None)
    concepts: list = [None] * len(df)
    if concept_col:
        concepts = [None if v == AXBENCH_NEGATIVE_CONCEPT else v for v in df[concept_col].astype(object)]
    if metadata is not None:
        names = dict(zip(metadata["concept_id"], metadata["concept"]))
        concepts = [names.get(int(c), old) for c, old in zip(cid, concepts)]
    out = pd.DataFrame(
        {
            "concept_id": cid.to_numpy(),
            "concept": concepts,
            "instruction": [_message_text(v) for v in df[instr_col]],
            "chosen": [_message_text(v) for v in df[chosen_col]],
            "rejected": [_message_text(v) for v in df[rejected_col]],
        }
    )
    for c in ("instruction", "chosen", "rejected"):
        bad = ~out[c].map(lambda v: isinstance(v, str))
        if bad.any():
            raise DataValidationError(f"{source}: column for '{c}' has {int(bad.sum())} non-text value(s)")
    return out


def load_contrastive_pairs(
    path: str | os.PathLike | None = None,
    *,
    repo_id: str = HUB_CONTRASTIVE,
    subset: str | None = None,
    metadata: pd.DataFrame | str | os.PathLike | None = None,
    concept_id: int | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Contrastive (SimPO) pairs: ``concept_id, concept, instruction, chosen, rejected``.

    ``path``: a table file (parquet/json/jsonl/csv) or a folder; without it the hub repo
    ``colored-dye/concept500-contrastive`` is used (a snapshot of its table files). In a folder,
    files named ``contrast_train_data.*`` are preferred; ``subset`` (e.g. ``2b_l10``) keeps only
    paths containing it. Files in one folder are concatenated (shards); tables from several folders
    (different models or layers) are an error, resolve with ``subset``. See :func:`tidy_contrastive`
    for the accepted column layouts. ``metadata`` (frame or metadata.jsonl path) names concepts;
    a ``metadata.jsonl`` next to the data is used when present.
    """
    if path is None:
        root = _hub_snapshot(
            repo_id, ["*.parquet", "*.jsonl", "*.json", "*.csv"], revision=revision, cache_dir=cache_dir,
            how_to_provide="load_contrastive_pairs('path/to/contrast_train_data.parquet' or a folder)",
        )
        source = repo_id
    else:
        root = Path(path)
        source = str(root)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = [f for f in _table_files(root) if f.name != "metadata.jsonl"]
        if subset:
            files = [f for f in files if subset in str(f.relative_to(root))]
        preferred = [f for f in files if f.stem.startswith("contrast_train_data")]
        files = preferred or files
    else:
        raise FileNotFoundError(f"{root}: not found")
    if not files:
        raise DataValidationError(f"{source}: no table files found" + (f" for subset {subset!r}" if subset else ""))
    folders = sorted({f.parent for f in files})
    if len(folders) > 1:
        listing = ", ".join(str(f.relative_to(root) if root.is_dir() else f) for f in folders[:8])
        raise DataValidationError(
            f"{source}: pairs found in several folders ({listing}); choose one with subset=..."
        )
    frames = [_read_table(f) for f in files]
    raw = pd.concat(frames, ignore_index=True)
    if isinstance(metadata, (str, os.PathLike)):
        metadata = read_axbench_metadata(metadata)
    elif metadata is None and (folders[0] / "metadata.jsonl").is_file():
        metadata = read_axbench_metadata(folders[0] / "metadata.jsonl")
    out = tidy_contrastive(raw, metadata, source=source)
    if concept_id is not None:
        out = out[out["concept_id"] == concept_id].reset_index(drop=True)
        if out.empty:
            raise KeyError(f"{source}: no pairs for concept_id {concept_id}")
    return out


# --------------------------------------------------------------------------------------------
# AlpacaEval


def load_alpaca_eval(
    path: str | os.PathLike | None = None,
    *,
    repo_id: str = HUB_ALPACA_EVAL,
    filename: str = "alpaca_eval.json",
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """AlpacaEval instructions (805 in the official set), from a local json/jsonl/parquet/csv file
    or ``tatsu-lab/alpaca_eval`` (file ``alpaca_eval.json``).

    All columns of the file are kept (``instruction`` is required), in file order, with a
    RangeIndex, because AxBench samples per concept with ``df.sample(10, random_state=concept_id)``
    on exactly this frame: the row order and the index are part of the protocol.
    """
    if path is None:
        file = _hub_file(
            repo_id, filename, revision=revision, cache_dir=cache_dir,
            how_to_provide="load_alpaca_eval('path/to/alpaca_eval.json')",
        )
        from_hub = True
    else:
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"{file}: not found (local copy of {repo_id})")
        from_hub = False
    df = _read_table(file)
    _require_columns(df, ("instruction",), str(file))
    bad = ~df["instruction"].map(_nonempty_str)
    if bad.any():
        raise DataValidationError(f"{file}: {int(bad.sum())} empty or non-text instruction(s), first at row {int(bad.idxmax())}")
    if from_hub and len(df) != ALPACA_EVAL_SIZE:
        warnings.warn(f"{repo_id}: {len(df)} instructions, expected {ALPACA_EVAL_SIZE}", stacklevel=2)
    return df


# --------------------------------------------------------------------------------------------
# tinyBenchmarks


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
    _require_columns(df, ("question", "answer"), "tinyGSM8K")
    parsed = [parse_gsm8k_answer(a) for a in df["answer"]]
    return pd.DataFrame(
        {
            "id": [f"{id_prefix}-{i}" for i in range(len(df))],
            "question": df["question"].astype(object).to_numpy(),
            "answer": pd.array([p[0] for p in parsed], dtype="int64"),
            "steps": pd.array([max(1, sum(1 for ln in p[1].splitlines() if ln.strip())) for p in parsed], dtype="int64"),
            "solution": [p[1] for p in parsed],
        }
    )


def normalize_tiny_mmlu(df: pd.DataFrame, *, id_prefix: str = "tinymmlu") -> pd.DataFrame:
    """tinyMMLU rows (question, choices, answer index 0-3, subject) -> ``id, question, choices,
    answer (letter A-D), subject``."""
    _require_columns(df, ("question", "choices", "answer"), "tinyMMLU")
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
    files = _table_files(root)
    if config:
        in_config = [f for f in files if config in f.relative_to(root).parts]
        files = in_config or files
    return [f for f in files if f.name.startswith(split) or f.parent.name == split]


def _load_hub_table(
    repo_id: str, config: str | None, split: str, *, how_to_provide: str,
    revision: str | None, cache_dir: str | os.PathLike | None,
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
            reasons.append(f"datasets: {_short(exc)}")
    try:
        patterns = [f"{config}/*"] if config else []
        patterns += ["*.parquet", "data/*"]
        root = _hub_snapshot(
            repo_id, patterns, revision=revision, cache_dir=cache_dir, how_to_provide=how_to_provide
        )
    except DatasetUnavailableError as exc:
        reasons.append(exc.reason)
        raise DatasetUnavailableError(repo_id, "; ".join(reasons), how_to_provide) from None
    files = _pick_split_files(root, split, config)
    if not files:
        raise DatasetUnavailableError(
            repo_id, f"no '{split}' table files in the snapshot {root}", how_to_provide
        )
    return pd.concat([_read_table(f) for f in files], ignore_index=True)


def _load_local_split(path: Path, split: str, config: str | None) -> pd.DataFrame:
    if path.is_file():
        return _read_table(path)
    if path.is_dir():
        files = _pick_split_files(path, split, config) or _table_files(path)
        if not files:
            raise DataValidationError(f"{path}: no table files")
        return pd.concat([_read_table(f) for f in files], ignore_index=True)
    raise FileNotFoundError(f"{path}: not found")


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
    if path is not None:
        raw = _load_local_split(Path(path), split, config)
    else:
        raw = _load_hub_table(
            repo_id, config, split, revision=revision, cache_dir=cache_dir,
            how_to_provide="load_tiny_gsm8k('path/to/tinyGSM8k test parquet/jsonl')",
        )
    return normalize_tiny_gsm8k(raw)


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
    if path is not None:
        raw = _load_local_split(Path(path), split, config)
    else:
        raw = _load_hub_table(
            repo_id, config, split, revision=revision, cache_dir=cache_dir,
            how_to_provide="load_tiny_mmlu('path/to/tinyMMLU test parquet/jsonl')",
        )
    return normalize_tiny_mmlu(raw)
