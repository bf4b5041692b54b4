"""The scaling study: last-epoch loss and overall score over factor init x factor learning rate, and the
ablation cells beside the best grid cell."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from ..frames import isna, require, single
from .style import SCORE_RANGE, colour_span_label, figure_title, finish, interval_annotations, style


def _grid_table(grid: pd.DataFrame, values: str) -> pd.DataFrame:
    table = (
        grid.pivot_table(index="c_alpha", columns="eta_alpha", values=values, aggfunc="mean")
        .sort_index(ascending=False)
        .sort_index(axis=1)
    )
    table.columns = [f"{c:g}" for c in table.columns]
    table.index = [f"{c:g}" for c in table.index]
    return table


def _score_text(grid: pd.DataFrame) -> pd.DataFrame | bool:
    """Cell text "mean [lo, hi]" when the table has the interval, else True (the mean alone)."""
    if not {"overall_lo", "overall_hi"} <= set(grid.columns):
        return True
    return interval_annotations(*(_grid_table(grid, c) for c in ("overall", "overall_lo", "overall_hi")))


def _heatmaps(axes, grid: pd.DataFrame) -> None:
    for ax, metric, cmap, title in (
        (axes[0], "final_loss", "viridis_r", "last-epoch training loss"),
        (axes[1], "overall", "viridis", "overall score (95% CI over responses)"),
    ):
        table = _grid_table(grid, metric)
        full = SCORE_RANGE if metric == "overall" else None
        limits, label = colour_span_label("loss" if metric == "final_loss" else "score", table.to_numpy(), full)
        annot = _score_text(grid) if metric == "overall" else True
        sns.heatmap(
            table,
            annot=annot,
            fmt="" if annot is not True else ".2f",
            annot_kws={"fontsize": 8},
            cmap=cmap,
            ax=ax,
            cbar_kws={"shrink": 0.85, "label": label},
            linewidths=0.5,
            linecolor="white",
            **limits,
        )
        ax.set_xlabel("factor learning rate eta_alpha (Adam, raw)")
        ax.set_ylabel("factor init c_alpha\n(alpha_0 = c_alpha sqrt(n))")
        ax.set_title(title)
        ax.tick_params(axis="y", rotation=0)


def _ablations(ax, sc: pd.DataFrame, grid: pd.DataFrame) -> None:
    best = grid.sort_values("final_loss").iloc[0]
    others = sc[sc["kind"] != "grid"]
    bars = pd.concat([best.to_frame().T.assign(cell=f"best grid: {best['cell']}"), others], ignore_index=True)
    loss = bars["final_loss"].astype(float)
    y = list(range(len(bars)))
    ax.barh(y, loss, color=["#2b8cbe"] + ["#bdbdbd"] * (len(bars) - 1), edgecolor="black", lw=0.4)
    ax.set_yticks(y, [str(c) for c in bars["cell"]])
    ax.invert_yaxis()
    for i, r in bars.iterrows():
        score = f"score {float(r['overall']):.2f}"
        if not isna(r.get("overall_lo")):
            score += f" [{float(r['overall_lo']):.2f}, {float(r['overall_hi']):.2f}]"
        ax.text(float(r["final_loss"]), i, f" {float(r['final_loss']):.3f}; {score}", va="center", fontsize=7.5)
    ax.set_xlim(0, float(loss.max()) * 1.75)  # from zero: a bar's length is its loss
    ax.set_xlabel("last-epoch training loss (lower is better)")
    ax.set_title("ablations (axis from 0)")


def plot_scaling(scaling: pd.DataFrame, *, model: str | None = None):
    """Final training loss and overall score over factor init x factor learning rate (Adam, raw
    rates), and every ablation cell (alpha fixed, SGD, rate transfer) beside the best grid cell."""
    sc = require(scaling, "scaling", ["cell", "kind", "c_alpha", "eta_alpha", "final_loss", "overall"])
    grid = sc[sc["kind"] == "grid"]
    if grid.empty:
        raise ValueError("table 'scaling' has no grid cells")
    style()
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8), gridspec_kw={"width_ratios": [1, 1, 1.25]})
    _heatmaps(axes, grid)
    _ablations(axes[2], sc, grid)
    n = single(sc.get("positions"))
    layer = single(sc.get("layer"))
    what = f"Scaling study: factor init and learning rate (layer {layer}, {n}; development concepts)"
    finish(fig, figure_title(what, model), [single(sc.get("judge")) and f"judge: {single(sc.get('judge'))}"])
    return fig
