"""The main results: overall score per method with its interval and the paper's number, and the three
rating means with theirs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from ... import evaluation as E
from ..families import families
from ..frames import RATINGS, isna, require, single
from ..paper import PAPER_MAIN, paper_key, paper_label, paper_model
from .style import (
    SCORE_RANGE,
    count,
    error_bars,
    figure_title,
    finish,
    judge_note,
    loss_style,
    loss_styles,
    mark_zero_bars,
    palette,
    style,
)

RATING_COLOURS = {"concept_score": "#4c72b0", "instruction_score": "#dd8452", "fluency_score": "#55a868"}


def _labels(df: pd.DataFrame) -> list[str]:
    """Method names, with the loss where there is one: the loss is part of what a bar is."""
    return [m if isna(lo) else f"{m} ({lo})" for m, lo in zip(df["method"], df["loss"])]


def _hatches(df: pd.DataFrame, styles: dict) -> list[str]:
    grid = df["protocol"] == E.PROTOCOL_FACTOR_GRID
    return [
        ("//" if g else "") + (loss_style(styles, lo)["hatch"] if not isna(lo) else "")
        for g, lo in zip(grid, df["loss"])
    ]


def _top(df: pd.DataFrame) -> float:
    """Upper y limit: room above the highest interval for its value label."""
    highest = np.nanmax(np.r_[df["overall_hi"].to_numpy(float), df["overall"].to_numpy(float)])
    return min(SCORE_RANGE[1] * 1.12, max(0.5, highest * 1.18 + 0.08))


def _overall_panel(ax, df: pd.DataFrame, model: str | None, show_paper: bool, styles: dict) -> None:
    names = list(df["method"])
    colors = palette(dict(zip(names, families(df))))
    x = np.arange(len(df))
    ax.bar(
        x,
        df["overall"],
        yerr=error_bars(df["overall"], df["overall_lo"], df["overall_hi"]),
        capsize=4,
        color=[colors[n] for n in names],
        edgecolor="black",
        linewidth=0.6,
        hatch=None,
        label="ours (95% CI over concepts)",
    )
    for patch, hatch in zip(ax.patches, _hatches(df, styles)):
        patch.set_hatch(hatch or None)
    mark_zero_bars(ax, x, df["overall"], 0.8, [colors[n] for n in names])
    col, _ = paper_model(model)
    marks = [(i, PAPER_MAIN[key][col]) for i, r in df.iterrows() if (key := paper_key(r)) is not None]
    if show_paper and marks:
        ax.scatter(*zip(*marks), marker="D", s=36, color="white", edgecolor="black", zorder=5, label=paper_label(model))
    top = _top(df)
    for xi, v, hi in zip(x, df["overall"], df["overall_hi"]):
        if not isna(v):
            # above the interval's end, so the label never sits on the error bar
            y = max(v, hi if not isna(hi) else v) + 0.02 * top
            ax.text(xi, y, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, _labels(df), rotation=30, ha="right")
    ax.set_ylabel("overall score (0-2, harmonic mean)")
    ax.set_ylim(0, top)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Overall steering score")


def _ratings_panel(ax, df: pd.DataFrame) -> None:
    x = np.arange(len(df))
    width = 0.8 / len(RATINGS)
    has_ci = all(f"{r}_lo" in df.columns for r in RATINGS)
    for j, r in enumerate(RATINGS):
        err = error_bars(df[r], df[f"{r}_lo"], df[f"{r}_hi"]) if has_ci else None
        ax.bar(
            x + (j - 1) * width,
            df[r],
            width,
            yerr=err,
            capsize=2,
            color=RATING_COLOURS[r],
            edgecolor="black",
            linewidth=0.4,
            label=r.replace("_score", ""),
            error_kw={"elinewidth": 0.8},
        )
        mark_zero_bars(ax, x + (j - 1) * width, df[r], width, RATING_COLOURS[r])
    ax.set_xticks(x, _labels(df), rotation=30, ha="right")
    ax.set_ylim(0, SCORE_RANGE[1] * 1.12)
    ax.set_ylabel("mean rating (0-2)" + (", 95% CI over concepts" if has_ci else ""))
    ax.set_title("Concept, instruction and fluency ratings")
    ax.legend(title=None, fontsize=8, ncol=3, loc="upper left")


def _legend_notes(ax, df: pd.DataFrame, styles: dict) -> None:
    handles = []
    if (df["protocol"] == E.PROTOCOL_FACTOR_GRID).any():
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="factor grid protocol"))
    if len(styles) > 1:
        for loss, st in styles.items():
            handles.append(Patch(facecolor="white", edgecolor="black", hatch=st["hatch"] or None, label=f"loss {loss}"))
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="upper right", ncol=len(handles))


def plot_main_scores(main: pd.DataFrame, *, model: str | None = None, show_paper: bool = True):
    """Overall score per method (95% CI over concepts), with the paper's number beside it, and the
    three rating means with their intervals. Factor-grid rows are hatched, and so is the second loss."""
    main = require(main, "main", ["method", "protocol", "overall", "overall_lo", "overall_hi", *RATINGS])
    style()
    df = main.reset_index(drop=True)
    if "loss" not in df.columns:
        df["loss"] = None
    styles = loss_styles(df["loss"])
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(max(10, 1.7 * len(df) + 5), 5.0), gridspec_kw={"width_ratios": [1.1, 1]}
    )
    _overall_panel(ax, df, model, show_paper, styles)
    _ratings_panel(ax2, df)
    first_legend = ax.get_legend()
    _legend_notes(ax, df, styles)
    if first_legend is not None:
        ax.add_artist(first_legend)
    what = f"Main results ({count(single(df.get('n_concepts')), 'concept')})"
    finish(fig, figure_title(what, model, single(df["protocol"])), [judge_note(single(df.get("judge")))])
    return fig
