"""Tidy tables from the workflow's raw outputs (the `aggregate` rule); pandas only, no plotting.

Table schemas (one row per ...):

- ``main_concepts``: (method, protocol, judge, concept_id): overall and the three ratings (means over
  the concept's responses; factor grid: at the factor chosen on the selection instructions, scored
  on the report instructions), effective_alpha, factor, and the run's labels (loss, intervention,
  fixed_alpha, layer, positions). The paired claims read this table.
- ``main``: (method, protocol, judge): labels, n_concepts, overall, overall_lo, overall_hi (95%
  bootstrap interval over concepts), the rating means with their intervals (``<rating>_lo``,
  ``<rating>_hi``), mean_alpha (learned alpha x factor), mean_factor. The factor-grid row of a
  method is named ``<method>_posthoc``.
- every table built from ratings (``main``, ``main_concepts``, ``robustness``, ``robustness_concepts``,
  ``scaling``, and the location search's ``locate``) carries the judge's counts summed over its
  responses: ``judge_calls``, ``judge_errors``, ``judge_parse_failures``
  (:data:`prosv.evaluation.JUDGE_COUNT_COLUMNS`; NaN for ratings that do not record them).
- ``losses``: (method, layer, positions, split, concept, step): the training logs (loss, alpha,
  v_norm, ...), with ``role`` (main, locate) and ``objective`` (the loss function).
- ``utility``: (method, factor, task): labels, n_concepts, n_questions, accuracy_mean/std,
  relative_accuracy_mean/std (relative accuracy = steered / unsteered accuracy on the same task),
  and the answers pooled over concepts: n_answers, correct, accuracy_lo/hi (95% Wilson interval).
- ``robustness``: (method, factor): labels, protocol, judge, n_concepts, overall with its interval,
  the rating means (under the suppression attack), relative_accuracy and its std (the same method
  and factor's utility, averaged over tasks; NaN where utility was not measured).
- ``scaling``: (cell): the cell's settings, first_loss and final_loss (mean training loss of the first
  and the last epoch, mean over concepts), the judge's mean scores, overall_lo/hi (95% bootstrap
  interval over the cell's responses), n_responses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import evaluation as E
from ..stats import bootstrap_ci, wilson_interval
from .families import families
from .frames import LABELS, RATINGS, first, require, with_labels


def _labelled_ratings(raw: pd.DataFrame, name: str) -> pd.DataFrame:
    df = require(raw, name, ["method", "concept_id", *RATINGS]).copy()
    df["protocol"] = df["protocol"].fillna(E.PROTOCOL_FACTOR_FREE) if "protocol" in df else E.PROTOCOL_FACTOR_FREE
    if "judge" not in df.columns or df["judge"].isna().any():
        raise ValueError(f"table '{name}' has responses without a 'judge'")
    return with_labels(df if "overall" in df.columns else E.add_overall(df))


def _grid_concepts(part: pd.DataFrame) -> pd.DataFrame:
    per = E.select_factor(part, by=["method"])
    alpha = part.groupby("concept_id")["learned_alpha"].first() if "learned_alpha" in part else None
    eff = per["concept_id"].map(alpha) * per["factor"] if alpha is not None else np.nan
    return per.assign(effective_alpha=eff, method=per["method"] + "_posthoc")


def _free_concepts(part: pd.DataFrame) -> pd.DataFrame:
    per = E.concept_means(part, by=["method"])
    if "learned_alpha" in part.columns and part["learned_alpha"].notna().any():
        eff = (part["learned_alpha"] * part["factor"].fillna(1.0)).groupby(part["concept_id"]).mean()
        per["effective_alpha"] = per["concept_id"].map(eff).to_numpy()
    per["factor"] = per["concept_id"].map(part.groupby("concept_id")["factor"].mean()) if "factor" in part else 1.0
    return per


def build_concept_scores(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Per-concept scores of every method, baseline and protocol (the ``main_concepts`` table)."""
    if not frames:
        raise ValueError("table 'ratings' is missing: no rating files for the main table")
    parts = []
    for i, raw in enumerate(frames):
        df = _labelled_ratings(raw, f"ratings[{i}]")
        for (_, protocol), part in df.groupby(["method", "protocol"], sort=True):
            per = _grid_concepts(part) if protocol == E.PROTOCOL_FACTOR_GRID else _free_concepts(part)
            labels = {c: first(part[c]) for c in LABELS}
            parts.append(per.assign(**labels))
    out = pd.concat(parts, ignore_index=True)
    out["layer"] = pd.to_numeric(out["layer"], errors="coerce").astype("Int64")
    keep = [
        "method",
        "protocol",
        "judge",
        "concept_id",
        "overall",
        *RATINGS,
        "effective_alpha",
        "factor",
        *LABELS,
        *E.JUDGE_COUNT_COLUMNS,
    ]
    return with_labels(out)[[c for c in keep if c in out.columns]]


