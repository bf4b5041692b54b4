"""The task-steering experiment's table, its page and its figure, from the scored answers (no model).

The arms (:data:`ARMS`) live here, torch-free, so the report reads them without loading the
experiment's training code; :mod:`prosv.experiments.task` trains and answers them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..files import write_parquet, write_text
from ..stats import wilson_interval

UNSTEERED = "unsteered"
LORA = "lora"
# arm -> (what it trains, its label); the order is the table's
ARMS = {
    UNSTEERED: ("none", "unsteered"),
    "fssv_layer": ("sv", "FSSV, one layer"),
    "fssv_layers": ("sv", "FSSV, every layer"),
    "prosv_layer": ("sv", "PrOSV, one layer"),
    "prosv_layers": ("sv", "PrOSV, every layer"),
    LORA: ("lora", "LoRA"),
}


def task_table(answers: pd.DataFrame) -> pd.DataFrame:
    """Per arm: accuracy with its Wilson 95% interval, the shares of wrong answers and format
    failures, accuracy among well-formed answers, and the share of 'yes' among them (a vector that
    answers one word for every item scores about the share of that answer)."""
    rows = []
    order = [a for a in ARMS if a in set(answers.arm)] + sorted(set(answers.arm) - set(ARMS))
    for arm in order:
        part = answers[answers.arm == arm]
        n, correct, formed = len(part), int(part.correct.sum()), int(part.format_ok.sum())
        lo, hi = wilson_interval(correct, n)
        rows.append(
            {
                "arm": arm,
                "n": n,
                "accuracy": correct / n,
                "ci_low": lo,
                "ci_high": hi,
                "wrong": (formed - correct) / n,
                "format_failures": (n - formed) / n,
                "accuracy_when_formed": correct / formed if formed else float("nan"),
                "yes_share": float(part.parsed.dropna().astype(bool).mean()) if formed else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def per_item(answers: pd.DataFrame, arm: str, value: str = "correct") -> pd.Series:
    """An arm's per-item 0/1 values indexed by item id (the paired unit of the task comparisons)."""
    part = answers[answers.arm == arm]
    return part.set_index("item_id")[value].astype(float)


def _pct(x) -> str:
    return "-" if pd.isna(x) else f"{100 * x:.0f}%"


def task_markdown(task: pd.DataFrame, comparisons: pd.DataFrame, model: str | None = None) -> str:
    """The task table beside the blog's numbers, and claim 7's paired comparisons with verdicts."""
    lines = [
        f"# Task steering: yes/no reading{f' ({model})' if model else ''}",
        "",
        "Each arm answers every test item greedily; an answer that does not start with yes or no is a format "
        "failure. Accuracy with a Wilson 95% interval; the blog's BoolQ accuracy (Llama-2-7B) beside it.",
        "",
        task_rows_markdown(task),
    ]
    lines += [
        "",
        "Paired comparisons over test items (mean difference in accuracy, paired bootstrap 95% interval):",
        "",
        "| comparison | difference [95% CI] | n | verdict |",
        "|---|---|---|---|",
    ]
    for r in comparisons.itertuples():
        diff = "-" if pd.isna(r.difference) else f"{r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
        lines.append(f"| {r.comparison} | {diff} | {r.n} | **{r.verdict}** |")
    return "\n".join(lines) + "\n"


def task_rows_markdown(task: pd.DataFrame) -> str:
    """One row per arm: accuracy [CI], wrong, format failures, accuracy when well-formed, yes share, blog."""
    from .paper import BLOG_TASK, BLOG_TASK_ARMS

    lines = [
        "| arm | n | accuracy [95% CI] | wrong | format failures | accuracy when well-formed | 'yes' share | blog |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in task.itertuples():
        blog = BLOG_TASK.get(BLOG_TASK_ARMS.get(r.arm, ""), None)
        lines.append(
            f"| {ARMS[r.arm][1] if r.arm in ARMS else r.arm} | {r.n} | {_pct(r.accuracy)} [{_pct(r.ci_low)}, "
            f"{_pct(r.ci_high)}] | {_pct(r.wrong)} | {_pct(r.format_failures)} | {_pct(r.accuracy_when_formed)} | "
            f"{_pct(r.yes_share)} | {'-' if blog is None else f'{blog:g}%'} |"
        )
    return "\n".join(lines)


def render_task(
    answers: pd.DataFrame,
    losses: pd.DataFrame,
    *,
    table: str | Path,
    items: str | Path,
    losses_out: str | Path,
    markdown: str | Path,
    figure: str | Path,
    model: str | None = None,
    n_boot: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Write the task table, the scored answers, the training losses, the page and the figure."""
    from . import claims as C
    from .plots import save_figure
    from .plots.task import plot_task_steering

    summary = task_table(answers)
    comparisons = C.comparisons({"task_items": answers}, n_boot=n_boot, seed=seed)
    comparisons = comparisons[comparisons.claim == 7]
    write_parquet(table, summary)
    write_parquet(items, answers)
    if "layer" in losses:  # one layer (20) beside several ("0-29"): one column of text
        losses = losses.assign(layer=losses["layer"].astype(str))
    write_parquet(losses_out, losses)
    write_text(markdown, task_markdown(summary, comparisons, model))
    save_figure(plot_task_steering(summary, model=model), figure)
    return summary
