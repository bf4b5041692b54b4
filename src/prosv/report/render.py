"""Everything the `figures` rule writes: every figure, the main table in markdown and SUMMARY.md."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ..files import write_text
from . import plots as P
from .pages import summary_page, tables_page
from .summary import write_summary
from .text import main_table_markdown

# figure name -> the tables it is drawn from
FIGURES = {
    "main_scores": ("main",),
    "locate_heatmap": ("locate", "locate_concepts"),
    "scaling": ("scaling",),
    "loss_curves": ("losses",),
    "loreft_vs_prosv": ("loreft", "loreft_cosine", "loreft_spread"),
    "utility": ("utility",),
    "robustness_vs_utility": ("robustness",),
    "task_steering": ("task",),  # drawn by the task_steering rule
}


def figure_makers(tables: Mapping[str, pd.DataFrame | None], model: str | None, choice: Mapping | None) -> dict:
    """Figure name -> a function drawing it from ``tables`` (a matplotlib figure, not saved)."""
    judge = (choice or {}).get("judge")
    return {
        "main_scores": lambda: P.plot_main_scores(tables.get("main"), model=model),
        "locate_heatmap": lambda: P.plot_locate_heatmap(
            tables.get("locate"), tables.get("locate_concepts"), choice=choice, model=model, judge=judge
        ),
        "scaling": lambda: P.plot_scaling(tables.get("scaling"), model=model),
        "loss_curves": lambda: P.plot_loss_curves(tables.get("losses"), model=model),
        "loreft_vs_prosv": lambda: P.plot_loreft_vs_prosv(
            tables.get("loreft"), tables.get("loreft_cosine"), tables.get("loreft_spread"), model=model
        ),
        "utility": lambda: P.plot_utility(tables.get("utility"), model=model),
        "robustness_vs_utility": lambda: P.plot_robustness_vs_utility(tables.get("robustness"), model=model),
        "task_steering": lambda: P.plot_task_steering(tables.get("task"), model=model),
    }


def render_all(
    tables: Mapping[str, pd.DataFrame | None],
    figure_paths: Mapping[str, str | Path],
    *,
    main_md: str | Path | None = None,
    summary: str | Path | None = None,
    model: str | None = None,
    choice: Mapping | None = None,
    provenance: Mapping | None = None,
    summary_html: str | Path | None = None,
    tables_html: str | Path | None = None,
    strict: bool = True,
) -> dict[str, str]:
    """Render every figure named in ``figure_paths`` (keys of :data:`FIGURES`), the main table, the
    summary, and HTML pages of the summary and of every table (for the Snakemake report). With
    ``strict=False`` a figure whose table is missing becomes a placeholder PNG saying so (the workflow
    still declares every output); the problems are returned by name."""
    makers = figure_makers(tables, model, choice)
    problems = {}
    for name, path in figure_paths.items():
        if name not in makers:
            raise ValueError(f"unknown figure {name!r}; known: {sorted(makers)}")
        try:
            fig = makers[name]()
        except ValueError as err:
            if strict:
                raise
            problems[name] = str(err)
            fig = P.placeholder(f"{name}: not available\n{err}")
        P.save_figure(fig, path)
    if main_md is not None:
        write_text(main_md, main_table_markdown(tables.get("main"), model=model))
    if summary is not None:
        text = write_summary(tables, summary, model=model, choice=choice, provenance=provenance)
        if summary_html is not None:
            write_text(summary_html, summary_page(text))
    if tables_html is not None:
        write_text(tables_html, tables_page(tables))
    return problems
