"""Tuning: the sweep that chooses a model's recommended training settings, on development concepts.

Every combination of the grid (factor init and rate, direction init and rate, epochs, batch size;
raw rates) is trained at one layer and placement on the development concepts from one prefix cache
(:func:`prosv.experiments.scaling.run_scaling`), every cell answers the same factor-free prompts with
the same random draws, and the judge rates them. Cells are ranked by the factor-free overall score
(mean over concepts of each concept's mean), with the share of responses that carry the concept
(concept rating >= 1) and stay fluent (fluency >= 1) beside it; not by training loss alone. The
winners per placement family are what ``src/prosv/recommended.yaml`` records for the model.
"""

from __future__ import annotations

import itertools

import pandas as pd

from .. import evaluation as E
from ..positions import as_spec
from ..stats import bootstrap_ci, paired_comparison
from .scaling import ScalingCell

GRID_KEYS = ("c_alpha", "eta_alpha", "c_v", "eta_v", "epochs", "batch_size")


def tuning_grid(tune: dict, positions: str) -> dict:
    """The grid swept at one placement: the config's shared ``tune.grid`` with the values its
    ``tune.by_positions[positions]`` gives in their place."""
    by_positions = tune.get("by_positions") or {}
    stray = sorted(set(by_positions) - set(tune.get("positions", [])))
    if stray:
        raise ValueError(f"config key 'tune.by_positions': {stray} not in tune.positions {tune.get('positions')}")
    return {**(tune.get("grid") or {}), **(by_positions.get(positions) or {})}


def tuning_cells(grid: dict) -> list[ScalingCell]:
    """Every combination of the grid's values (keys of GRID_KEYS; one value lists are fixed)."""
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ValueError(f"config key 'tune.grid': unknown key(s) {unknown}; known: {list(GRID_KEYS)}")
    missing = [k for k in GRID_KEYS if not grid.get(k)]
    if missing:
        raise ValueError(f"config key 'tune.grid': give at least one value for {missing}")
    cells = []
    for c_alpha, eta_alpha, c_v, eta_v, epochs, batch in itertools.product(*(grid[k] for k in GRID_KEYS)):
        name = f"ca{c_alpha:g} ea{eta_alpha:g} cv{c_v:g} ev{eta_v:g} E{epochs} B{batch}"
        cells.append(
            ScalingCell(
                name,
                "tune",
                float(c_alpha),
                float(eta_alpha),
                c_v=float(c_v),
                eta_v=float(eta_v),
                epochs=int(epochs),
                batch_size=int(batch),
            )
        )
    return cells


def tuning_table(ratings: pd.DataFrame, cells: pd.DataFrame, *, n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """One row per (positions, cell): the cell's settings and training figures, the factor-free overall
    score with its bootstrap interval over concepts, the rating means and the shares of responses
    with the concept (>= 1), fluent (>= 1) and both; ranked best first within each placement. Each cell
    is also compared with its placement's best cell, paired over concepts (``minus_best`` with its
    interval; the best cell's own is 0): a winner whose runner-up's interval spans 0 is not separated."""
    rated = E.add_overall(ratings).assign(
        has_concept=lambda d: d.concept_score >= 1,
        fluent=lambda d: d.fluency_score >= 1,
        steers=lambda d: (d.concept_score >= 1) & (d.fluency_score >= 1),
    )
    rows, per_concept = [], {}
    for (positions, cell), g in rated.groupby(["positions", "cell"], sort=True):
        per = g.groupby("concept_id")
        per_concept[positions, cell] = per.overall.mean()
        ci = bootstrap_ci(per.overall.mean(), n_boot=n_boot, seed=seed)
        rows.append(
            {
                "positions": positions,
                "cell": cell,
                "overall": ci["mean"],
                "overall_lo": ci["ci_low"],
                "overall_hi": ci["ci_high"],
                "n_concepts": ci["n"],
                "n_responses": len(g),
                **{c: float(per[c].mean().mean()) for c in ("concept_score", "instruction_score", "fluency_score")},
                **{c: float(g[c].mean()) for c in ("has_concept", "fluent", "steers")},
            }
        )
    table = pd.DataFrame(rows).merge(cells.drop(columns=["kind"], errors="ignore"), on=["positions", "cell"])
    table = table.sort_values(["positions", "overall", "has_concept"], ascending=[True, False, False])
    table["rank"] = table.groupby("positions").cumcount() + 1
    table = table.reset_index(drop=True)
    best = table[table["rank"] == 1].set_index("positions").cell
    against = [
        paired_comparison(per_concept[pos, cell], per_concept[pos, best[pos]], n_boot=n_boot, seed=seed)
        for pos, cell in zip(table.positions, table.cell)
    ]
    return table.assign(
        minus_best=[c.difference for c in against],
        minus_best_lo=[c.ci_low for c in against],
        minus_best_hi=[c.ci_high for c in against],
    )


def recommended_settings(table: pd.DataFrame, loss: str) -> dict:
    """The best cell of each placement family in the shape of recommended.yaml:
    {family: {loss: {c_alpha, eta_alpha, c_v, eta_v, epochs, batch_size}}}."""
    out = {}
    for positions, g in table.groupby("positions"):
        family = "all" if as_spec(str(positions)).generation else "prompt_only"
        best = g.sort_values(["overall", "has_concept"], ascending=False).iloc[0]
        out[family] = {
            loss: {
                "c_alpha": float(best.c_alpha),
                "eta_alpha": float(best.eta_alpha),
                "c_v": float(best.c_v),
                "eta_v": float(best.eta_v),
                "epochs": int(best.epochs),
                "batch_size": int(best.batch_size),
            }
        }
    return out


def tuning_markdown(table: pd.DataFrame) -> str:
    """The tuning table as markdown, best cells first per placement."""
    from ..report.text import fmt, interval, markdown

    view = pd.DataFrame(
        {
            "positions": table.positions,
            "rank": table["rank"],
            "c_alpha": table.c_alpha,
            "eta_alpha": table.eta_alpha,
            "c_v": table.c_v,
            "eta_v": table.eta_v,
            "epochs": table.epochs,
            "batch": table.batch_size,
            "overall [95% CI]": [
                interval(m, lo, hi) for m, lo, hi in zip(table.overall, table.overall_lo, table.overall_hi)
            ],
            "minus best [95% CI]": [
                interval(m, lo, hi) for m, lo, hi in zip(table.minus_best, table.minus_best_lo, table.minus_best_hi)
            ],
            "concept": table.concept_score.map(lambda x: fmt(x, 2)),
            "concept >= 1": table.has_concept.map(lambda x: f"{x:.0%}"),
            "fluent": table.fluent.map(lambda x: f"{x:.0%}"),
            "both": table.steers.map(lambda x: f"{x:.0%}"),
            "alpha end / start": (table.alpha_final / (table.c_alpha * table.hidden**0.5)).map(lambda x: fmt(x, 2)),
            "final loss": table.final_loss.map(lambda x: fmt(x, 3)),
            "n": table.n_concepts,
        }
    )
    return markdown(view) + "\n"
