"""The location search: every (layer, positions) variant on the development concepts; the best
prompt-only one serves the main runs (docs/method.md, "Location search").

Each variant trains, generates and is judged in jobs of its own, so that variants run side by side;
every variant draws the same random numbers per prompt, so their responses are paired. The choice is the prompt-only
placement (anything but `all`) with the best mean overall score over the development concepts; the
table carries each cell's bootstrap interval over concepts, and the choice records whether it is
separated from the runner-up (a paired comparison over the same concepts).
"""

from __future__ import annotations

import logging

import pandas as pd

from .. import evaluation as E
from ..positions import as_spec
from ..stats import bootstrap_ci, paired_comparison

log = logging.getLogger(__name__)

RATINGS = ("overall", "concept_score", "instruction_score", "fluency_score")


def location_concepts(ratings: pd.DataFrame) -> pd.DataFrame:
    """Mean ratings per (layer, positions, concept) of the location search's factor-free responses."""
    judges = sorted(ratings.judge.dropna().unique())
    if len(judges) != 1:
        raise ValueError(f"the location ratings come from {len(judges)} judges ({judges}); expected one")
    return E.concept_means(ratings, by=["layer", "positions"], protocol=E.PROTOCOL_FACTOR_FREE, judge=judges[0])


def location_table(ratings: pd.DataFrame, *, n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """One row per (layer, positions): mean ratings over development concepts, the overall score's
    bootstrap interval over concepts, n_concepts, prompt_only, judge and the judge's counts."""
    per = location_concepts(ratings)
    rows = []
    for (layer, positions), g in per.groupby(["layer", "positions"], sort=True):
        ci = bootstrap_ci(g["overall"], n_boot=n_boot, seed=seed)
        rows.append(
            {
                "layer": int(layer),
                "positions": str(positions),
                **{r: float(g[r].mean()) for r in RATINGS},
                "overall_lo": ci["ci_low"],
                "overall_hi": ci["ci_high"],
                "n_concepts": int(ci["n"]),
                "prompt_only": as_spec(str(positions)).prompt_only,
                "judge": g["judge"].iloc[0],
                **E.judge_count_sums(g),
            }
        )
    return pd.DataFrame(rows)


def choose_location(ratings: pd.DataFrame, *, n_boot: int = 10_000, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """The choice (layer, positions among prompt-only placements) and the table with `chosen` marked.

    Ties on the mean overall score go to the higher concept score. The choice also says which cell
    came second and the paired difference (chosen minus runner-up, per development concept) with its
    interval: `separated` is true when that interval excludes zero.
    """
    table = location_table(ratings, n_boot=n_boot, seed=seed)
    candidates = table[table.prompt_only]
    if candidates.empty:
        raise ValueError("the location search has no prompt-only placement to choose from")
    ranked = candidates.sort_values(["overall", "concept_score"], ascending=False)
    best = ranked.iloc[0]
    choice = {
        "layer": int(best.layer),
        "positions": str(best.positions),
        "overall": float(best.overall),
        "concept_score": float(best.concept_score),
        "judge": str(best.judge),
        "n_concepts": int(best.n_concepts),
    }
    if len(ranked) > 1:
        second = ranked.iloc[1]
        per = location_concepts(ratings)

        def cell(r):
            g = per[(per.layer == r.layer) & (per.positions == r.positions)]
            return g.set_index("concept_id")["overall"]

        comp = paired_comparison(cell(best), cell(second), n_boot=n_boot, seed=seed)
        choice.update(
            runner_up={
                "layer": int(second.layer),
                "positions": str(second.positions),
                "overall": float(second.overall),
            },
            margin=comp.difference,
            margin_lo=comp.ci_low,
            margin_hi=comp.ci_high,
            separated=bool(comp.ci_low > 0),
        )
    table = table.assign(chosen=(table.layer == choice["layer"]) & (table.positions == choice["positions"]))
    return choice, table
