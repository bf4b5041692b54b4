"""AlpacaEval's 805 instructions, the prompts of the factor-free protocol."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd

from .hub import hub_file
from .tables import DataValidationError, nonempty_str, read_table, require_columns

ALPACA_EVAL_SIZE = 805
HUB_ALPACA_EVAL = "tatsu-lab/alpaca_eval"


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
        file = hub_file(
            repo_id,
            filename,
            revision=revision,
            cache_dir=cache_dir,
            how_to_provide="load_alpaca_eval('path/to/alpaca_eval.json')",
        )
        from_hub = True
    else:
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"{file}: not found (local copy of {repo_id})")
        from_hub = False
    df = read_table(file)
    require_columns(df, ("instruction",), str(file))
    bad = ~df["instruction"].map(nonempty_str)
    if bad.any():
        raise DataValidationError(
            f"{file}: {int(bad.sum())} empty or non-text instruction(s), first at row {int(bad.idxmax())}"
        )
    if from_hub and len(df) != ALPACA_EVAL_SIZE:
        warnings.warn(f"{repo_id}: {len(df)} instructions, expected {ALPACA_EVAL_SIZE}", stacklevel=2)
    return df
