"""The steering evaluation protocol as pure functions over DataFrames (no model).

Flow, one frame per arrow::

    concepts + instructions --steering_prompts--> prompts (concept_id, instruction_idx, instruction,
    user_turn) --[prompting_prompts | suppression_attack_prompts | factor_grid_plan]--> prompts
    --generation (prosv.experiments.responses)--> generations (+ response) --judge--> ratings
    (+ concept_score, instruction_score, fluency_score, judge) --concept_means / select_factor
    --> per-concept tables, each row labelled with protocol and judge (intervals: prosv.stats).

Conventions

- ``instruction`` is always the original instruction, the one the instruction rating is judged
  against; ``user_turn`` is what the model is shown (the instruction itself, or the instruction
  with a steering instruction prepended, or the instruction under a suppression attack).
- ``instruction_idx`` is the position (0..n-1) of an instruction in its concept's sample;
  ``source_index`` is its index in the instruction frame it was drawn from (for AlpacaEval: the row
  of ``alpaca_eval.json``).
- Ratings are 0, 1 or 2 in ``concept_score``, ``instruction_score``, ``fluency_score``;
  ``overall`` is their harmonic mean, 0 when any of them is 0.

Protocols (the ``protocol`` column):

- ``factor_free``: PrOSV's protocol. Per concept, ``n`` (10) instructions drawn with
  ``instructions.sample(n, random_state=concept_id)``; the trained vector is used as is; every
  response counts.
- ``factor_grid``: AxBench's older protocol, for vectors without a trained factor. Every concept is
  generated at each factor of a grid (default :data:`DEFAULT_FACTOR_GRID`, AxBench's 14 values);
  the factor with the best mean overall score on instructions 0-4 is chosen per concept and the
  concept's score is the mean on instructions 5-9 at that factor (:func:`select_factor`).
- ``suppression_attack``: robustness; the factor-free protocol with each instruction rewritten to
  ask the model to avoid the concept (:func:`suppression_attack_prompts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_FACTOR_GRID",
    "select_report_split",
    "RATING_COLUMNS",
    "PROTOCOL_FACTOR_FREE",
    "PROTOCOL_FACTOR_GRID",
    "PROTOCOL_SUPPRESSION",
    "PROMPTING_TEMPLATE",
    "SUPPRESSION_TEMPLATE",
    "factor_free_instructions",
    "steering_prompts",
    "prompting_user_turn",
    "prompting_prompts",
    "suppression_user_turn",
    "suppression_attack_prompts",
    "factor_grid_plan",
    "overall_score",
    "add_overall",
    "select_factor",
    "concept_means",
    "JUDGE_COUNT_COLUMNS",
    "judge_count_sums",
]

# AxBench's steering factor grid (its steering sweep configs): 14 values, finer below 2.
DEFAULT_FACTOR_GRID: tuple[float, ...] = (
    0.2,
    0.4,
    0.6,
    0.8,
    1.0,
    1.2,
    1.4,
    1.6,
    1.8,
    2.0,
    2.5,
    3.0,
    4.0,
    5.0,
)


def select_report_split(n_instructions: int) -> tuple[range, range]:
    """The factor grid's split of a concept's ``n`` instructions: choose on the first half, report on the
    rest (AxBench: 0-4 and 5-9 of 10)."""
    if n_instructions < 2:
        raise ValueError(f"the factor grid needs at least 2 instructions per concept, got {n_instructions}")
    half = n_instructions // 2
    return range(half), range(half, n_instructions)


RATING_COLUMNS: tuple[str, str, str] = ("concept_score", "instruction_score", "fluency_score")
OVERALL = "overall"
# per response: the axis ratings asked of the judge, the requests among them that failed (scored 0 under
# `on_error: zero`) and the answers without a readable rating (scored 0); summaries sum them
JUDGE_COUNT_COLUMNS: tuple[str, str, str] = ("judge_calls", "judge_errors", "judge_parse_failures")


def judge_count_sums(ratings: pd.DataFrame) -> dict[str, float]:
    """The judge's counts summed over `ratings`; NaN for a count that some row does not record
    (ratings written before prosv counted them)."""
    return {
        c: float(ratings[c].sum()) if c in ratings.columns and ratings[c].notna().all() else float("nan")
        for c in JUDGE_COUNT_COLUMNS
    }


PROTOCOL_FACTOR_FREE = "factor_free"
PROTOCOL_FACTOR_GRID = "factor_grid"
PROTOCOL_SUPPRESSION = "suppression_attack"

# Our wording. Placeholders: {steering_instruction}/{suppression_instruction}, {instruction}.
PROMPTING_TEMPLATE = "{steering_instruction}\n\n{instruction}"
SUPPRESSION_TEMPLATE = "{instruction}\n\nOne more requirement for your answer: {suppression_instruction}"


# --------------------------------------------------------------------------------------------
# prompts


def factor_free_instructions(instructions_df: pd.DataFrame, concept_id: int, n: int = 10) -> pd.DataFrame:
    """The ``n`` instructions of one concept: ``instructions_df.sample(n, random_state=concept_id)``.

    Exactly pandas' sample (same rows, same order, original index kept), which is how AxBench
    draws its 10 AlpacaEval instructions per concept; for the AxBench numbers pass the full
    805-row AlpacaEval frame in file order (:func:`prosv.data.load_alpaca_eval`).
    """
    if n > len(instructions_df):
        raise ValueError(f"cannot draw {n} instructions from a frame of {len(instructions_df)}")
    cid = int(concept_id)
    if cid < 0:
        raise ValueError(f"concept_id must be >= 0 to seed the sample, got {concept_id}")
    return instructions_df.sample(n, random_state=cid)


def steering_prompts(
    concepts_df: pd.DataFrame,
    instructions_df: pd.DataFrame,
    *,
    n: int = 10,
    concept_ids: Iterable[int] | None = None,
) -> pd.DataFrame:
    """The factor-free prompt table: one row per (concept, sampled instruction).

    Columns: concept_id, concept, instruction_idx, source_index, [instruction_id,] instruction,
    user_turn (= instruction), protocol ('factor_free'), sample_id (the row number: the seed of the
    row's random draws in every condition, so conditions are compared on the same samples).
    """
    for col, frame, name in (("concept_id", concepts_df, "concepts"), ("instruction", instructions_df, "instructions")):
        if col not in frame.columns:
            raise KeyError(f"{name} frame has no '{col}' column")
    concepts = concepts_df.set_index("concept_id", drop=False)
    ids = list(concepts_df["concept_id"]) if concept_ids is None else list(concept_ids)
    missing = [c for c in ids if c not in concepts.index]
    if missing:
        raise KeyError(f"concept_id(s) {missing[:10]} not in the concepts frame")
    rows = []
    for cid in ids:
        sample = factor_free_instructions(instructions_df, cid, n)
        name = concepts.at[cid, "concept"] if "concept" in concepts.columns else None
        for pos, (src, rec) in enumerate(sample.iterrows()):
            row = {
                "concept_id": int(cid),
                "concept": name,
                "instruction_idx": pos,
                "source_index": src,
            }
            if "instruction_id" in sample.columns:
                row["instruction_id"] = rec["instruction_id"]
            row["instruction"] = rec["instruction"]
            row["user_turn"] = rec["instruction"]
            row["protocol"] = PROTOCOL_FACTOR_FREE
            row["sample_id"] = len(rows)
            rows.append(row)
    return pd.DataFrame(rows)


def _concept_field(prompts_df: pd.DataFrame, concepts_df: pd.DataFrame, field: str) -> pd.Series:
    if field not in concepts_df.columns:
        raise KeyError(f"concepts frame has no '{field}' column")
    lookup = dict(zip(concepts_df["concept_id"], concepts_df[field]))
    values = prompts_df["concept_id"].map(lookup)
    if values.isna().any():
        bad = sorted(set(prompts_df.loc[values.isna(), "concept_id"]))[:10]
        raise KeyError(f"no '{field}' for concept_id(s) {bad}")
    return values


def prompting_user_turn(instruction: str, steering_instruction: str, template: str = PROMPTING_TEMPLATE) -> str:
    """Prompting baseline: the concept's steering instruction placed before the instruction."""
    return template.format(steering_instruction=steering_instruction.strip(), instruction=instruction)


def prompting_prompts(
    prompts_df: pd.DataFrame, concepts_df: pd.DataFrame, *, template: str = PROMPTING_TEMPLATE
) -> pd.DataFrame:
    """Copy of a prompt table whose ``user_turn`` has the steering instruction prepended
    (``instruction`` stays the original). Adds ``method='prompting'``."""
    out = prompts_df.copy()
    steer = _concept_field(out, concepts_df, "steering_instruction")
    out["user_turn"] = [prompting_user_turn(i, s, template) for i, s in zip(out["instruction"], steer)]
    out["method"] = "prompting"
    return out


def suppression_user_turn(instruction: str, suppression_instruction: str, template: str = SUPPRESSION_TEMPLATE) -> str:
    """Concept-suppression attack: the instruction rewritten to ask the model to avoid the concept."""
    return template.format(suppression_instruction=suppression_instruction.strip(), instruction=instruction)


def suppression_attack_prompts(
    prompts_df: pd.DataFrame, concepts_df: pd.DataFrame, *, template: str = SUPPRESSION_TEMPLATE
) -> pd.DataFrame:
    """Copy of a prompt table under the suppression attack: ``user_turn`` is the attacked
    instruction, ``instruction`` keeps the original (rate against it), ``attack='suppression'``,
    ``protocol='suppression_attack'``."""
    out = prompts_df.copy()
    supp = _concept_field(out, concepts_df, "suppression_instruction")
    out["user_turn"] = [suppression_user_turn(i, s, template) for i, s in zip(out["instruction"], supp)]
    out["attack"] = "suppression"
    out["protocol"] = PROTOCOL_SUPPRESSION
    return out


def factor_grid_plan(prompts_df: pd.DataFrame, factors: Sequence[float] = DEFAULT_FACTOR_GRID) -> pd.DataFrame:
    """Every prompt at every factor of the grid (``factor`` column), ``protocol='factor_grid'``.
    Rows are ordered concept, factor, instruction."""
    if len(factors) == 0:
        raise ValueError("empty factor grid")
    grid = pd.DataFrame({"factor": [float(f) for f in factors]})
    out = prompts_df.drop(columns=["factor"], errors="ignore").merge(grid, how="cross")
    out["protocol"] = PROTOCOL_FACTOR_GRID
    sort_cols = [c for c in ("concept_id", "factor", "instruction_idx") if c in out.columns]
    return out.sort_values(sort_cols, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# scoring


def overall_score(concept, instruction, fluency):
    """Harmonic mean of the three ratings, 0 when any is 0 (scalars, arrays or Series).

    A missing rating (NaN) gives NaN; judges should score unparsable answers 0 themselves.
    """
    c, i, f = (np.asarray(x, dtype=float) for x in (concept, instruction, fluency))
    any_zero = (c == 0) | (i == 0) | (f == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        hm = 3.0 / (1.0 / c + 1.0 / i + 1.0 / f)
    out = np.where(any_zero & ~(np.isnan(c) | np.isnan(i) | np.isnan(f)), 0.0, hm)
    if out.ndim == 0:
        return float(out)
    if isinstance(concept, pd.Series):
        return pd.Series(out, index=concept.index, name=OVERALL)
    return out


def add_overall(ratings: pd.DataFrame, columns: Sequence[str] = RATING_COLUMNS) -> pd.DataFrame:
    """Copy of ``ratings`` with ``overall`` computed from the three rating columns."""
    missing = [c for c in columns if c not in ratings.columns]
    if missing:
        raise KeyError(f"ratings frame lacks rating column(s) {missing}")
    out = ratings.copy()
    out[OVERALL] = overall_score(*(out[c] for c in columns)).to_numpy()
    return out


def _with_overall(ratings: pd.DataFrame) -> pd.DataFrame:
    if OVERALL in ratings.columns:
        return ratings
    return add_overall(ratings)


def _label(df: pd.DataFrame, protocol: str | None, judge: str | None) -> pd.DataFrame:
    """Make sure every row carries ``protocol`` and ``judge``."""
    out = df.copy()
    for col, value in (("protocol", protocol), ("judge", judge)):
        if value is not None:
            if col in out.columns and out[col].notna().any() and set(out[col].dropna()) != {value}:
                raise ValueError(
                    f"rows already labelled {col}={sorted(set(out[col].dropna()))[:5]}, asked for {value!r}"
                )
            out[col] = value
        elif col not in out.columns or out[col].isna().any():
            raise ValueError(f"every result row needs a '{col}': pass {col}=... or add the column")
    return out


def _metric_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in (OVERALL, *RATING_COLUMNS) if c in df.columns]


def select_factor(
    ratings: pd.DataFrame,
    *,
    select_idx: Sequence[int] | None = None,
    report_idx: Sequence[int] | None = None,
    by: Sequence[str] = (),
    factors: Sequence[float] | None = None,
    judge: str | None = None,
) -> pd.DataFrame:
    """The factor-grid protocol: per concept, pick the factor with the highest mean ``overall`` on
    instructions ``select_idx`` (0-4) and report the means on ``report_idx`` (5-9) at that factor.

    ``ratings``: one row per (concept_id, factor, instruction_idx) with ``overall`` (or the three
    rating columns, from which it is computed) and a ``judge`` column unless ``judge`` is given.
    A ``protocol`` column, if present, must say 'factor_grid'.
    ``by``: extra keys kept apart (e.g. method, model, layer). ``factors``: if given, every concept
    must have been rated at each of them on the selection instructions. Ties go to the smallest
    factor. Without ``select_idx``/``report_idx`` the split is :func:`select_report_split` of the
    number of instructions rated per concept.

    Returns one row per concept: [*by], concept_id, factor, selection_overall (mean on
    ``select_idx``), overall and the rating means on ``report_idx``, n_select, n_report,
    protocol ('factor_grid'), judge.
    """
    needed = ["concept_id", "factor", "instruction_idx"]
    missing = [c for c in [*needed, *by] if c not in ratings.columns]
    if missing:
        raise KeyError(f"ratings frame lacks column(s) {missing}")
    if select_idx is None or report_idx is None:
        select_idx, report_idx = select_report_split(int(ratings["instruction_idx"].max()) + 1)
    overlap = set(select_idx) & set(report_idx)
    if overlap:
        raise ValueError(f"selection and report instructions overlap: {sorted(overlap)}")
    df = _label(_with_overall(ratings), PROTOCOL_FACTOR_GRID, judge)
    keys = [*by, "judge", "concept_id"]
    metrics = _metric_columns(df)
    rows = []
    for key, group in df.groupby(keys, sort=True, dropna=False):
        where = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        rows.append(_select_one(where, group, list(select_idx), list(report_idx), factors, metrics))
    cols = [*by, "concept_id", "factor", "selection_overall", *metrics, "n_select", "n_report", "protocol", "judge"]
    return pd.DataFrame(rows)[cols + list(JUDGE_COUNT_COLUMNS)]


def _select_one(where: dict, group: pd.DataFrame, select_idx: list, report_idx: list, factors, metrics) -> dict:
    """One concept of the factor grid: the best factor on the selection instructions, scored on the rest."""
    g_sel = group[group["instruction_idx"].isin(select_idx)]
    g_rep = group[group["instruction_idx"].isin(report_idx)]
    if g_sel.empty:
        raise ValueError(f"{where}: no ratings on selection instructions {select_idx}")
    if factors is not None:
        absent = sorted({float(f) for f in factors} - set(g_sel["factor"].astype(float)))
        if absent:
            raise ValueError(f"{where}: factors {absent} were not rated on the selection instructions")
    by_factor = g_sel.groupby("factor", sort=True)[OVERALL].mean()
    best = by_factor.idxmax()  # first maximum in ascending factor order
    chosen = g_rep[g_rep["factor"] == best]
    if chosen.empty:
        raise ValueError(f"{where}: factor {best} has no ratings on report instructions {report_idx}")
    row = dict(where, factor=float(best), selection_overall=float(by_factor.loc[best]))
    row.update({m: float(chosen[m].mean()) for m in metrics})
    row.update(n_select=int((g_sel["factor"] == best).sum()), n_report=int(len(chosen)), protocol=PROTOCOL_FACTOR_GRID)
    row.update(judge_count_sums(group))  # over every factor rated: an error at any of them matters
    return row


def concept_means(
    ratings: pd.DataFrame, *, by: Sequence[str] = (), protocol: str | None = None, judge: str | None = None
) -> pd.DataFrame:
    """Per-concept means of ``overall`` and the ratings (one row per [*by], protocol, judge,
    concept_id), with ``n_responses`` and the judge's counts summed (:func:`judge_count_sums`)."""
    df = _label(_with_overall(ratings), protocol, judge)
    keys = [*by, "protocol", "judge", "concept_id"]
    metrics = _metric_columns(df)
    grouped = df.groupby(keys, sort=True, dropna=False)
    out = grouped[metrics].mean()
    out["n_responses"] = grouped.size()
    counts = grouped.apply(lambda g: pd.Series(judge_count_sums(g)), include_groups=False)
    return out.join(counts).reset_index()
