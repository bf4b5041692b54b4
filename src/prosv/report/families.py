"""Which family a result row belongs to, told by its data: positions, protocol, intervention, frozen factor.

- ``posthoc``: the factor-grid protocol (a factor chosen per concept after training);
- ``loreft``: a LoReFT intervention; ``fixed``: a steering vector trained with alpha frozen;
- ``baseline``: no positions (unsteered, prompting);
- ``fssv``: positions ``all`` (every token, decoding included);
- ``prompt``: the whole prompt (prefill only); ``prosv``: any other prompt-only placement.

Method names are labels for people; no decision here reads them.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..evaluation import PROTOCOL_FACTOR_GRID
from .frames import isna

FAMILIES = ("baseline", "posthoc", "fssv", "prompt", "prosv", "fixed", "loreft")
POSITION_ORDER = ("all", "prompt", "p1+s1", "p2+s2", "p4+s4", "p8+s8", "p4", "s2", "s4")


def family(positions=None, *, protocol=None, intervention=None, fixed_alpha=None) -> str:
    if protocol == PROTOCOL_FACTOR_GRID:
        return "posthoc"
    if intervention == "loreft":
        return "loreft"
    if not isna(fixed_alpha):
        return "fixed"
    if isna(positions) or positions in ("", "None"):
        return "baseline"
    if positions == "all":
        return "fssv"
    if positions == "prompt":
        return "prompt"
    return "prosv"


def row_family(row: Mapping) -> str:
    get = row.get if hasattr(row, "get") else (lambda k, d=None: getattr(row, k, d))
    return family(
        get("positions"), protocol=get("protocol"), intervention=get("intervention"), fixed_alpha=get("fixed_alpha")
    )


def families(df: pd.DataFrame) -> pd.Series:
    """The family of every row of a table (missing label columns count as absent)."""
    cols = {
        c: df[c] if c in df.columns else pd.Series([None] * len(df), index=df.index)
        for c in ("positions", "protocol", "intervention", "fixed_alpha")
    }
    return pd.Series(
        [
            family(p, protocol=pr, intervention=i, fixed_alpha=f)
            for p, pr, i, f in zip(cols["positions"], cols["protocol"], cols["intervention"], cols["fixed_alpha"])
        ],
        index=df.index,
        dtype=object,
    )


def prompt_only(df: pd.DataFrame) -> pd.Series:
    """Rows of the prompt-only side of a claim: template placements, or the whole prompt when that is
    what the prompt-only methods used (the location search may choose it)."""
    fam = families(df)
    return fam == "prosv" if (fam == "prosv").any() else fam == "prompt"


def position_key(p) -> tuple:
    p = str(p)
    return (POSITION_ORDER.index(p), p) if p in POSITION_ORDER else (len(POSITION_ORDER), p)
