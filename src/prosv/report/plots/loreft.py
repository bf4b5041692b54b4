"""Rank-1 LoReFT against PrOSV at the same positions: loss curves, direction cosine, and the spread of
hidden states at the intervened vs content positions."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from ..frames import require
from ..paper import COS_THRESHOLD
from .style import LINESTYLES, figure_title, finish, integer_ticks, step_marker, style


def _losses(ax, lo: pd.DataFrame) -> None:
    lo = lo.assign(concept=lo["concept"].astype(str))
    styles = dict(zip(sorted(lo["concept"].unique()), LINESTYLES * 10))
    methods = sorted(lo["method"].astype(str).unique())
    colours = dict(zip(methods, sns.color_palette("colorblind", max(len(methods), 2))))
    for (method, concept), g in lo.groupby(["method", "concept"], sort=True):
        g = g.sort_values("step")
        label = f"{method}, concept {concept}"
        marker = step_marker(len(g))
        ax.plot(
            g["step"], g["loss"], ls=styles[concept], color=colours[str(method)], label=label, lw=1.5, marker=marker
        )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss, same positions and rates")
    integer_ticks(ax.xaxis)
    ax.legend(fontsize=7)


def _cosines(ax, cos: pd.DataFrame) -> None:
    cos = cos.assign(concept=cos["concept"].astype(str))
    x = range(len(cos))
    ax.bar(list(x), cos["cosine"], color=sns.color_palette("Greens", 5)[3], edgecolor="black", lw=0.5)
    ax.axhline(COS_THRESHOLD, color="red", ls="--", lw=1, label=f"paper: > {COS_THRESHOLD}")
    for i, v in zip(x, cos["cosine"]):
        ax.text(i, v + 0.015, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), cos["concept"])
    ax.set_ylim(0, 1.3)  # room above the value labels for the legend
    ax.set_xlabel("concept")
    ax.set_ylabel("|cos(R row, v)|")
    ax.set_title("LoReFT direction vs PrOSV v")
    ax.legend(fontsize=7, loc="upper center")


def _spread(ax, sp: pd.DataFrame) -> None:
    sp = sp.assign(position=sp["position"].astype(str))
    sns.barplot(
        data=sp,
        x="position",
        y="mean_pairwise_cosine",
        hue="kind",
        ax=ax,
        palette="Set2",
        edgecolor="black",
        linewidth=0.4,
    )
    ax.tick_params(axis="x", rotation=35)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.set_ylim(0, 1.25)
    ax.set_xlabel("position")
    ax.set_ylabel("mean pairwise cosine across prompts")
    ax.set_title("Hidden-state spread at each position")
    ax.legend(title=None, fontsize=8, loc="upper right")


def plot_loreft_vs_prosv(loreft: pd.DataFrame, cosine: pd.DataFrame, spread: pd.DataFrame, *, model: str | None = None):
    """LoReFT (rank 1) against PrOSV at the same positions: loss curves, direction cosine, and the
    spread of hidden states at the intervened vs content positions (the mechanism)."""
    lo = require(loreft, "loreft", ["method", "concept", "step", "loss"])
    cos = require(cosine, "loreft_cosine", ["concept", "cosine"])
    sp = require(spread, "loreft_spread", ["kind", "position", "mean_pairwise_cosine"])
    style()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), gridspec_kw={"width_ratios": [1.3, 0.8, 1.2]})
    _losses(axes[0], lo)
    _cosines(axes[1], cos)
    _spread(axes[2], sp)
    what = "Rank-1 LoReFT and PrOSV at the same template positions: loss, direction cosine, hidden-state spread"
    finish(fig, figure_title(what, model))
    return fig
