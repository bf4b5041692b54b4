"""What the numbers mean in words: for a few concepts, the unsteered, FSSV and PrOSV responses to the
same instruction side by side, with their ratings (the ``examples`` table and its markdown).

The examples are chosen by a fixed rule, never by hand: PrOSV is the first prompt-only method of the
factor-free protocol (by loss, then name), FSSV the full-sequence method with the same loss; the
concepts are those at the 25th, 50th and 75th percentile of PrOSV's per-concept concept score
(nearest rank, ties broken by concept id), and of each concept the first instruction (lowest index)
that all three answered.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import evaluation as E
from .families import families, prompt_only
from .frames import RATINGS, with_labels
from .text import fmt, markdown

QUANTILES = (0.25, 0.5, 0.75)
UNSTEERED = "unsteered"  # the baseline mode that steers nothing (prosv.experiments.BASELINES)
CONDITIONS = ("unsteered", "FSSV", "PrOSV")
COLUMNS = [
    "concept_id",
    "concept",
    "quantile",
    "prosv_concept_score",
    "n_ranked",
    "instruction_idx",
    "instruction",
    "condition",
    "method",
    "response",
    *RATINGS,
    "overall",
]


def _factor_free(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    parts = []
    for df in frames:
        if df is None or df.empty or "response" not in df.columns:
            continue
        df = with_labels(df if "overall" in df.columns else E.add_overall(df))
        protocol = df["protocol"] if "protocol" in df.columns else pd.Series(E.PROTOCOL_FACTOR_FREE, index=df.index)
        parts.append(df[protocol.fillna(E.PROTOCOL_FACTOR_FREE) == E.PROTOCOL_FACTOR_FREE])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def example_methods(rows: pd.DataFrame) -> dict[str, str] | None:
    """condition -> method (unsteered, FSSV, PrOSV), or None when one of them is missing."""
    if rows.empty:
        return None
    fam = families(rows)
    prosv = rows[prompt_only(rows) & (fam != "baseline")]
    if prosv.empty or not (rows["method"] == UNSTEERED).any():
        return None
    loss_method = sorted({(str(lo), m) for lo, m in zip(prosv["loss"], prosv["method"])})
    loss, prosv_method = loss_method[0]
    fssv = rows[fam == "fssv"]
    same_loss = fssv[fssv["loss"].astype(str) == loss]
    pool = same_loss if not same_loss.empty else fssv
    if pool.empty:
        return None
    return {"unsteered": UNSTEERED, "FSSV": sorted(pool["method"].unique())[0], "PrOSV": prosv_method}


def pick_concepts(scores: pd.Series, quantiles: Sequence[float] = QUANTILES) -> list[tuple[float, int]]:
    """(quantile, concept id) at each quantile of the per-concept scores (nearest rank; one concept
    appears once, at its first quantile)."""
    ranked = sorted(scores.dropna().items(), key=lambda kv: (kv[1], kv[0]))
    if not ranked:
        return []
    out, seen = [], set()
    for q in quantiles:
        cid = ranked[int(np.floor(q * (len(ranked) - 1) + 0.5))][0]
        if cid not in seen:
            seen.add(cid)
            out.append((q, cid))
    return out


def build_examples_table(frames: Sequence[pd.DataFrame], quantiles: Sequence[float] = QUANTILES) -> pd.DataFrame:
    """The examples (one row per concept and condition) from the main rating files; empty when the run
    has no unsteered, FSSV and PrOSV responses to compare."""
    rows = _factor_free(frames)
    methods = example_methods(rows)
    if methods is None:
        return pd.DataFrame(columns=COLUMNS)
    rows = rows[rows["method"].isin(methods.values())]
    prosv = rows[rows["method"] == methods["PrOSV"]]
    scores = prosv.groupby("concept_id")["concept_score"].mean()
    out = []
    for q, cid in pick_concepts(scores, quantiles):
        part = rows[rows["concept_id"] == cid]
        answered = [set(part.loc[part["method"] == m, "instruction_idx"]) for m in methods.values()]
        common = sorted(set.intersection(*answered))
        if not common:
            continue
        at = part[part["instruction_idx"] == common[0]]
        for condition in CONDITIONS:
            r = at[at["method"] == methods[condition]].iloc[0]
            out.append(
                {
                    "concept_id": int(cid),
                    "concept": str(r.get("concept", cid)),
                    "quantile": float(q),
                    "prosv_concept_score": float(scores[cid]),
                    "n_ranked": int(scores.notna().sum()),
                    "instruction_idx": int(common[0]),
                    "instruction": str(r["instruction"]),
                    "condition": condition,
                    "method": str(r["method"]),
                    "response": str(r["response"]),
                    **{k: float(r[k]) for k in (*RATINGS, "overall")},
                }
            )
    return pd.DataFrame(out, columns=COLUMNS)


def _short(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def examples_markdown(examples: pd.DataFrame) -> str:
    """One small table per concept: the three responses to its instruction and their ratings."""
    blocks = []
    for cid, g in examples.groupby("concept_id", sort=False):
        first = g.iloc[0]
        n = first.get("n_ranked")  # absent from tables written before it was recorded
        percentile = f"the {int(round(100 * first['quantile']))}th percentile of its"
        rank = "its only concept" if n == 1 else f"{percentile} {n} concepts" if n else f"{percentile} concepts"
        blocks.append(
            f"**{first['concept']}** (concept {cid}; PrOSV's concept score {fmt(first['prosv_concept_score'], 2)}, "
            f"{rank}). Instruction: *{_short(first['instruction'], 200)}*"
        )
        view = pd.DataFrame(
            {
                "condition": g["condition"],
                "method": g["method"],
                "response": [_short(t) for t in g["response"]],
                "concept": g["concept_score"].map(lambda x: fmt(x, 0)),
                "instruction": g["instruction_score"].map(lambda x: fmt(x, 0)),
                "fluency": g["fluency_score"].map(lambda x: fmt(x, 0)),
                "overall": g["overall"].map(lambda x: fmt(x, 2)),
            }
        )
        blocks.append(markdown(view))
    return "\n\n".join(blocks) + "\n"
