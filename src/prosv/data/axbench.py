"""AxBench Concept500 (local folders and the hub copies) and the contrastive (SimPO) pairs.

Tidy shapes:

- examples: ``concept_id, concept, genre, instruction, response, category`` (category
  ``positive``/``negative``; shared negatives have concept_id -1 and no concept);
- contrastive pairs: ``concept_id, concept, instruction, chosen, rejected``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from .hub import hub_file, hub_snapshot
from .tables import DataValidationError, is_int, json_lines, nonempty_str, read_table, require_columns, table_files

AXBENCH_NEGATIVE_CONCEPT = "EEEEE"  # output_concept of AxBench's shared negatives
AXBENCH_POSITIVES_PER_CONCEPT = 72
TIDY_AXBENCH_COLUMNS = ("concept_id", "concept", "genre", "instruction", "response", "category")
CONTRASTIVE_COLUMNS = ("concept_id", "concept", "instruction", "chosen", "rejected")
HUB_AXBENCH_CONCEPT10 = "pyvene/axbench-concept10"
HUB_AXBENCH_CONCEPT16K = "pyvene/axbench-concept16k"
HUB_CONTRASTIVE = "colored-dye/concept500-contrastive"


def _metadata_row(path: Path, lineno: int, rec: dict, default_id: int) -> dict:
    if not nonempty_str(rec.get("concept")):
        raise DataValidationError(f"{path}: line {lineno}: missing or empty 'concept'")
    concept = rec["concept"]
    genre = rec.get("genre") or rec.get("concept_genre")
    if genre is None and isinstance(rec.get("concept_genres_map"), dict):
        genres = rec["concept_genres_map"].get(concept) or next(iter(rec["concept_genres_map"].values()), None)
        genre = genres[0] if isinstance(genres, list) and genres else genres
    cid = rec.get("concept_id", default_id)
    if not is_int(cid):
        try:
            cid = int(cid)
        except (TypeError, ValueError):
            raise DataValidationError(f"{path}: line {lineno}: concept_id should be an integer, got {cid!r}") from None
    row = {"concept_id": cid, "concept": concept, "genre": genre}
    if "ref" in rec:
        row["ref"] = rec["ref"]
    return row


def read_axbench_metadata(path: str | os.PathLike) -> pd.DataFrame:
    """AxBench ``metadata.jsonl`` -> concept_id, concept, genre (+ ref when present).

    Accepts both layouts seen in AxBench releases: a ``genre`` key, or the original
    ``concept_genres_map: {concept: [genre, ...]}`` (first genre wins). Without ``concept_id`` the
    line order (0, 1, ...) is the id, as in the earliest releases.
    """
    path = Path(path)
    rows = []
    for lineno, rec, bad in json_lines(path):
        if bad:
            raise DataValidationError(f"{path}: {bad}")
        rows.append(_metadata_row(path, lineno, rec, default_id=len(rows)))
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
    require_columns(train_df, ("input", "output", "category", "concept_id"), source)
    if metadata is None:
        require_columns(train_df, ("output_concept",), f"{source} (no metadata given)")
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
        require_columns(metadata, ("concept_id", "concept"), "AxBench metadata")
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
        file = hub_file(
            repo_id,
            rel,
            revision=revision,
            cache_dir=cache_dir,
            how_to_provide=f"load_axbench_hub(..., local_path='path/to/{rel}' or a folder with the hub layout)",
        )
    train = pd.read_parquet(file)
    if train.empty:
        raise DataValidationError(f"{file}: no rows")
    return tidy_axbench(train, None, source=f"{repo_id}:{rel}")


def concept_positives(df: pd.DataFrame, concept_id: int, *, expected: int | None = None) -> pd.DataFrame:
    """The positive examples of one concept from a tidy AxBench frame, in file order.

    AxBench has 72 per concept (``AXBENCH_POSITIVES_PER_CONCEPT``); pass ``expected`` to check.
    """
    require_columns(df, ("concept_id", "category"), "tidy AxBench frame")
    out = df[(df["concept_id"] == concept_id) & (df["category"] == "positive")].reset_index(drop=True)
    if out.empty:
        raise KeyError(f"no positive examples for concept_id {concept_id}")
    if expected is not None and len(out) != expected:
        raise DataValidationError(f"concept_id {concept_id}: {len(out)} positive examples, expected {expected}")
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
    require_columns(df, ("concept_id",), source)
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
        root = hub_snapshot(
            repo_id,
            ["*.parquet", "*.jsonl", "*.json", "*.csv"],
            revision=revision,
            cache_dir=cache_dir,
            how_to_provide="load_contrastive_pairs('path/to/contrast_train_data.parquet' or a folder)",
        )
        source = repo_id
    else:
        root = Path(path)
        source = str(root)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = [f for f in table_files(root) if f.name != "metadata.jsonl"]
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
        raise DataValidationError(f"{source}: pairs found in several folders ({listing}); choose one with subset=...")
    frames = [read_table(f) for f in files]
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
