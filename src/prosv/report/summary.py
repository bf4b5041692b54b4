"""SUMMARY.md: what the run says about each of the paper's claims, the tables behind it, and examples in words."""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..evaluation import JUDGE_COUNT_COLUMNS
from ..files import write_text
from ..stats import HELD, INCONCLUSIVE, INTERVAL_KIND
from .claims import VERDICTS, claims
from .examples import QUANTILES, UNSTEERED, examples_markdown
from .frames import isna, require, single, table
from .paper import PAPER_MODELS, paper_model
from .text import fmt, interval, locate_table_markdown, main_table_markdown, markdown, pm

# a table (or one of its rows) whose ratings are more than this share judge errors or unreadable answers
# (each scored 0) is flagged
JUDGE_PROBLEM_SHARE = 0.05
# the rated tables and the columns that name one of their rows
RATED_TABLES = {
    "main": ("method", "protocol"),
    "locate": ("layer", "positions"),
    "scaling": ("cell",),
    "robustness": ("method", "factor"),
}


def _share(calls, errors, failures) -> float:
    return (errors + failures) / calls if calls else 0.0


def judge_problems(tables: Mapping[str, pd.DataFrame | None]) -> pd.DataFrame:
    """Per rated table: the judge's calls, errors and parse failures summed over its rows, their share,
    the rows whose own share exceeds :data:`JUDGE_PROBLEM_SHARE`, and whether the table is flagged
    (its share or any row's over the limit). Tables without the counts are left out."""
    rows = []
    for name, keys in RATED_TABLES.items():
        df = table(tables, name)
        if df is None or any(c not in df.columns or df[c].isna().any() for c in JUDGE_COUNT_COLUMNS):
            continue
        calls, errors, failures = (int(df[c].sum()) for c in JUDGE_COUNT_COLUMNS)
        over = [
            " ".join(str(getattr(r, k)) for k in keys if k in df.columns)
            for r in df.itertuples(index=False)
            if _share(*(getattr(r, c) for c in JUDGE_COUNT_COLUMNS)) > JUDGE_PROBLEM_SHARE
        ]
        share = _share(calls, errors, failures)
        rows.append(
            {
                "table": name,
                "calls": calls,
                "errors": errors,
                "parse_failures": failures,
                "share": share,
                "rows_over_limit": over,
                "flagged": share > JUDGE_PROBLEM_SHARE or bool(over),
            }
        )
    columns = ["table", "calls", "errors", "parse_failures", "share", "rows_over_limit", "flagged"]
    return pd.DataFrame(rows, columns=columns)


def _judge_lines(problems: pd.DataFrame) -> list[str]:
    if problems.empty:
        return []
    view = problems.assign(
        share=problems["share"].map(lambda x: f"{100 * x:.1f}%"),
        rows_over_limit=problems["rows_over_limit"].map(lambda rows: ", ".join(rows) or "-"),
        flagged=problems["flagged"].map(
            lambda f: f"**over {JUDGE_PROBLEM_SHARE:.0%}: scores unreliable**" if f else "-"
        ),
    )
    return [
        "## Judge errors and parse failures",
        "",
        "Axis ratings asked of the judge (`calls`), requests that failed (scored 0 under "
        "`judge: {on_error: zero}`) and answers without a readable rating (scored 0), summed over each "
        f"table's responses; a table is flagged when they are over {JUDGE_PROBLEM_SHARE:.0%} of its "
        "ratings or of one row's.",
        "",
        markdown(view),
        "",
    ]


def _comparisons_markdown(comp: pd.DataFrame) -> str:
    rows = []
    for r in comp.itertuples(index=False):
        sensitivity = "-"
        if r.verdict == INCONCLUSIVE and r.n >= 2:
            sensitivity = f"detectable {fmt(r.detectable)}; needs ~{fmt(r.concepts_needed, 0)} concepts"
        rows.append(
            {
                "#": r.claim,
                "comparison": r.comparison,
                "a": r.a,
                "b": r.b,
                "difference (a - b) [95% CI]": interval(r.difference, r.ci_low, r.ci_high),
                "n": fmt(r.n),
                "verdict": f"**{r.verdict}**",
                "if inconclusive: 80% power": sensitivity,
            }
        )
    return markdown(pd.DataFrame(rows))


