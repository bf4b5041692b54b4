"""Numbers as text: formatting, GitHub markdown tables, and the main and location tables in markdown."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .families import position_key
from .frames import RATINGS, isna, require, single
from .paper import PAPER_LOCATE, PAPER_MAIN, PAPER_MODELS, paper_key, paper_model


def fmt(x, digits: int = 3) -> str:
    if isna(x):
        return "-"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        if float(x).is_integer() and abs(x) < 1e6 and digits == 0:
            return str(int(x))
        return f"{float(x):.{digits}f}"
    return str(x)


def pm(mean, std, digits: int) -> str:
    return fmt(mean, digits) if isna(std) else f"{fmt(mean, digits)} +- {fmt(std, digits)}"


def interval(mean, lo, hi, digits: int = 3) -> str:
    return f"{fmt(mean, digits)} [{fmt(lo, digits)}, {fmt(hi, digits)}]"


def markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table (no tabulate dependency); cells already formatted as text."""
    cols = [str(c) for c in df.columns]

    def esc(s):
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(esc(v) for v in row) + " |")
    return "\n".join(lines)


def main_table_markdown(main: pd.DataFrame, *, model: str | None = None) -> str:
    """The main table with the paper's number beside ours, headed by model, judge and protocols."""
    main = require(main, "main", ["method", "protocol", "judge", "overall", "overall_lo", "overall_hi", *RATINGS])
    col, same = paper_model(model)
    rows = []
    for _, r in main.iterrows():
        key = paper_key(r)
        rows.append(
            {
                "method": r["method"],
                "loss": fmt(r.get("loss")),
                "layer": fmt(r.get("layer")),
                "positions": fmt(r.get("positions")),
                "protocol": r["protocol"],
                "n": fmt(r.get("n_concepts")),
                "overall [95% CI]": interval(r["overall"], r["overall_lo"], r["overall_hi"]),
                "concept": fmt(r["concept_score"], 2),
                "instruction": fmt(r["instruction_score"], 2),
                "fluency": fmt(r["fluency_score"], 2),
                "mean alpha": fmt(r.get("mean_alpha"), 1),
                f"paper ({PAPER_MODELS[col]})": "-" if key is None else f"{PAPER_MAIN[key][col]:.3f}",
            }
        )
    head = (
        f"Main results. Model: **{model or 'unknown'}**; judge: **{single(main['judge'])}**; protocols: "
        f"{single(main['protocol'])} (factor_free: learned factor as is, all instructions; "
        f"factor_grid: factor chosen per concept on the first half of its instructions, scored on the rest). "
        f"Overall = harmonic mean of the three 0-2 ratings, mean over concepts, 95% bootstrap CI over concepts."
    )
    if not same:
        head += (
            f" The paper column is {PAPER_MODELS[col]} with gpt-4o-mini as judge: a reference point, "
            f"not a like-for-like number."
        )
    return head + "\n\n" + markdown(pd.DataFrame(rows)) + "\n"


def locate_table_markdown(locate: pd.DataFrame, *, model: str | None = None) -> str:
    loc = require(locate, "locate", ["layer", "positions", "overall", "concept_score"])
    col, _ = paper_model(model)
    rows = []
    records = sorted((r for _, r in loc.iterrows()), key=lambda r: (int(r["layer"]), position_key(r["positions"])))
    for r in records:
        p = PAPER_LOCATE.get(str(r["positions"]), {}).get(col)
        ours = interval(r["overall"], r["overall_lo"], r["overall_hi"], 2) if "overall_lo" in r else fmt(r["overall"])
        rows.append(
            {
                "layer": fmt(r["layer"]),
                "positions": r["positions"],
                "overall [95% CI]": ours,
                "concept": fmt(r["concept_score"], 2),
                "n": fmt(r.get("n_concepts")),
                "chosen": "yes" if bool(r.get("chosen", False)) else "",
                f"paper overall / concept ({PAPER_MODELS[col]})": "-" if p is None else f"{p[0]:.2f} / {p[1]:.2f}",
            }
        )
    return markdown(pd.DataFrame(rows)) + "\n"
