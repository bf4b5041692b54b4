"""Task steering: each arm's test items split into correct, wrong and format failures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..frames import require, single
from ..paper import BLOG_TASK, BLOG_TASK_ARMS
from ..task import ARMS
from .style import error_bars, figure_title, finish, style

SHARES = (("accuracy", "correct", "#4c72b0", ""), ("wrong", "wrong", "#c7d4e8", ""),
          ("format_failures", "format failure", "white", "//"))  # fmt: skip


def plot_task_steering(task, *, model: str | None = None):
    """Stacked shares of correct, wrong and malformed answers per arm, the accuracy's Wilson
    interval on the correct share, and the blog's BoolQ accuracy (Llama-2-7B) as diamonds."""
    tb = require(task, "task", ["arm", "n", "accuracy", "ci_low", "ci_high", "wrong", "format_failures"])
    style()
    arms = tb["arm"].tolist()
    fig, ax = plt.subplots(figsize=(max(6.5, 1.1 * len(arms) + 3.0), 4.6))
    xs = np.arange(len(arms))
    bottom = np.zeros(len(arms))
    for column, label, colour, hatch in SHARES:
        heights = tb[column].to_numpy(float)
        ax.bar(xs, heights, 0.6, bottom=bottom, color=colour, edgecolor="black", lw=0.5, hatch=hatch, label=label)
        bottom += heights
    acc = tb["accuracy"].to_numpy(float)
    ax.errorbar(xs, acc, yerr=error_bars(acc, tb["ci_low"], tb["ci_high"]), fmt="none", ecolor="black", capsize=4)
    blog = [(i, BLOG_TASK[BLOG_TASK_ARMS[a]] / 100) for i, a in enumerate(arms) if a in BLOG_TASK_ARMS]
    if blog:
        ax.scatter(*zip(*blog), marker="D", s=42, color="white", edgecolor="black", zorder=5,
                   label="blog (Llama-2-7B, BoolQ)")  # fmt: skip
    ax.set_xticks(xs, [ARMS[a][1] if a in ARMS else a for a in arms], rotation=20, ha="right")
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("share of test items (accuracy: 95% Wilson interval)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    n = single(tb["n"])
    finish(fig, figure_title(f"Yes/no reading task: answers of each arm ({n} test items)", model),
           ["format failure: the answer does not start with yes or no"])  # fmt: skip
    return fig
