"""Utility under steering: accuracy per task and condition, with binomial (Wilson) intervals."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..examples import UNSTEERED
from ..families import families
from ..frames import isna, require, single
from .style import count, error_bars, figure_title, finish, mark_zero_bars, style

FAMILY_ORDER = {"baseline": 1, "fssv": 2, "prompt": 3, "prosv": 4}


def _label(method, factor) -> str:
    return str(method) if isna(factor) or abs(float(factor) - 1.0) < 1e-9 else f"{method} x{float(factor):g}"


def _ordered(ut: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    ut = ut.copy()
    ut["label"] = [_label(m, f) for m, f in zip(ut["method"], ut["factor"])]
    ut["_k"] = [0 if m == UNSTEERED else FAMILY_ORDER.get(f, 5) for m, f in zip(ut["method"], families(ut))]
    labels = list(ut.sort_values(["_k", "method", "factor"], ascending=[True, True, False])["label"].unique())
    return ut, labels


def plot_utility(utility: pd.DataFrame, *, model: str | None = None):
    """Accuracy per task with each condition's vector applied (answers pooled over concepts, 95%
    Wilson interval); the unsteered accuracy is drawn as a line across each task's bars. A zero
    accuracy shows as a thick mark on the axis, not as a missing bar."""
    ut = require(utility, "utility", ["method", "factor", "task", "n_answers", "correct", "accuracy_lo", "accuracy_hi"])
    style()
    ut, labels = _ordered(ut)
    tasks = sorted(ut["task"].unique())
    fig, ax = plt.subplots(figsize=(max(7.5, 0.75 * len(labels) * max(1, len(tasks)) + 3.5), 4.8))
    width = 0.8 / len(tasks)
    pal = sns.color_palette("deep", len(tasks))
    for j, task in enumerate(tasks):
        part = ut[ut["task"] == task].set_index("label").reindex(labels)
        acc = (part["correct"] / part["n_answers"]).to_numpy(float)
        xs = np.arange(len(labels)) + (j - (len(tasks) - 1) / 2) * width
        ax.bar(
            xs,
            acc,
            width,
            yerr=error_bars(acc, part["accuracy_lo"], part["accuracy_hi"]),
            capsize=3,
            color=pal[j],
            edgecolor="black",
            lw=0.5,
            label=task,
        )
        mark_zero_bars(ax, xs, acc, width, pal[j])
        base = part.loc[labels[0], "correct"] / part.loc[labels[0], "n_answers"] if labels[0] in part.index else None
        if base is not None and not isna(base) and ut["method"].eq(UNSTEERED).any():
            ax.axhline(float(base), color=pal[j], lw=0.9, ls=":", zorder=1)
    ax.set_xticks(np.arange(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel("accuracy (95% Wilson interval)")
    ax.set_ylim(0, min(1.05, max(0.2, float(np.nanmax(ut["accuracy_hi"])) * 1.1)))
    ax.legend(title="task (dotted: unsteered)", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    n = single(ut.loc[ut["method"] != UNSTEERED, "n_concepts"]) if "n_concepts" in ut else None
    q = single(ut.get("n_questions"))
    what = f"Utility under steering: accuracy per task ({q} questions x {count(n, 'concept')} per steered bar)"
    finish(fig, figure_title(what, model), ["x0.5: the vector's learned factor scaled by 0.5"])
    return fig
