"""Small helpers over the tidy tables: required tables with clear errors, single values, labels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

RATINGS = ("concept_score", "instruction_score", "fluency_score")
# what a row says about the run that produced it (read from the vector file, carried to every table)
LABELS = ("loss", "intervention", "fixed_alpha", "layer", "positions")


def require(df: pd.DataFrame | None, name: str, columns: Iterable[str] = ()) -> pd.DataFrame:
    """The table itself, or a ValueError naming it when it is missing, empty or lacks columns."""
    if df is None:
        raise ValueError(f"table '{name}' is missing")
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"table '{name}' is not a DataFrame (got {type(df).__name__})")
    if df.empty:
        raise ValueError(f"table '{name}' is empty")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"table '{name}' lacks column(s) {missing}; it has {list(df.columns)}")
    return df


def table(tables: Mapping[str, pd.DataFrame | None], name: str) -> pd.DataFrame | None:
    """A table of the mapping, or None when it is absent or empty."""
    df = tables.get(name)
    if df is None or not isinstance(df, pd.DataFrame) or df.empty:
        return None
    return df


def isna(x) -> bool:
    try:
        return x is None or bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def first(series: pd.Series):
    s = series.dropna()
    return s.iloc[0] if len(s) else None


def single(values) -> str | None:
    """The distinct values of a column, joined (one value: that value); None when there is none."""
    vals = sorted({str(v) for v in pd.Series(values).dropna()})
    return ", ".join(vals) if vals else None


def with_labels(df: pd.DataFrame) -> pd.DataFrame:
    """Every label column present (missing ones as None), so rows can be told apart by data."""
    out = df.copy()
    for col in LABELS:
        if col not in out.columns:
            out[col] = None
    return out