def _family_order(df: pd.DataFrame) -> list[int]:
    """Paper order: unsteered, prompting, then per loss: post-hoc FSSV, FSSV, prompt, PrOSV, others."""
    order = {"posthoc": 0, "fssv": 1, "prompt": 2, "prosv": 3}
    keys = []
    for (m, lo), fam in zip(zip(df["method"], df["loss"]), families(df)):
        if fam == "baseline":
            keys.append((0, 0 if m == "unsteered" else 1, "", 0, m))
        else:
            keys.append((1, 0, "" if pd.isna(lo) else str(lo), order.get(fam, 4), m))
    return sorted(range(len(df)), key=lambda i: keys[i])


def _rating_intervals(per_concept: pd.DataFrame, n_boot: int, seed: int) -> dict:
    """Each rating's mean over concepts with its 95% bootstrap interval (``<rating>``, ``_lo``, ``_hi``)."""
    out = {}
    for r in RATINGS:
        ci = bootstrap_ci(per_concept[r], n_boot=n_boot, seed=seed)
        out.update({r: ci["mean"], f"{r}_lo": ci["ci_low"], f"{r}_hi": ci["ci_high"]})
    return out


def build_main_table(concepts: pd.DataFrame, *, n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """The main table from the per-concept scores: the mean over concepts with a seeded 95% bootstrap
    interval per (method, protocol, judge)."""
    concepts = require(concepts, "main_concepts", ["method", "protocol", "judge", "concept_id", "overall"])
    rows = []
    for (method, protocol, judge), pc in concepts.groupby(["method", "protocol", "judge"], sort=True):
        ci = bootstrap_ci(pc["overall"], n_boot=n_boot, seed=seed)
        rows.append(
            {
                "method": method,
                **{c: first(pc[c]) for c in LABELS},
                "protocol": protocol,
                "judge": judge,
                "n_concepts": int(ci["n"]),
                "overall": ci["mean"],
                "overall_lo": ci["ci_low"],
                "overall_hi": ci["ci_high"],
                **_rating_intervals(pc, n_boot, seed),
                "mean_alpha": float(pc["effective_alpha"].mean()) if "effective_alpha" in pc else np.nan,
                "mean_factor": float(pc["factor"].mean()) if "factor" in pc else np.nan,
                **E.judge_count_sums(pc),
            }
        )
    out = pd.DataFrame(rows)
    out["layer"] = pd.to_numeric(out["layer"], errors="coerce").astype("Int64")
    return out.iloc[_family_order(out)].reset_index(drop=True)


def build_losses_table(parts: Mapping[str, Sequence[pd.DataFrame]]) -> pd.DataFrame:
    """Training logs concatenated, with ``role`` (the key of ``parts``: main, locate). A run listed
    under two roles is kept once (first role). Here ``loss`` is the loss value and ``objective`` the
    loss function (the other tables' ``loss`` label)."""
    frames = []
    seen = set()
    for role, dfs in parts.items():
        for df in dfs:
            if df is None or df.empty:
                continue
            key = tuple(str(first(df[c])) if c in df.columns else "" for c in ("method", "layer", "positions", "split"))
            if key in seen:
                continue
            seen.add(key)
            frames.append(df.assign(role=role))
    if not frames:
        raise ValueError("table 'losses' is empty: no training logs found")
    out = pd.concat(frames, ignore_index=True)
    for col in ("objective", "intervention", "fixed_alpha", "layer", "positions"):
        if col not in out.columns:
            out[col] = None
    out["concept"] = out["concept"].astype(str)
    return out


def build_scaling_table(
    cells: pd.DataFrame, ratings: pd.DataFrame, *, n_boot: int = 10_000, seed: int = 0
) -> pd.DataFrame:
    """One row per scaling cell: its settings and last-epoch training loss, with the judge's mean
    scores and the overall score's bootstrap interval over the cell's responses."""
    cells = require(cells, "scaling cells", ["cell", "final_loss"])
    rated = E.add_overall(require(ratings, "scaling ratings", ["cell", *RATINGS]))
    grouped = rated.groupby("cell")
    scores = grouped[["overall", *RATINGS]].mean()
    scores["n_responses"] = grouped.size()
    cis = {cell: bootstrap_ci(g["overall"], n_boot=n_boot, seed=seed) for cell, g in grouped}
    scores["overall_lo"] = [cis[c]["ci_low"] for c in scores.index]
    scores["overall_hi"] = [cis[c]["ci_high"] for c in scores.index]
    scores = scores.join(grouped.apply(lambda g: pd.Series(E.judge_count_sums(g)), include_groups=False))
    return cells.merge(scores.reset_index(), on="cell", how="left")


def relative_accuracy(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Accuracy rows with ``relative_accuracy`` = accuracy / the unsteered accuracy on the same task
    (unsteered rows: method 'unsteered' or concept_id -1)."""
    acc = require(accuracy, "utility accuracy", ["method", "factor", "concept_id", "task", "accuracy"])
    base_mask = (acc["method"] == "unsteered") | (acc["concept_id"] == -1)
    if not base_mask.any():
        raise ValueError("table 'utility accuracy' has no unsteered rows (method 'unsteered' or concept_id -1)")
    base = acc[base_mask].groupby("task")["accuracy"].mean()
    out = with_labels(acc)
    denom = out["task"].map(base)
    out["relative_accuracy"] = np.where(denom > 0, out["accuracy"] / denom.replace(0, np.nan), np.nan)
    return out


def build_utility_table(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over concepts of accuracy and relative accuracy per (method, factor, task)."""
    rel = relative_accuracy(accuracy)
    rel["factor"] = rel["factor"].astype(float).round(6)
    g = rel.groupby(["method", "factor", "task"], sort=True, dropna=False)
    out = g.agg(
        accuracy_mean=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
        relative_accuracy_mean=("relative_accuracy", "mean"),
        relative_accuracy_std=("relative_accuracy", "std"),
        n_concepts=("concept_id", "nunique"),
    ).reset_index()
    out["n_questions"] = g["n"].max().to_numpy() if "n" in rel.columns else np.nan
    if {"n", "correct"} <= set(rel.columns):
        # every concept answers the same questions: pooled answers, Wilson interval on the proportion
        out["n_answers"] = g["n"].sum().to_numpy()
        out["correct"] = g["correct"].sum().to_numpy()
        bounds = [wilson_interval(k, n) for k, n in zip(out["correct"], out["n_answers"])]
    else:
        out["n_answers"] = out["correct"] = np.nan
        bounds = [(np.nan, np.nan)] * len(out)
    out["accuracy_lo"], out["accuracy_hi"] = [b[0] for b in bounds], [b[1] for b in bounds]
    meta = rel.groupby("method", sort=False)[list(LABELS)].first()
    out = out.join(meta, on="method")
    out["layer"] = pd.to_numeric(out["layer"], errors="coerce").astype("Int64")
    return out[
        [
            "method",
            *LABELS,
            "factor",
            "task",
            "n_concepts",
            "n_questions",
            "accuracy_mean",
            "accuracy_std",
            "n_answers",
            "correct",
            "accuracy_lo",
            "accuracy_hi",
            "relative_accuracy_mean",
            "relative_accuracy_std",
        ]
    ]


def utility_by_concept(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Relative accuracy per (method, factor, concept), averaged over tasks (steered rows only), with labels."""
    rel = relative_accuracy(accuracy)
    rel = rel[rel["method"] != "unsteered"].assign(factor=lambda d: d["factor"].astype(float).round(6))
    per = rel.groupby(["method", "factor", "concept_id"])["relative_accuracy"].mean().reset_index()
    return per.join(rel.groupby("method")[list(LABELS)].first(), on="method")


def build_robustness_table(
    attack: pd.DataFrame, accuracy: pd.DataFrame | None = None, *, n_boot: int = 10_000, seed: int = 0
) -> pd.DataFrame:
    """Steering under the suppression attack per (method, factor), joined with the utility of the
    same method and factor (relative accuracy averaged over tasks, then mean/std over concepts)."""
    att = with_labels(require(attack, "robustness attack ratings", ["method", "factor", "concept_id", *RATINGS]))
    att["protocol"] = att["protocol"].fillna(E.PROTOCOL_SUPPRESSION) if "protocol" in att else E.PROTOCOL_SUPPRESSION
    att["factor"] = att["factor"].astype(float).round(6)
    per_concept = E.concept_means(att, by=["method", "factor"])
    rows = []
    for (method, factor, protocol, judge), pc in per_concept.groupby(["method", "factor", "protocol", "judge"]):
        ci = bootstrap_ci(pc["overall"], n_boot=n_boot, seed=seed)
        labels = {c: first(att.loc[att.method == method, c]) for c in LABELS}
        rows.append(
            {
                "method": method,
                **labels,
                "factor": float(factor),
                "protocol": protocol,
                "judge": judge,
                "n_concepts": ci["n"],
                "overall": ci["mean"],
                "overall_lo": ci["ci_low"],
                "overall_hi": ci["ci_high"],
                **{r: float(pc[r].mean()) for r in RATINGS},
                **E.judge_count_sums(pc),
            }
        )
    out = pd.DataFrame(rows).assign(relative_accuracy=np.nan, relative_accuracy_std=np.nan)
    if accuracy is not None and not accuracy.empty:
        agg = utility_by_concept(accuracy).groupby(["method", "factor"])["relative_accuracy"].agg(["mean", "std"])
        out = out.drop(columns=["relative_accuracy", "relative_accuracy_std"]).merge(
            agg.reset_index().rename(columns={"mean": "relative_accuracy", "std": "relative_accuracy_std"}),
            on=["method", "factor"],
            how="left",
        )
    out["layer"] = pd.to_numeric(out["layer"], errors="coerce").astype("Int64")
    cols = [
        "method",
        *LABELS,
        "factor",
        "protocol",
        "judge",
        "n_concepts",
        "overall",
        "overall_lo",
        "overall_hi",
        *RATINGS,
        "relative_accuracy",
        "relative_accuracy_std",
        *E.JUDGE_COUNT_COLUMNS,
    ]
    return out[cols].sort_values(["method", "factor"]).reset_index(drop=True)


def robustness_by_concept(attack: pd.DataFrame) -> pd.DataFrame:
    """Mean ratings per (method, factor, concept) under the suppression attack, with the run's labels."""
    att = with_labels(require(attack, "robustness attack ratings", ["method", "factor", "concept_id", *RATINGS]))
    att = (att if "overall" in att.columns else E.add_overall(att)).assign(
        factor=lambda d: d["factor"].astype(float).round(6)
    )
    grouped = att.groupby(["method", "factor", "concept_id"])
    per = grouped[["overall", *RATINGS]].mean()
    per = per.join(grouped.apply(lambda g: pd.Series(E.judge_count_sums(g)), include_groups=False)).reset_index()
    labels = att.groupby("method")[list(LABELS)].first()
    return per.join(labels, on="method")


def scaling_by_concept(losses: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per (cell, concept): the mean training loss of the first and the last epoch, with the cell's settings."""
    losses = require(losses, "scaling losses", ["cell", "concept", "epoch", "loss"])
    last = losses[losses.epoch == losses.groupby("cell").epoch.transform("max")]
    out = last.groupby(["cell", "concept"]).loss.mean().rename("final_loss").to_frame()
    out["first_loss"] = losses[losses.epoch == 0].groupby(["cell", "concept"]).loss.mean()
    meta = require(cells, "scaling cells", ["cell", "kind"]).set_index("cell")
    keep = [c for c in ("kind", "c_alpha", "eta_alpha", "optimizer", "fixed_alpha", "lr_alpha", "lr_v") if c in meta]
    return out.reset_index().join(meta[keep], on="cell")


def cell_intervals(
    per_concept: pd.DataFrame, by: Sequence[str], metric: str, *, n_boot: int = 10_000, seed: int = 0
) -> pd.DataFrame:
    """Mean of ``metric`` over concepts per group of ``by``, with its 95% bootstrap interval over concepts
    (``mean``, ``lo``, ``hi``, ``n``): intervals for a figure whose table has only the means."""
    per_concept = require(per_concept, "per-concept scores", [*by, metric])
    rows = []
    for key, g in per_concept.groupby(list(by), sort=True):
        ci = bootstrap_ci(g[metric], n_boot=n_boot, seed=seed)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "mean": ci["mean"], "lo": ci["ci_low"], "hi": ci["ci_high"], "n": ci["n"]})
    return pd.DataFrame(rows)