def _header(main: pd.DataFrame, model: str | None, choice: Mapping | None, provenance: Mapping | None) -> list[str]:
    col, same = paper_model(model)
    lines = [
        "# PrOSV reproduction: summary",
        "",
        f"Model: **{model or 'unknown'}**. Judge: **{single(main.get('judge'))}**. Paper: Bao et al., *Towards "
        f"Steering without Sacrifice* (ICML 2026). Paper values are for {PAPER_MODELS[col]}"
        + (
            "."
            if same
            else f" (the paper's smallest model; ours is {model or 'another model'}, so compare "
            f"directions, not magnitudes)."
        ),
    ]
    if provenance:
        lines.append("Made on: " + ", ".join(f"{k} {v}" for k, v in provenance.items() if v not in (None, "")) + ".")
    if choice:
        text = (
            f"Location chosen by the search: layer {choice.get('layer')}, positions {choice.get('positions')} "
            f"(development overall {fmt(choice.get('overall'))} over {choice.get('n_concepts', '?')} concepts"
        )
        if choice.get("runner_up"):
            ru = choice["runner_up"]
            text += (
                f"; runner-up layer {ru['layer']} {ru['positions']} {fmt(ru['overall'])}, margin "
                f"{interval(choice['margin'], choice['margin_lo'], choice['margin_hi'])}: "
                + ("separated" if choice.get("separated") else "not separated from the runner-up")
            )
        lines.append(text + ").")
    return lines


