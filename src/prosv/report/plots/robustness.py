"""Robustness against utility: steering score under the suppression attack against relative accuracy."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..families import families
from ..frames import require, single
from .style import error_bars, figure_title, finish, judge_note, loss_style, loss_styles, palette, style

MARKERS = {"fssv": "s", "prosv": "o", "prompt": "P", "baseline": "^"}


def _factor_labels(ax, g: pd.DataFrame, styles, loss, color) -> None:
    # one side per loss, so the factor labels of two runs at the same point do not collide
    side = -1 if str(loss) in styles and list(styles).index(str(loss)) % 2 else 1
    for _, r in g.iterrows():
        ax.annotate(
            f"x{r['factor']:g}",
            (r["relative_accuracy"], r["overall"]),
            textcoords="offset points",
            xytext=(6, 6 * side),
            va="bottom" if side > 0 else "top",
            fontsize=7,
            color=color,
        )


def plot_robustness_vs_utility(robustness: pd.DataFrame, *, model: str | None = None):
    """Steering score under the suppression attack against utility (relative accuracy); FSSV traced
    over its factor multipliers, PrOSV and baselines as points. Marker: family; line style and open
    or filled marker: loss."""
    rb = require(robustness, "robustness", ["method", "factor", "overall", "relative_accuracy"])
    rb = rb[rb["relative_accuracy"].notna()]
    if rb.empty:
        raise ValueError("table 'robustness' has no row with a utility (relative_accuracy): nothing to plot")
    style()
    rb = rb.assign(loss=rb["loss"] if "loss" in rb.columns else None)
    method_family = dict(zip(rb["method"], families(rb)))
    colors = palette(dict(sorted(method_family.items())))
    styles = loss_styles(rb["loss"])
    fig, ax = plt.subplots(figsize=(7.4, 5.4))
    for method, g in rb.groupby("method", sort=True):
        g = g.sort_values("relative_accuracy")
        fam = method_family[method]
        loss = g["loss"].iloc[0]
        st = loss_style(styles, loss)
        yerr = error_bars(g["overall"], g["overall_lo"], g["overall_hi"]) if "overall_lo" in g else None
        xerr = g["relative_accuracy_std"].fillna(0).to_numpy() if "relative_accuracy_std" in g else None
        ax.errorbar(
            g["relative_accuracy"],
            g["overall"],
            yerr=yerr,
            xerr=xerr,
            fmt=MARKERS.get(fam, "D"),
            ls=st["ls"] if len(g) > 1 else "none",
            color=colors[method],
            mfc=colors[method] if st["filled"] else "white",
            label=method if pd.isna(loss) else f"{method} ({loss})",
            ms=7,
            capsize=3,
            lw=1.4,
            elinewidth=0.8,
        )
        if len(g) > 1 or fam == "fssv":
            _factor_labels(ax, g, styles, loss, colors[method])
    ax.set_xlabel("utility: accuracy relative to unsteered (mean over tasks; bars: std over concepts)")
    ax.set_ylabel("overall score under suppression attack (95% CI)")
    ax.set_xlim(left=min(0, ax.get_xlim()[0]), right=max(1.05, float(np.nanmax(rb["relative_accuracy"])) + 0.1))
    # the score's own scale from 0 (with room for a point at 0), not a zoom onto whatever range was hit
    top = float(np.nanmax(rb["overall_hi"] if "overall_hi" in rb else rb["overall"]))
    ax.set_ylim(-0.02 * max(0.5, top * 1.15), max(0.5, top * 1.15))
    ax.legend(fontsize=8, loc="best")
    ax.text(
        0.99, 0.01, "better: up and right", transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="grey"
    )
    title = figure_title("Robustness vs utility (FSSV traced over factor multipliers)", model, "suppression_attack")
    finish(fig, title, [judge_note(single(rb.get("judge")))])
    return fig
