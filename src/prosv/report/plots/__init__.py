"""Figures from the tidy tables (matplotlib and seaborn; no model, no torch): one module per figure,
and :mod:`.style` for what they share.

Families (colours, markers) come from each row's data (:mod:`..families`), never from method names;
line styles and hatches from the loss recorded in each row.
"""

from .locate import plot_locate_heatmap
from .loreft import plot_loreft_vs_prosv
from .loss_curves import plot_loss_curves
from .main_scores import plot_main_scores
from .robustness import plot_robustness_vs_utility
from .scaling import plot_scaling
from .style import figure_title, palette, placeholder, save_figure, style
from .task import plot_task_steering
from .utility import plot_utility

__all__ = [
    "figure_title",
    "palette",
    "placeholder",
    "plot_locate_heatmap",
    "plot_loreft_vs_prosv",
    "plot_loss_curves",
    "plot_main_scores",
    "plot_robustness_vs_utility",
    "plot_scaling",
    "plot_task_steering",
    "plot_utility",
    "save_figure",
    "style",
]