def write_summary(
    tables: Mapping[str, pd.DataFrame | None],
    path,
    *,
    model: str | None = None,
    choice: Mapping | None = None,
    provenance: Mapping | None = None,
    n_boot: int = 10_000,
    seed: int = 0,
) -> str:
    """Write SUMMARY.md: the claims with their paired comparisons, the main, location, scaling and
    utility tables. ``tables``: main (required) and the per-concept tables of :mod:`.claims`."""
    main = require(table(tables, "main"), "main")
    cl, comp = claims(tables, model=model, n_boot=n_boot, seed=seed)
    counts = cl["verdict"].value_counts()
    problems = judge_problems(tables)
    lines = _header(main, model, choice, provenance)
    flagged = list(problems.loc[problems["flagged"], "table"])
    if flagged:
        lines += [
            "",
            f"**Warning: more than {JUDGE_PROBLEM_SHARE:.0%} of the judge's ratings in {', '.join(flagged)} (or in "
            "one of its rows) are errors or parse failures, scored 0; see 'Judge errors and parse failures'.**",
        ]
    lines += [
        "",
        "Claims: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + f". Each comparison is paired (same "
        f"concepts, instructions and sample seeds); its interval is a {INTERVAL_KIND} (95%). Verdicts: **{HELD}** "
        "when the interval lies on the paper's side of zero, **contradicted** on the other side, **inconclusive** "
        "when it spans zero (then the smallest difference the design detects with 80% power, two-sided 5%, "
        "and the concepts the observed difference would need).",
        "",
        "## Claims",
        "",
        markdown(cl.assign(**{"#": cl["#"].astype(str), "verdict": "**" + cl["verdict"] + "**"})),
        "",
        "## Comparisons",
        "",
        _comparisons_markdown(comp),
        "",
        "## Main table",
        "",
        main_table_markdown(main, model=model),
        "",
    ]
    lines += _judge_lines(problems)
    lines += _optional_sections(tables, model)
    text = "\n".join(lines).rstrip() + "\n"
    write_text(path, text)
    return text


def _optional_sections(tables: Mapping[str, pd.DataFrame | None], model: str | None) -> list[str]:
    lines = []
    loc = table(tables, "locate")
    if loc is not None:
        lines += [
            "## Location search (development concepts, factor-free protocol)",
            "",
            locate_table_markdown(loc, model=model),
        ]
    sc = table(tables, "scaling")
    if sc is not None:
        lines += [
            "## Scaling study (development concepts; last-epoch training loss and judge score per cell)",
            "",
            _scaling_markdown(sc),
            "",
        ]
    ut = table(tables, "utility")
    if ut is not None:
        lines += [
            "## Utility (accuracy with a 95% Wilson interval over the answers of all concepts; relative "
            "accuracy = steered / unsteered, mean +- std over concepts)",
            "",
            _utility_markdown(ut),
            "",
        ]
    task = table(tables, "task")
    if task is not None:
        from .task import task_rows_markdown

        lines += [
            "## Task steering (yes/no reading; accuracy with a 95% Wilson interval over test items)",
            "",
            task_rows_markdown(task),
            "",
        ]
    ex = table(tables, "examples")
    if ex is not None:
        quantiles = "/".join(str(int(round(100 * q))) for q in QUANTILES)
        lines += [
            "## What the numbers mean in words",
            "",
            f"The same instruction answered unsteered, by FSSV and by PrOSV, with the judge's ratings (0-2). "
            f"Chosen by a fixed rule: the concepts at the {quantiles}th percentile of PrOSV's per-concept "
            f"concept score, the first instruction of each.",
            "",
            examples_markdown(ex),
        ]
    return lines


def _general(x) -> str:
    """A setting as written in a config: 3 significant digits, no trailing zeros."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Number):
        return "-" if x is None else str(x)
    return "-" if pd.isna(x) else f"{float(x):.3g}"


def _scaling_markdown(sc: pd.DataFrame) -> str:
    view = pd.DataFrame({"cell": sc["cell"], "kind": sc["kind"]})
    for col in ("c_alpha", "eta_alpha", "lr_alpha", "lr_v", "alpha_final"):
        if col in sc.columns:
            view[col] = sc[col].map(_general)
    if "optimizer" in sc.columns:
        view["optimizer"] = sc["optimizer"]
    view["final loss"] = sc["final_loss"].map(lambda x: fmt(x, 3))
    if {"overall_lo", "overall_hi"} <= set(sc.columns):
        view["overall [95% CI over responses]"] = [
            interval(m, lo, hi, 2) for m, lo, hi in zip(sc["overall"], sc["overall_lo"], sc["overall_hi"])
        ]
    else:
        view["overall"] = sc["overall"].map(lambda x: fmt(x, 2))
    view["n responses"] = sc["n_responses"].map(fmt) if "n_responses" in sc.columns else "-"
    return markdown(view)


def _utility_markdown(ut: pd.DataFrame) -> str:
    def one(r) -> str:
        if "accuracy_lo" in r and not pd.isna(r["accuracy_lo"]):
            shown = interval(r["correct"] / r["n_answers"], r["accuracy_lo"], r["accuracy_hi"], 3)
            return f"{shown} of {fmt(r['n_answers'], 0)}"
        return fmt(r["accuracy_mean"], 3)

    view = pd.DataFrame(
        {
            "method": ut["method"],
            "factor": ut["factor"].map(lambda f: fmt(f, 2)),
            "task": ut["task"],
            "concepts": ut["n_concepts"].map(fmt) if "n_concepts" in ut else "-",
            "accuracy [95% Wilson]": [one(r) for _, r in ut.iterrows()],
            "relative (mean +- std)": [
                "1 (reference)"
                if method == UNSTEERED
                else pm(m, s, 2)
                if not isna(s)
                else f"{fmt(m, 2)} (one concept: no std)"
                for method, m, s in zip(ut["method"], ut["relative_accuracy_mean"], ut["relative_accuracy_std"])
            ],
        }
    )
    return markdown(view)
