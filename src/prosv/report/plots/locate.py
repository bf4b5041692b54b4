"""The location search: overall and concept score per (layer, positions) with their intervals; the
choice (among prompt-only placements) and the best cell overall both marked."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from ...positions import as_spec
from ..families import position_key
from ..frames import require, single
from ..tables import cell_intervals
from .style import SCORE_RANGE, colour_span_label, count, figure_title, finish, interval_annotations, judge_note, style

CHOSEN = dict(edgecolor="red", linewidth=3.0, linestyle="-")
BEST = dict(edgecolor="black", linewidth=2.0, linestyle="--")


def _cell(layer, positions) -> tuple[int, str]:
    return int(layer), str(positions)


def _marked_cells(loc: pd.DataFrame, choice: Mapping | None) -> tuple[tuple | None, tuple]:
    """(chosen cell, best cell over every placement)."""
    chosen = None
    if choice:
        chosen = _cell(choice["layer"], choice["positions"])
    elif "chosen" in loc.columns and loc["chosen"].astype(bool).any():
        r = loc[loc["chosen"].astype(bool)].iloc[0]
        chosen = _cell(r["layer"], r["positions"])
    top = loc.sort_values(["overall", "concept_score"], ascending=False).iloc[0]
    return chosen, _cell(top["layer"], top["positions"])


def _frame(ax, layers, positions, cell, props) -> None:
    if cell and cell[0] in layers and cell[1] in positions:
        xy = (positions.index(cell[1]), layers.index(cell[0]))
        ax.add_patch(Rectangle(xy, 1, 1, fill=False, zorder=4, **props))


def _panel(ax, loc, per, metric: str, cmap: str, layers: list, positions: list, chosen, best) -> None:
    """One metric's heatmap: mean and interval per cell, non-candidates hatched, choice and best framed."""
    ci = cell_intervals(per, ["layer", "positions"], metric, n_boot=2000, seed=0)

    def grid(df, col):
        return df.pivot_table(index="layer", columns="positions", values=col).reindex(index=layers, columns=positions)

    means = grid(loc, metric)
    name = {"overall": "overall score", "concept_score": "concept score"}[metric]
    limits, label = colour_span_label(name, means.to_numpy(), SCORE_RANGE)
    sns.heatmap(
        means,
        annot=interval_annotations(means, grid(ci, "lo"), grid(ci, "hi")),
        fmt="",
        annot_kws={"fontsize": 7.5},
        cmap=cmap,
        ax=ax,
        cbar_kws={"shrink": 0.85, "label": label},
        linewidths=0.5,
        linecolor="white",
        **limits,
    )
    for j, p in enumerate(positions):
        if not as_spec(p).prompt_only:
            for i in range(len(layers)):
                hatch = Rectangle((j, i), 1, 1, fill=False, hatch="//", edgecolor="#d0d0d0", lw=0, zorder=2)
                ax.add_patch(hatch)  # under the cell's text (zorder 3)
    _frame(ax, layers, positions, best if best != chosen else None, BEST)
    _frame(ax, layers, positions, chosen, CHOSEN)
    ax.set_xlabel("positions")
    ax.set_ylabel("layer")
    ax.set_title(f"{name} (95% CI over concepts)")
    ax.tick_params(axis="y", rotation=0)
    ax.tick_params(axis="x", rotation=30 if len(positions) > 6 else 0)


def _legend(positions: list, chosen, best) -> list:
    handles = [Line2D([], [], color="red", lw=3, label="chosen: best overall among prompt-only placements")]
    if best != chosen:
        handles.append(Line2D([], [], color="black", lw=2, ls="--", label="best overall of any placement"))
    if any(not as_spec(p).prompt_only for p in positions):
        handles.append(
            Patch(facecolor="white", edgecolor="#999999", hatch="//", label="steers decoding: not a candidate")
        )
    return handles


def plot_locate_heatmap(
    locate: pd.DataFrame,
    concepts: pd.DataFrame,
    *,
    choice: Mapping | None = None,
    model: str | None = None,
    judge: str | None = None,
):
    """Overall and concept score per (layer, positions) on the development concepts (mean and 95%
    bootstrap interval over concepts, full 0-2 colour scale). Red frame: the choice, the best
    prompt-only cell; dashed frame: the best cell of any placement; hatched: not a candidate."""
    loc = require(locate, "locate", ["layer", "positions", "overall", "concept_score"])
    per = require(concepts, "locate_concepts", ["layer", "positions", "concept_id", "overall", "concept_score"])
    style()
    loc = loc.assign(layer=loc["layer"].astype(int), positions=loc["positions"].astype(str))
    per = per.assign(layer=per["layer"].astype(int), positions=per["positions"].astype(str))
    positions = sorted(loc["positions"].unique(), key=position_key)
    layers = sorted(loc["layer"].unique())
    judge = judge or (choice or {}).get("judge") or single(loc.get("judge"))
    chosen, best = _marked_cells(loc, choice)
    fig, axes = plt.subplots(1, 2, figsize=(max(10, 1.25 * len(positions) * 2 + 3), 1.6 + 0.95 * len(layers) + 1.2))
    for ax, metric, cmap in zip(axes, ("overall", "concept_score"), ("viridis", "magma")):
        _panel(ax, loc, per, metric, cmap, layers, positions, chosen, best)
    n = single(loc.get("n_concepts"))
    what = f"Location search: the choice among prompt-only placements ({count(n, 'development concept')})"
    finish(fig, figure_title(what, model, "factor_free"), [judge_note(judge)], legend=_legend(positions, chosen, best))
    return fig
