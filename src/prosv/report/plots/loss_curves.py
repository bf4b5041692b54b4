"""Training of the main runs: loss per optimizer step per objective, and the trained factor alpha."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ..families import families
from ..frames import require, single
from .style import (
    figure_title,
    finish,
    integer_ticks,
    loss_style,
    loss_styles,
    palette,
    readable_log_ticks,
    step_marker,
    style,
)


def _main_runs(df: pd.DataFrame) -> pd.DataFrame:
    if "role" in df.columns and (df["role"] == "main").any():
        df = df[df["role"].isin(["main", "extra"])]
    elif "split" in df.columns and (df["split"] == "eval").any():
        df = df[df["split"] == "eval"]
    df = df.copy()
    df["objective"] = df["objective"].fillna("other") if "objective" in df.columns else "other"
    df["run"] = df["method"].astype(str)
    if "positions" in df.columns:
        df["run"] = df["run"] + " (" + df["positions"].astype(str) + ")"
    return df


def plot_loss_curves(losses: pd.DataFrame, *, model: str | None = None):
    """Training loss per step (mean over concepts, band: min-max) of the main runs, one panel per
    objective, and the trajectory of the factor alpha. Line style follows the objective."""
    df = _main_runs(require(losses, "losses", ["method", "step", "loss"]))
    style()
    objectives = sorted(df["objective"].unique())
    has_alpha = "alpha" in df.columns and df["alpha"].notna().any()
    ncol = len(objectives) + (1 if has_alpha else 0)
    fig, axes = plt.subplots(1, ncol, figsize=(4.8 * ncol, 4.2), squeeze=False)
    axes = axes[0]
    run_family = dict(zip(df["run"], families(df)))
    run_objective = dict(zip(df["run"], df["objective"]))
    colors = palette(dict(sorted(run_family.items())))
    styles = loss_styles(df["objective"])
    for ax, obj in zip(axes, objectives):
        for run, g in df[df["objective"] == obj].groupby("run", sort=True):
            s = g.groupby("step")["loss"].agg(["mean", "min", "max"])
            ls, marker = loss_style(styles, obj)["ls"], step_marker(len(s))
            ax.plot(s.index, s["mean"], color=colors[run], label=run, lw=1.6, ls=ls, marker=marker, ms=4)
            ax.fill_between(s.index, s["min"], s["max"], color=colors[run], alpha=0.15, lw=0)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(f"training loss ({obj})")
        ax.set_title(f"{obj} loss\n(mean over concepts; band: min-max)", fontsize=10)
        integer_ticks(ax.xaxis)
        ax.legend(fontsize=7, loc="best")
    if has_alpha:
        ax = axes[-1]
        for run, g in df[df["alpha"].notna()].groupby("run", sort=True):
            s = g.groupby("step")["alpha"].mean()
            ls = loss_style(styles, run_objective[run])["ls"]
            label = f"{run}, {run_objective[run]}"
            ax.plot(s.index, s.values, color=colors[run], label=label, lw=1.6, ls=ls, marker=step_marker(len(s)), ms=4)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("factor alpha (mean over concepts)")
        ax.set_title("Trained factor alpha")
        integer_ticks(ax.xaxis)
        if (df["alpha"].dropna() > 0).all():
            ax.set_yscale("log")
            readable_log_ticks(ax.yaxis)
        ax.legend(fontsize=7, loc="best")
    layer = single(df.get("layer"))
    finish(fig, figure_title(f"Joint training of factor and direction (layer {layer})", model))
    return fig
