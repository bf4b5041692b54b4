"""Tables, figures and the claims summary, from tidy parquet tables only (no model, no torch).

Two layers, both pure functions over DataFrames:

- **tables** (``build_*``): raw workflow outputs (judged responses, training logs, utility
  accuracies) -> the tidy tables under ``results/tables/`` (the ``aggregate`` rule);
- **figures and text** (``plot_*``, ``*_markdown``, :func:`claims`, :func:`write_summary`): those
  tables -> PNG figures, markdown tables and ``SUMMARY.md`` (the ``figures`` rule), in seconds.

Table schemas (one row per ...):

- ``main``: (method, protocol, judge): method, loss, layer, positions, protocol, judge, n_concepts,
  overall, overall_lo, overall_hi (95% bootstrap CI over concepts), concept_score,
  instruction_score, fluency_score, mean_alpha (mean effective factor: learned alpha x factor),
  mean_factor. The factor-grid row of a method is named ``<method>_posthoc``.
- ``losses``: (method, layer, positions, split, concept, step): the training logs (concept,
  concept_index, step, epoch, loss, lr_scale, alpha, v_norm, method, layer, positions, split) plus
  role ('main', 'locate', 'extra') and objective (lang/simpo).
- ``locate``: (layer, positions): overall, concept_score, instruction_score, fluency_score,
  n_concepts, chosen.
- ``utility``: (method, factor, task): loss, layer, positions, n_concepts, n_questions,
  accuracy_mean, accuracy_std, relative_accuracy_mean, relative_accuracy_std (relative accuracy =
  steered accuracy / unsteered accuracy on the same task; mean and std over concepts).
- ``robustness``: (method, factor): loss, layer, positions, protocol, judge, n_concepts, overall,
  overall_lo, overall_hi, concept_score, instruction_score, fluency_score (under the
  suppression attack), relative_accuracy, relative_accuracy_std (utility of the same method and
  factor, averaged over tasks; NaN where utility was not measured).
- ``scaling``: (cell): kind (grid, fixed, sgd, transfer), c_alpha, eta_alpha, optimizer, fixed_alpha,
  lr_scaling, lr_alpha, lr_v (as applied), alpha_final, first_loss and final_loss (mean training loss of
  the first and the last epoch, mean over concepts),
  overall, concept_score, instruction_score, fluency_score (judge means over prompts), n_responses.
- ``loreft``: (method in {prosv, loreft}, concept, step): loss. ``loreft_cosine``: (concept):
  cosine, signed_cosine. ``loreft_spread``: (kind, position): mean_pairwise_cosine, relative_std.

Method families are told apart by the data, not by names alone: FSSV = positions ``all``;
PrOSV = a steered method at prompt-only positions (not ``prompt``, not an alpha-fixed ablation,
not LoReFT); baselines have no positions. Every function that needs a table raises a
``ValueError`` naming the table when it is missing or empty.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from . import evaluation as E  # noqa: E402  (pandas/numpy only)

__all__ = [
    "PAPER_MAIN",
    "PAPER_LOCATE",
    "PAPER_MODELS",
    "COS_THRESHOLD",
    "HELD",
    "NOT_HELD",
    "NOT_MEASURED",
    "build_main_table",
    "build_losses_table",
    "relative_accuracy",
    "build_utility_table",
    "build_robustness_table",
    "build_scaling_table",
    "paper_model",
    "family",
    "paper_key",
    "plot_main_scores",
    "plot_locate_heatmap",
    "plot_scaling",
    "plot_loss_curves",
    "plot_loreft_vs_prosv",
    "plot_utility",
    "plot_robustness_vs_utility",
    "main_table_markdown",
    "locate_table_markdown",
    "claims",
    "write_summary",
    "save_figure",
    "render_all",
    "FIGURES",
]

HELD, NOT_HELD, NOT_MEASURED = "held", "did not hold", "not measured"
COS_THRESHOLD = 0.96
RATINGS = ("concept_score", "instruction_score", "fluency_score")

# --------------------------------------------------------------------------------------------
# the paper's numbers (PROSV.md sections 3, 4, 6)

PAPER_MODELS = {"G2B": "Gemma-2-2B L10", "G9B": "Gemma-2-9B L20", "Q32B": "Qwen2.5-32B L32"}

# overall score, factor-free protocol unless marked post-hoc
PAPER_MAIN: dict[str, dict[str, float]] = {
    "prompting": {"G2B": 0.698, "G9B": 1.075, "Q32B": 1.060},
    "fssv_lang_posthoc": {"G2B": 0.663, "G9B": 0.788, "Q32B": 0.798},
    "fssv_lang": {"G2B": 0.736, "G9B": 0.821, "Q32B": 0.919},
    "prosv_lang": {"G2B": 0.758, "G9B": 0.859, "Q32B": 1.049},
    "fssv_simpo": {"G2B": 0.756, "G9B": 0.892, "Q32B": 0.947},
    "prosv_simpo": {"G2B": 0.803, "G9B": 0.905, "Q32B": 1.102},
}
PAPER_MAIN_LABEL = {
    "prompting": "prompting",
    "fssv_lang_posthoc": "FSSV lang, post-hoc factor",
    "fssv_lang": "FSSV lang, joint training",
    "prosv_lang": "PrOSV lang",
    "fssv_simpo": "FSSV simpo",
    "prosv_simpo": "PrOSV simpo",
}

# location search, (overall, concept score)
PAPER_LOCATE: dict[str, dict[str, tuple[float, float]]] = {
    "all": {"G2B": (0.65, 0.97), "G9B": (0.86, 1.17), "Q32B": (0.93, 1.27)},
    "prompt": {"G2B": (0.54, 1.12), "G9B": (0.71, 1.41), "Q32B": (0.88, 1.58)},
    "p2+s2": {"G2B": (0.70, 0.82), "G9B": (0.92, 1.14), "Q32B": (1.16, 1.33)},
    "p4+s4": {"G2B": (0.69, 0.85), "G9B": (0.89, 1.09), "Q32B": (1.13, 1.30)},
    "p1+s1": {"G2B": (0.67, 0.79), "G9B": (0.91, 1.12), "Q32B": (1.10, 1.24)},
}

POSITION_ORDER = ("all", "prompt", "p1+s1", "p2+s2", "p4+s4", "p8+s8", "p4", "s2", "s4")


def paper_model(model: str | None) -> tuple[str, bool]:
    """The paper's column for a model name and whether it is the same model.

    Gemma-2-9B -> G9B, Qwen2.5-32B -> Q32B, Gemma-2-2B -> G2B; any other model is compared with
    the Gemma-2-2B column (returned with ``False``: a reference, not a like-for-like number).
    """
    m = (model or "").lower()
    if "gemma-2-9b" in m:
        return "G9B", True
    if "qwen" in m and "32b" in m:
        return "Q32B", True
    if "gemma-2-2b" in m:
        return "G2B", True
    return "G2B", False


def _paper_label(model: str | None) -> str:
    col, same = paper_model(model)
    return f"paper, {PAPER_MODELS[col]}" + ("" if same else " (a different model)")


# --------------------------------------------------------------------------------------------
# helpers


def _require(df: pd.DataFrame | None, name: str, columns: Iterable[str] = ()) -> pd.DataFrame:
    """The table itself, or a ValueError naming it when it is missing, empty or lacks columns."""
    if df is None:
        raise ValueError(f"table '{name}' is missing")
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"table '{name}' is not a DataFrame (got {type(df).__name__})")
    if df.empty:
        raise ValueError(f"table '{name}' is empty")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"table '{name}' lacks column(s) {missing}; it has {list(df.columns)}")
    return df


def _table(tables: Mapping[str, pd.DataFrame | None], name: str) -> pd.DataFrame | None:
    df = tables.get(name)
    if df is None or not isinstance(df, pd.DataFrame) or df.empty:
        return None
    return df


def _isna(x) -> bool:
    try:
        return x is None or bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _fmt(x, digits: int = 3) -> str:
    if _isna(x):
        return "-"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        if float(x).is_integer() and abs(x) < 1e6 and digits == 0:
            return str(int(x))
        return f"{float(x):.{digits}f}"
    return str(x)


def _pm(mean, std, digits: int) -> str:
    return _fmt(mean, digits) if _isna(std) else f"{_fmt(mean, digits)} +- {_fmt(std, digits)}"


def _markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table (no tabulate dependency); cells already formatted as text."""
    cols = [str(c) for c in df.columns]
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(esc(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(esc(v) for v in row) + " |")
    return "\n".join(lines)


def _position_key(p) -> tuple:
    p = str(p)
    return (POSITION_ORDER.index(p), p) if p in POSITION_ORDER else (len(POSITION_ORDER), p)


def _objective_from_name(method: str) -> str | None:
    m = str(method)
    for obj in ("simpo", "lang"):
        if re.search(rf"(^|_){obj}(_|$)", m):
            return obj
    return None


def family(method, positions=None) -> str:
    """'fssv', 'prosv', 'posthoc', 'fixed', 'loreft', 'prompt', or 'baseline' for a method row."""
    m = str(method)
    if m.endswith("_posthoc"):
        return "posthoc"
    if "fixed" in m:
        return "fixed"
    if "loreft" in m:
        return "loreft"
    if _isna(positions) or positions in ("", "None"):
        return "baseline"
    if positions == "all":
        return "fssv"
    if positions == "prompt":
        return "prompt"
    return "prosv"


def paper_key(method, positions=None, loss=None) -> str | None:
    """The row of PAPER_MAIN a main-table row corresponds to (None: no paper number)."""
    m = str(method)
    if m in ("prompting", "unsteered"):
        return "prompting" if m == "prompting" else None
    loss = loss if not _isna(loss) else _objective_from_name(m.removesuffix("_posthoc"))
    fam = family(method, positions)
    if fam == "posthoc":
        base_pos = positions
        return f"fssv_{loss}_posthoc" if base_pos == "all" and f"fssv_{loss}_posthoc" in PAPER_MAIN else None
    if fam in ("fssv", "prosv") and loss in ("lang", "simpo"):
        return f"{fam}_{loss}"
    return None


def _title(what: str, model: str | None = None, judge: str | None = None, protocol: str | None = None) -> str:
    bits = [b for b in (model and f"model {model}", judge and f"judge {judge}", protocol and f"protocol {protocol}")
            if b]
    return what + ("\n" + ", ".join(bits) if bits else "")


def _single(values) -> str | None:
    vals = sorted({str(v) for v in pd.Series(values).dropna()})
    return ", ".join(vals) if vals else None


def _style():
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.15)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "axes.titleweight": "bold",
                         "axes.titlesize": 11, "legend.frameon": False})


def _palette(names: Sequence[str]) -> dict[str, tuple]:
    """Stable colours: FSSV reds, PrOSV blues, baselines greys, others from a qualitative set."""
    fixed = {"unsteered": "#9e9e9e", "prompting": "#616161"}
    reds = sns.color_palette("Reds", 6)[2:]
    blues = sns.color_palette("Blues", 6)[2:]
    other = sns.color_palette("Set2", 8)
    out, r, b, o = {}, 0, 0, 0
    for n in names:
        n = str(n)
        if n in fixed:
            out[n] = fixed[n]
        elif n.startswith("fssv") or n.endswith("_posthoc") or "(all)" in n:
            out[n] = reds[r % len(reds)]
            r += 1
        elif n.startswith("prosv"):
            out[n] = blues[b % len(blues)]
            b += 1
        else:
            out[n] = other[o % len(other)]
            o += 1
    return out


# --------------------------------------------------------------------------------------------
# tables from raw outputs (the aggregate rule)


def _method_meta(methods: Mapping | None, method: str) -> dict:
    if not methods:
        return {}
    return dict(methods.get(str(method).removesuffix("_posthoc"), {}) or {})


def _first(series: pd.Series):
    s = series.dropna()
    return s.iloc[0] if len(s) else None


def build_main_table(
    frames: Sequence[pd.DataFrame],
    methods: Mapping | None = None,
    *,
    n_boot: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """The main table from rating files (one frame per file, each one method and protocol).

    Factor-free frames: per-concept means, then the mean over concepts with a seeded 95% bootstrap
    CI. Factor-grid frames (``protocol == 'factor_grid'``): :func:`prosv.evaluation.select_factor`
    (choose on instructions 0-4, report 5-9), reported as ``<method>_posthoc``.
    """
    if not frames:
        raise ValueError("table 'ratings' is missing: no rating files for the main table")
    rows = []
    for i, raw in enumerate(frames):
        df = _require(raw, f"ratings[{i}]", ["method", "concept_id", *RATINGS])
        df = df.copy()
        if "protocol" not in df.columns:
            df["protocol"] = E.PROTOCOL_FACTOR_FREE
        df["protocol"] = df["protocol"].fillna(E.PROTOCOL_FACTOR_FREE)
        if "judge" not in df.columns or df["judge"].isna().any():
            raise ValueError(f"table 'ratings[{i}]' has responses without a 'judge'")
        if "overall" not in df.columns:
            df = E.add_overall(df)
        for (method, protocol), part in df.groupby(["method", "protocol"], sort=True):
            grid = protocol == E.PROTOCOL_FACTOR_GRID
            if grid:
                # AxBench: select on the first half of the sampled instructions (0-4 of 10), report the rest
                n = int(part["instruction_idx"].max()) + 1
                per_concept = E.select_factor(part, by=["method"], select_idx=range(n // 2),
                                              report_idx=range(n // 2, n))
                if "learned_alpha" in part.columns:
                    alpha = part.groupby("concept_id")["learned_alpha"].first()
                    eff = per_concept["concept_id"].map(alpha) * per_concept["factor"]
                else:
                    eff = pd.Series(np.nan, index=per_concept.index)
                per_concept = per_concept.assign(effective_alpha=eff.to_numpy(), chosen_factor=per_concept["factor"])
                name = f"{method}_posthoc"
            else:
                per_concept = E.concept_means(part, by=["method"])
                if "learned_alpha" in part.columns and part["learned_alpha"].notna().any():
                    factor = part["factor"] if "factor" in part.columns else 1.0
                    eff = (part["learned_alpha"] * factor).groupby(part["concept_id"]).mean()
                    per_concept["effective_alpha"] = per_concept["concept_id"].map(eff).to_numpy()
                    if "factor" in part.columns:
                        per_concept["chosen_factor"] = per_concept["concept_id"].map(
                            part.groupby("concept_id")["factor"].mean()).to_numpy()
                name = method
            for judge, pc in per_concept.groupby("judge", sort=True):
                ci = E.bootstrap_ci(pc["overall"], n_boot=n_boot, seed=seed)
                meta = _method_meta(methods, method)
                loss = meta.get("loss")
                if loss is None and family(method, _first(part["positions"]) if "positions" in part else None) \
                        not in ("baseline",):
                    loss = _objective_from_name(method)
                layer = _first(part["layer"]) if "layer" in part.columns else None
                positions = _first(part["positions"]) if "positions" in part.columns else None
                rows.append({
                    "method": name,
                    "loss": loss,
                    "layer": None if layer is None else int(layer),
                    "positions": positions,
                    "protocol": protocol,
                    "judge": judge,
                    "n_concepts": int(ci["n"]),
                    "overall": ci["mean"],
                    "overall_lo": ci["ci_low"],
                    "overall_hi": ci["ci_high"],
                    **{r: float(pc[r].mean()) for r in RATINGS},
                    "mean_alpha": float(pc["effective_alpha"].mean()) if "effective_alpha" in pc else np.nan,
                    "mean_factor": float(pc["chosen_factor"].mean()) if "chosen_factor" in pc else np.nan,
                })
    out = pd.DataFrame(rows)
    out["layer"] = out["layer"].astype("Int64")
    # paper order: unsteered, prompting, then per loss: post-hoc FSSV, FSSV, prompt, PrOSV, others
    order = {"posthoc": 0, "fssv": 1, "prompt": 2, "prosv": 3}
    keys = []
    for m, p, lo in zip(out["method"], out["positions"], out["loss"]):
        fam = family(m, p)
        if fam == "baseline":
            keys.append((0, 0 if m == "unsteered" else 1, "", 0, m))
        else:
            keys.append((1, 0, "" if _isna(lo) else str(lo), order.get(fam, 4), m))
    out = out.iloc[sorted(range(len(out)), key=lambda i: keys[i])]
    return out.reset_index(drop=True)


def build_losses_table(parts: Mapping[str, Sequence[pd.DataFrame]], methods: Mapping | None = None) -> pd.DataFrame:
    """Training logs concatenated, with ``role`` (the key of ``parts``: main/locate/extra) and
    ``objective`` (the method's loss). A run listed under two roles is kept once (first role)."""
    frames = []
    seen = set()
    for role, dfs in parts.items():
        for df in dfs:
            if df is None or df.empty:
                continue
            key = tuple(str(_first(df[c])) if c in df.columns else "" for c in ("method", "layer", "positions", "split"))
            if key in seen:
                continue
            seen.add(key)
            frames.append(df.assign(role=role))
    if not frames:
        raise ValueError("table 'losses' is empty: no training logs found")
    out = pd.concat(frames, ignore_index=True)
    out["objective"] = [(_method_meta(methods, m).get("loss") or _objective_from_name(m)) for m in out["method"]]
    out["concept"] = out["concept"].astype(str)
    return out


def build_scaling_table(cells: pd.DataFrame, ratings: pd.DataFrame) -> pd.DataFrame:
    """One row per scaling cell: its settings and last-epoch training loss, with the judge's mean scores."""
    cells = _require(cells, "scaling cells", ["cell", "final_loss"])
    rated = E.add_overall(_require(ratings, "scaling ratings", ["cell", *RATINGS]))
    scores = rated.groupby("cell")[["overall", *RATINGS]].mean()
    scores["n_responses"] = rated.groupby("cell").size()
    return cells.merge(scores.reset_index(), on="cell", how="left")


def relative_accuracy(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Accuracy rows with ``relative_accuracy`` = accuracy / the unsteered accuracy on the same task
    (unsteered rows: method 'unsteered' or concept_id -1)."""
    acc = _require(accuracy, "utility accuracy", ["method", "factor", "concept_id", "task", "accuracy"])
    base_mask = (acc["method"] == "unsteered") | (acc["concept_id"] == -1)
    if not base_mask.any():
        raise ValueError("table 'utility accuracy' has no unsteered rows (method 'unsteered' or concept_id -1)")
    base = acc[base_mask].groupby("task")["accuracy"].mean()
    out = acc.copy()
    denom = out["task"].map(base)
    out["relative_accuracy"] = np.where(denom > 0, out["accuracy"] / denom.replace(0, np.nan), np.nan)
    return out


def _fill_location(df: pd.DataFrame, main: pd.DataFrame | None, methods: Mapping | None) -> pd.DataFrame:
    """Add loss/positions/layer where missing: from the main table (factor-free rows), then config."""
    out = df.copy()
    lookup = {}
    if main is not None and not main.empty:
        mm = main[main["protocol"] != E.PROTOCOL_FACTOR_GRID] if "protocol" in main else main
        for r in mm.itertuples(index=False):
            lookup[r.method] = {"loss": getattr(r, "loss", None), "positions": getattr(r, "positions", None),
                                "layer": getattr(r, "layer", None)}
    for col in ("loss", "positions", "layer"):
        if col not in out.columns:
            out[col] = None
        vals = []
        for m, v in zip(out["method"], out[col]):
            if _isna(v):
                v = lookup.get(m, {}).get(col)
            if _isna(v) and col != "layer":
                v = _method_meta(methods, m).get(col)
            if _isna(v) and col == "loss" and m not in ("unsteered", "prompting"):
                v = _objective_from_name(m)
            vals.append(None if _isna(v) else v)
        out[col] = pd.Series(vals, index=out.index, dtype=object)
    if "method" in out and (out["method"] == "unsteered").any():
        out.loc[out["method"] == "unsteered", "positions"] = None
    return out


def build_utility_table(accuracy: pd.DataFrame, methods: Mapping | None = None,
                        main: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean and std over concepts of accuracy and relative accuracy per (method, factor, task)."""
    rel = _fill_location(relative_accuracy(accuracy), main, methods)
    rel["factor"] = rel["factor"].astype(float).round(6)
    keys = ["method", "factor", "task"]
    g = rel.groupby(keys, sort=True, dropna=False)
    out = g.agg(accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
                relative_accuracy_mean=("relative_accuracy", "mean"),
                relative_accuracy_std=("relative_accuracy", "std"),
                n_concepts=("concept_id", "nunique")).reset_index()
    out["n_questions"] = g["n"].max().to_numpy() if "n" in rel.columns else np.nan
    meta = rel.groupby("method", sort=False)[["loss", "positions", "layer"]].first()
    out = out.join(meta, on="method")
    out["layer"] = pd.to_numeric(out["layer"], errors="coerce").astype("Int64")
    return out[["method", "loss", "layer", "positions", "factor", "task", "n_concepts", "n_questions",
                "accuracy_mean", "accuracy_std", "relative_accuracy_mean", "relative_accuracy_std"]]


def build_robustness_table(
    attack: pd.DataFrame,
    accuracy: pd.DataFrame | None = None,
    methods: Mapping | None = None,
    main: pd.DataFrame | None = None,
    *,
    n_boot: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Steering under the suppression attack per (method, factor), joined with the utility of the
    same method and factor (relative accuracy averaged over tasks, then mean/std over concepts)."""
    att = _require(attack, "robustness attack ratings", ["method", "factor", "concept_id", *RATINGS])
    att = att.copy()
    if "protocol" not in att.columns:
        att["protocol"] = E.PROTOCOL_SUPPRESSION
    att["protocol"] = att["protocol"].fillna(E.PROTOCOL_SUPPRESSION)
    att["factor"] = att["factor"].astype(float).round(6)
    per_concept = E.concept_means(att, by=["method", "factor"])
    rows = []
    for (method, factor, protocol, judge), pc in per_concept.groupby(["method", "factor", "protocol", "judge"]):
        ci = E.bootstrap_ci(pc["overall"], n_boot=n_boot, seed=seed)
        rows.append({"method": method, "factor": float(factor), "protocol": protocol, "judge": judge,
                     "n_concepts": ci["n"], "overall": ci["mean"], "overall_lo": ci["ci_low"],
                     "overall_hi": ci["ci_high"], **{r: float(pc[r].mean()) for r in RATINGS}})
    out = pd.DataFrame(rows)
    out["relative_accuracy"] = np.nan
    out["relative_accuracy_std"] = np.nan
    if accuracy is not None and not accuracy.empty:
        rel = relative_accuracy(accuracy)
        rel = rel[rel["method"] != "unsteered"]
        rel["factor"] = rel["factor"].astype(float).round(6)
        per = rel.groupby(["method", "factor", "concept_id"])["relative_accuracy"].mean().reset_index()
        agg = per.groupby(["method", "factor"])["relative_accuracy"].agg(["mean", "std"]).reset_index()
        out = out.drop(columns=["relative_accuracy", "relative_accuracy_std"]).merge(
            agg.rename(columns={"mean": "relative_accuracy", "std": "relative_accuracy_std"}),
            on=["method", "factor"], how="left")
        base = out["method"] == "unsteered"  # the reference itself: relative accuracy 1 by definition
        out.loc[base, "relative_accuracy"] = 1.0
        out.loc[base, "relative_accuracy_std"] = 0.0
    out = _fill_location(out, main, methods)
    out["layer"] = pd.to_numeric(out["layer"], errors="coerce").astype("Int64")
    cols = ["method", "loss", "layer", "positions", "factor", "protocol", "judge", "n_concepts", "overall",
            "overall_lo", "overall_hi", *RATINGS, "relative_accuracy", "relative_accuracy_std"]
    return out[cols].sort_values(["method", "factor"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# figures


def save_figure(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_main_scores(main: pd.DataFrame, *, model: str | None = None, show_paper: bool = True):
    """Overall score per method (95% CI over concepts), with the paper's number beside it, and the
    three rating means. Factor-grid rows are hatched."""
    main = _require(main, "main", ["method", "protocol", "overall", "overall_lo", "overall_hi", *RATINGS])
    _style()
    df = main.reset_index(drop=True)
    judge = _single(df.get("judge"))
    names = list(df["method"])
    colors = _palette(names)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(max(9, 1.6 * len(df) + 5), 4.4),
                                  gridspec_kw={"width_ratios": [1.1, 1]})
    x = np.arange(len(df))
    err = np.vstack([(df["overall"] - df["overall_lo"]).clip(lower=0), (df["overall_hi"] - df["overall"]).clip(lower=0)])
    bars = ax.bar(x, df["overall"], yerr=err, capsize=4, color=[colors[n] for n in names], edgecolor="black",
                  linewidth=0.6, label="ours (95% CI)")
    for b, proto in zip(bars, df["protocol"]):
        if proto == E.PROTOCOL_FACTOR_GRID:
            b.set_hatch("//")
    col, same = paper_model(model)
    if show_paper:
        px, py = [], []
        for i, r in df.iterrows():
            key = paper_key(r["method"], r.get("positions"), r.get("loss"))
            if key is not None:
                px.append(i)
                py.append(PAPER_MAIN[key][col])
        if px:
            ax.scatter(px, py, marker="D", s=36, color="white", edgecolor="black", zorder=5,
                       label=_paper_label(model))
    for xi, v in zip(x, df["overall"]):
        if not _isna(v):
            ax.text(xi, 0.03, f"{v:.2f}", ha="center", va="bottom", fontsize=8,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("overall score (0-2, harmonic mean)")
    ax.set_ylim(0, max(2.0 if df["overall_hi"].max() > 1.2 else 1.3, float(np.nanmax(df["overall_hi"])) * 1.1))
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Overall steering score" + (" (hatched: factor grid)" if (df["protocol"] == E.PROTOCOL_FACTOR_GRID).any()
                                             else ""))
    long = df.melt(id_vars=["method"], value_vars=list(RATINGS), var_name="rating", value_name="score")
    long["rating"] = long["rating"].str.replace("_score", "", regex=False)
    sns.barplot(data=long, x="method", y="score", hue="rating", ax=ax2, palette="muted", order=names,
                edgecolor="black", linewidth=0.4)
    ax2.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax2.set_ylim(0, 2.05)
    ax2.set_ylabel("mean rating (0-2)")
    ax2.set_xlabel("")
    ax2.set_title("Concept, instruction and fluency ratings")
    ax2.legend(title=None, fontsize=8, ncol=3, loc="upper left")
    ax.set_xlabel("")
    n = _single(df.get("n_concepts"))
    protos = _single(df["protocol"])
    fig.suptitle(_title(f"Main results ({n} concepts)", model, judge, protos), fontsize=11)
    fig.tight_layout()
    return fig


def plot_locate_heatmap(locate: pd.DataFrame, *, choice: Mapping | None = None, model: str | None = None,
                        judge: str | None = None):
    """Overall and concept score per (layer, positions) on the development concepts; the chosen
    cell framed."""
    loc = _require(locate, "locate", ["layer", "positions", "overall", "concept_score"])
    _style()
    positions = sorted(loc["positions"].astype(str).unique(), key=_position_key)
    layers = sorted(loc["layer"].astype(int).unique())
    judge = judge or (choice or {}).get("judge")
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.5 * len(positions) * 2), 1.0 + 0.8 * len(layers) + 1.4))
    chosen = None
    if choice:
        chosen = (int(choice["layer"]), str(choice["positions"]))
    elif "chosen" in loc.columns and loc["chosen"].any():
        r = loc[loc["chosen"].astype(bool)].iloc[0]
        chosen = (int(r["layer"]), str(r["positions"]))
    for ax, metric, cmap in zip(axes, ("overall", "concept_score"), ("viridis", "magma")):
        grid = loc.assign(layer=loc["layer"].astype(int), positions=loc["positions"].astype(str)) \
            .pivot_table(index="layer", columns="positions", values=metric, aggfunc="mean") \
            .reindex(index=layers, columns=positions)
        sns.heatmap(grid, annot=True, fmt=".2f", cmap=cmap, ax=ax, cbar_kws={"shrink": 0.8},
                    linewidths=0.5, linecolor="white")
        ax.set_xlabel("positions")
        ax.set_ylabel("layer")
        ax.set_title({"overall": "overall score", "concept_score": "concept score"}[metric])
        ax.tick_params(axis="y", rotation=0)
        if chosen and chosen[0] in layers and chosen[1] in positions:
            ax.add_patch(Rectangle((positions.index(chosen[1]), layers.index(chosen[0])), 1, 1, fill=False,
                                   edgecolor="red", linewidth=2.5))
    n = _single(loc.get("n_concepts"))
    what = f"Location search ({n} development concepts; red: chosen)"
    fig.suptitle(_title(what, model, judge, "factor_free"), fontsize=11)
    fig.tight_layout()
    return fig


def plot_scaling(scaling: pd.DataFrame, *, model: str | None = None):
    """Final training loss and overall score over factor init x factor learning rate (Adam, raw
    rates), and every ablation cell (alpha fixed, SGD, rate transfer) beside the best grid cell."""
    sc = _require(scaling, "scaling", ["cell", "kind", "c_alpha", "eta_alpha", "final_loss", "overall"])
    grid = sc[sc["kind"] == "grid"]
    if grid.empty:
        raise ValueError("table 'scaling' has no grid cells")
    _style()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), gridspec_kw={"width_ratios": [1, 1, 1.2]})
    for ax, metric, cmap, title in ((axes[0], "final_loss", "viridis_r", "last-epoch training loss"),
                                    (axes[1], "overall", "viridis", "overall score")):
        table = grid.pivot_table(index="c_alpha", columns="eta_alpha", values=metric, aggfunc="mean") \
            .sort_index(ascending=False).sort_index(axis=1)
        table.columns = [f"{c:g}" for c in table.columns]
        table.index = [f"{c:g}" for c in table.index]
        sns.heatmap(table, annot=True, fmt=".2f", cmap=cmap, ax=ax, cbar_kws={"shrink": 0.8}, linewidths=0.5,
                    linecolor="white")
        ax.set_xlabel("factor learning rate eta_alpha (Adam, raw)")
        ax.set_ylabel("factor init c_alpha (alpha_0 = c_alpha sqrt(n))")
        ax.set_title(title)
        ax.tick_params(axis="y", rotation=0)
    best = grid.sort_values("final_loss").iloc[0]
    others = sc[sc["kind"] != "grid"]
    bars = pd.concat([best.to_frame().T.assign(cell=f"best grid: {best['cell']}"), others], ignore_index=True)
    ax = axes[2]
    y = range(len(bars))
    ax.barh(list(y), bars["final_loss"].astype(float), color=["#2b8cbe"] + ["#bdbdbd"] * (len(bars) - 1))
    ax.set_yticks(list(y), [str(c) for c in bars["cell"]])
    ax.invert_yaxis()
    for i, (loss, score) in enumerate(zip(bars["final_loss"].astype(float), bars["overall"].astype(float))):
        ax.text(loss, i, f" {loss:.2f} (score {score:.2f})", va="center", fontsize=8)
    low, high = bars["final_loss"].astype(float).min(), bars["final_loss"].astype(float).max()
    ax.set_xlim(max(0.0, low - 0.3 * (high - low + 1e-9)), high + 0.45 * (high - low + 1e-9))
    ax.set_xlabel("last-epoch training loss (lower is better)")
    ax.set_title("ablations")
    n = _single(sc.get("positions"))
    layer = _single(sc.get("layer"))
    fig.suptitle(_title(f"Scaling study (layer {layer}, {n}; development concepts)", model), fontsize=11)
    fig.tight_layout()
    return fig


def plot_loss_curves(losses: pd.DataFrame, *, model: str | None = None):
    """Training loss per step (mean over concepts, band: min-max) of the main runs, one panel per
    objective, and the trajectory of the factor alpha."""
    df = _require(losses, "losses", ["method", "step", "loss"])
    _style()
    if "role" in df.columns and (df["role"] == "main").any():
        df = df[df["role"].isin(["main", "extra"])]
    elif "split" in df.columns and (df["split"] == "eval").any():
        df = df[df["split"] == "eval"]
    df = df.copy()
    if "objective" not in df.columns:
        df["objective"] = [_objective_from_name(m) for m in df["method"]]
    df["objective"] = df["objective"].fillna("other")
    df["run"] = df["method"].astype(str)
    if "positions" in df.columns:
        df["run"] = df["run"] + " (" + df["positions"].astype(str) + ")"
    objectives = sorted(df["objective"].unique())
    has_alpha = "alpha" in df.columns and df["alpha"].notna().any()
    ncol = len(objectives) + (1 if has_alpha else 0)
    fig, axes = plt.subplots(1, ncol, figsize=(4.6 * ncol, 3.9), squeeze=False)
    axes = axes[0]
    colors = _palette(sorted(df["run"].unique()))
    for ax, obj in zip(axes, objectives):
        part = df[df["objective"] == obj]
        for run, g in part.groupby("run", sort=True):
            s = g.groupby("step")["loss"].agg(["mean", "min", "max"])
            ax.plot(s.index, s["mean"], color=colors[run], label=run, lw=1.6,
                    ls="--" if "fixed" in run else "-")
            ax.fill_between(s.index, s["min"], s["max"], color=colors[run], alpha=0.15, lw=0)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(f"training loss ({obj})")
        ax.set_title(f"{obj} loss (mean over concepts; band: min-max)", fontsize=10)
        ax.legend(fontsize=7)
    if has_alpha:
        ax = axes[-1]
        for run, g in df[df["alpha"].notna()].groupby("run", sort=True):
            s = g.groupby("step")["alpha"].mean()
            ax.plot(s.index, s.values, color=colors[run], label=run, lw=1.6, ls="--" if "fixed" in run else "-")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("factor alpha (mean over concepts)")
        ax.set_title("Trained factor alpha")
        if (df["alpha"].dropna() > 0).all():
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    layer = _single(df.get("layer"))
    fig.suptitle(_title(f"Joint training of factor and direction (layer {layer})", model), fontsize=11)
    fig.tight_layout()
    return fig


def plot_loreft_vs_prosv(loreft: pd.DataFrame, cosine: pd.DataFrame, spread: pd.DataFrame, *,
                         model: str | None = None):
    """LoReFT (rank 1) against PrOSV at the same positions: loss curves, direction cosine, and the
    spread of hidden states at the intervened vs content positions (the mechanism)."""
    lo = _require(loreft, "loreft", ["method", "concept", "step", "loss"])
    cos = _require(cosine, "loreft_cosine", ["concept", "cosine"])
    sp = _require(spread, "loreft_spread", ["kind", "position", "mean_pairwise_cosine"])
    _style()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9), gridspec_kw={"width_ratios": [1.3, 0.8, 1.1]})
    ax = axes[0]
    lo = lo.assign(concept=lo["concept"].astype(str))
    styles = {c: s for c, s in zip(sorted(lo["concept"].unique()), ["-", "--", ":", "-."] * 10)}
    mcolors = {"prosv": sns.color_palette("Blues", 6)[4], "loreft": sns.color_palette("Oranges", 6)[4]}
    for (method, concept), g in lo.groupby(["method", "concept"], sort=True):
        g = g.sort_values("step")
        ax.plot(g["step"], g["loss"], ls=styles[concept], color=mcolors.get(method, "grey"),
                label=f"{method}, concept {concept}", lw=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss, same positions and rates")
    ax.legend(fontsize=7)
    ax = axes[1]
    cos = cos.assign(concept=cos["concept"].astype(str))
    ax.bar(cos["concept"], cos["cosine"], color=sns.color_palette("Greens", 5)[3], edgecolor="black", lw=0.5)
    ax.axhline(COS_THRESHOLD, color="red", ls="--", lw=1, label=f"paper: > {COS_THRESHOLD}")
    for i, v in enumerate(cos["cosine"]):
        ax.text(i, v + 0.01, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("concept")
    ax.set_ylabel("|cos(R row, v)|")
    ax.set_title("LoReFT direction vs PrOSV v")
    ax.legend(fontsize=7, loc="lower right")
    ax = axes[2]
    sp = sp.assign(position=sp["position"].astype(str))
    sns.barplot(data=sp, x="position", y="mean_pairwise_cosine", hue="kind", ax=ax, palette="Set2",
                edgecolor="black", linewidth=0.4)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean pairwise cosine across prompts")
    ax.set_title("Hidden-state spread at each position")
    ax.legend(title=None, fontsize=8)
    fig.suptitle(_title("LoReFT collapses to a steering vector at template positions", model), fontsize=11)
    fig.tight_layout()
    return fig


def _utility_label(method, factor) -> str:
    return str(method) if _isna(factor) or abs(float(factor) - 1.0) < 1e-9 else f"{method} x{float(factor):g}"


def plot_utility(utility: pd.DataFrame, *, model: str | None = None):
    """Relative accuracy (steered / unsteered) per task, mean and std over concepts."""
    ut = _require(utility, "utility", ["method", "factor", "task", "relative_accuracy_mean", "relative_accuracy_std"])
    _style()
    ut = ut.copy()
    ut["label"] = [_utility_label(m, f) for m, f in zip(ut["method"], ut["factor"])]
    fam_order = {"baseline": 1, "fssv": 2, "prompt": 3, "prosv": 4}
    pos = ut["positions"] if "positions" in ut.columns else pd.Series([None] * len(ut))
    ut["_k"] = [0 if m == "unsteered" else fam_order.get(family(m, p), 5) for m, p in zip(ut["method"], pos)]
    labels = list(ut.sort_values(["_k", "method", "factor"], ascending=[True, True, False])["label"].unique())
    tasks = sorted(ut["task"].unique())
    fig, ax = plt.subplots(figsize=(max(6.5, 0.9 * len(labels) * max(1, len(tasks)) * 0.7 + 3), 4.2))
    width = 0.8 / len(tasks)
    pal = sns.color_palette("deep", len(tasks))
    for j, task in enumerate(tasks):
        part = ut[ut["task"] == task].set_index("label").reindex(labels)
        xs = np.arange(len(labels)) + (j - (len(tasks) - 1) / 2) * width
        ax.bar(xs, part["relative_accuracy_mean"], width, yerr=part["relative_accuracy_std"].fillna(0), capsize=3,
               color=pal[j], edgecolor="black", lw=0.5, label=task)
    ax.axhline(1.0, color="black", lw=0.8, ls=":")
    ax.set_xticks(np.arange(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel("accuracy relative to unsteered")
    ax.legend(title="task", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    n = _single(ut.loc[ut["method"] != "unsteered", "n_concepts"]) if "n_concepts" in ut else None
    ax.set_title(_title(f"Utility under steering (mean +- std over {n} concepts)", model))
    fig.tight_layout()
    return fig


def plot_robustness_vs_utility(robustness: pd.DataFrame, *, model: str | None = None):
    """Steering score under the suppression attack against utility (relative accuracy); FSSV traced
    over its factor multipliers, PrOSV and baselines as points."""
    rb = _require(robustness, "robustness", ["method", "factor", "overall", "relative_accuracy"])
    rb = rb[rb["relative_accuracy"].notna()]
    if rb.empty:
        raise ValueError("table 'robustness' has no row with a utility (relative_accuracy): nothing to plot")
    _style()
    judge = _single(rb.get("judge"))
    colors = _palette(sorted(rb["method"].unique()))
    fig, ax = plt.subplots(figsize=(6.8, 4.8))
    pos = rb["positions"] if "positions" in rb.columns else pd.Series([None] * len(rb), index=rb.index)
    for method, g in rb.groupby("method", sort=True):
        g = g.sort_values("relative_accuracy")
        fam = family(method, pos.loc[g.index].iloc[0])
        yerr = None
        if {"overall_lo", "overall_hi"} <= set(g.columns):
            yerr = np.vstack([(g["overall"] - g["overall_lo"]).clip(lower=0),
                              (g["overall_hi"] - g["overall"]).clip(lower=0)])
        xerr = g["relative_accuracy_std"].fillna(0).to_numpy() if "relative_accuracy_std" in g else None
        marker = {"fssv": "s", "prosv": "o", "baseline": "^"}.get(fam, "D")
        ax.errorbar(g["relative_accuracy"], g["overall"], yerr=yerr, xerr=xerr, fmt=marker + ("-" if len(g) > 1 else ""),
                    color=colors[method], label=method, ms=7, capsize=3, lw=1.4, elinewidth=0.8, alpha=0.95)
        if len(g) > 1 or fam == "fssv":
            for _, r in g.iterrows():
                ax.annotate(f"x{r['factor']:g}", (r["relative_accuracy"], r["overall"]), textcoords="offset points",
                            xytext=(5, 4), fontsize=7, color=colors[method])
    ax.set_xlabel("utility: accuracy relative to unsteered (mean over tasks)")
    ax.set_ylabel("overall score under suppression attack")
    ax.set_xlim(left=min(0, ax.get_xlim()[0]))
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="best")
    ax.text(0.99, 0.01, "better: up and right", transform=ax.transAxes, ha="right", va="bottom", fontsize=7,
            color="grey")
    ax.set_title(_title("Robustness vs utility (FSSV traced over factor multipliers)", model, judge,
                        "suppression_attack"))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# markdown


def main_table_markdown(main: pd.DataFrame, *, model: str | None = None) -> str:
    """The main table with the paper's number beside ours, headed by model, judge and protocols."""
    main = _require(main, "main", ["method", "protocol", "judge", "overall", "overall_lo", "overall_hi", *RATINGS])
    col, same = paper_model(model)
    rows = []
    for _, r in main.iterrows():
        key = paper_key(r["method"], r.get("positions"), r.get("loss"))
        rows.append({
            "method": r["method"],
            "loss": _fmt(r.get("loss")),
            "layer": _fmt(r.get("layer")),
            "positions": _fmt(r.get("positions")),
            "protocol": r["protocol"],
            "n": _fmt(r.get("n_concepts")),
            "overall [95% CI]": f"{_fmt(r['overall'])} [{_fmt(r['overall_lo'])}, {_fmt(r['overall_hi'])}]",
            "concept": _fmt(r["concept_score"], 2),
            "instruction": _fmt(r["instruction_score"], 2),
            "fluency": _fmt(r["fluency_score"], 2),
            "mean alpha": _fmt(r.get("mean_alpha"), 1),
            f"paper ({PAPER_MODELS[col]})": "-" if key is None else f"{PAPER_MAIN[key][col]:.3f}",
        })
    judges = _single(main["judge"])
    head = (f"Main results. Model: **{model or 'unknown'}**; judge: **{judges}**; protocols: "
            f"{_single(main['protocol'])} (factor_free: learned factor as is, all 10 instructions; "
            f"factor_grid: factor chosen per concept on instructions 0-4, scored on 5-9). Overall = harmonic "
            f"mean of the three 0-2 ratings, mean over concepts, 95% bootstrap CI over concepts.")
    if not same:
        head += (f" The paper column is {PAPER_MODELS[col]} with gpt-4o-mini as judge: a reference point, "
                 f"not a like-for-like number.")
    return head + "\n\n" + _markdown(pd.DataFrame(rows)) + "\n"


def locate_table_markdown(locate: pd.DataFrame, *, model: str | None = None) -> str:
    loc = _require(locate, "locate", ["layer", "positions", "overall", "concept_score"])
    col, _ = paper_model(model)
    rows = []
    records = sorted((r for _, r in loc.iterrows()), key=lambda r: (int(r["layer"]), _position_key(r["positions"])))
    for r in records:
        p = PAPER_LOCATE.get(str(r["positions"]), {}).get(col)
        rows.append({"layer": _fmt(r["layer"]), "positions": r["positions"],
                     "overall": _fmt(r["overall"]), "concept": _fmt(r["concept_score"], 2),
                     "chosen": "yes" if bool(r.get("chosen", False)) else "",
                     f"paper overall / concept ({PAPER_MODELS[col]})": "-" if p is None else f"{p[0]:.2f} / {p[1]:.2f}"})
    return _markdown(pd.DataFrame(rows)) + "\n"


# --------------------------------------------------------------------------------------------
# the claims


def _final_losses(losses: pd.DataFrame) -> pd.DataFrame:
    """Last-step loss per (method, positions, split, concept)."""
    keys = [c for c in ("method", "layer", "positions", "split", "concept") if c in losses.columns]
    last = losses.sort_values("step").groupby(keys, dropna=False).tail(1)
    return last[keys + ["loss"]]


def _claim_joint_training_scaling(scaling: pd.DataFrame, claim: str, paper: str) -> dict:
    """Held when the best grid cell has a large init and rate (both above the grid's smallest) and beats
    the small-init/small-rate corner, alpha fixed and SGD."""
    grid = scaling[scaling["kind"] == "grid"]
    if grid.empty:
        return dict(claim=claim, ours="not measured (no grid cells in the scaling table)", paper=paper,
                    verdict=NOT_MEASURED)
    best = grid.sort_values("final_loss").iloc[0]
    corner = grid[(grid["c_alpha"] == grid["c_alpha"].min()) & (grid["eta_alpha"] == grid["eta_alpha"].min())].iloc[0]
    parts = [f"last-epoch training loss over the grid {grid['final_loss'].min():.3f}-{grid['final_loss'].max():.3f}; "
             f"best grid cell c_alpha={best['c_alpha']:g}, eta_alpha={best['eta_alpha']:g}: final loss "
             f"{best['final_loss']:.3f} (score {best['overall']:.2f}); smallest init and rate "
             f"(c_alpha={corner['c_alpha']:g}, eta_alpha={corner['eta_alpha']:g}) {corner['final_loss']:.3f} "
             f"(score {corner['overall']:.2f})"]
    ok = [best["c_alpha"] > grid["c_alpha"].min() or best["eta_alpha"] > grid["eta_alpha"].min(),
          best["final_loss"] < corner["final_loss"]]
    for kind in ("fixed", "sgd"):
        rows = scaling[scaling["kind"] == kind]
        if len(rows):
            top = rows.sort_values("final_loss").iloc[0]
            parts.append(f"{'alpha fixed' if kind == 'fixed' else 'best SGD'} ({top['cell']}) {top['final_loss']:.3f} "
                         f"(score {top['overall']:.2f})")
            ok.append(best["final_loss"] < top["final_loss"])
    transfer = scaling[scaling["kind"] == "transfer"].set_index("cell")["final_loss"]
    if {"transfer raw", "transfer width"} <= set(transfer.index):
        parts.append(f"reference rates raw {transfer['transfer raw']:.3f} vs width-scaled "
                     f"{transfer['transfer width']:.3f}")
    return dict(claim=claim, ours="; ".join(parts), paper=paper, verdict=HELD if all(ok) else NOT_HELD)


def _claim_joint_training(losses: pd.DataFrame | None, scaling: pd.DataFrame | None = None) -> dict:
    paper = ("naive joint training fails: after 10 epochs SGD at c_alpha=1 stays at 3.236, Adam at c_alpha=1, "
             "lr 5e-4 reaches 3.181, Adam at c_alpha=32, lr 1e-2 reaches 2.025")
    claim = "Joint training needs a large factor init and learning rate (alpha fixed or small: the vector barely moves)"
    if scaling is not None and len(scaling):
        return _claim_joint_training_scaling(scaling, claim, paper)
    if losses is None or "method" not in losses.columns:
        return dict(claim=claim, ours="not measured in this run (no training logs)", paper=paper, verdict=NOT_MEASURED)
    fixed_methods = sorted({m for m in losses["method"].astype(str) if "fixed" in m})
    if not fixed_methods:
        return dict(claim=claim, ours="not measured in this run (no alpha-fixed run in the training logs)",
                    paper=paper, verdict=NOT_MEASURED)
    final = _final_losses(losses)
    parts, verdicts = [], []
    for fm in fixed_methods:
        f = final[final["method"] == fm]
        base_name = re.sub(r"_?fixed_?", "_", fm).strip("_")
        cands = final[(final["method"] == base_name)]
        if cands.empty and "positions" in final.columns:
            pos = set(f["positions"])
            cands = final[(~final["method"].str.contains("fixed")) & final["positions"].isin(pos)]
        if cands.empty:
            parts.append(f"{fm}: no joint-trained counterpart in the logs")
            continue
        on = [c for c in ("split", "concept") if c in final.columns]
        both = f.merge(cands, on=on, suffixes=("_fixed", "_joint"))
        if both.empty:
            parts.append(f"{fm}: no concept trained by both")
            continue
        lf, lj = both["loss_fixed"].mean(), both["loss_joint"].mean()
        joint_name = _single(both["method_joint"])
        parts.append(f"final train loss {joint_name} (joint) {lj:.3f} vs {fm} {lf:.3f} "
                     f"({both['concept'].nunique() if 'concept' in both else len(both)} concepts)")
        verdicts.append(lj < lf)
    if not verdicts:
        return dict(claim=claim, ours="not measured in this run (" + "; ".join(parts) + ")", paper=paper,
                    verdict=NOT_MEASURED)
    return dict(claim=claim, ours="; ".join(parts), paper=paper, verdict=HELD if all(verdicts) else NOT_HELD)


def _prompt_only_rows(df: pd.DataFrame, fam: pd.Series, where: pd.Series) -> pd.DataFrame:
    """The PrOSV side of a claim: template-position rows, or whole-prompt rows when the location
    search chose the whole prompt for the PrOSV methods (still prompt-only: prefill steering)."""
    rows = df[(fam == "prosv") & where]
    return rows if len(rows) else df[(fam == "prompt") & where]


def _pairs_by_loss(df: pd.DataFrame) -> dict[str, tuple[pd.Series, pd.Series]]:
    """{loss: (prosv row, fssv row)} among factor-free rows; first row of each family per loss."""
    if "protocol" in df.columns:
        df = df[df["protocol"] != E.PROTOCOL_FACTOR_GRID]
    pos = df["positions"] if "positions" in df.columns else pd.Series([None] * len(df), index=df.index)
    loss = df["loss"] if "loss" in df.columns else pd.Series([_objective_from_name(m) for m in df["method"]],
                                                             index=df.index)
    fam = pd.Series([family(m, p) for m, p in zip(df["method"], pos)], index=df.index)
    out = {}
    for lo in ("lang", "simpo"):
        p = _prompt_only_rows(df, fam, loss == lo)
        f = df[(fam == "fssv") & (loss == lo)]
        if len(p) and len(f):
            out[lo] = (p.iloc[0], f.iloc[0])
    return out


def _claim_overall(main: pd.DataFrame | None, col: str) -> dict:
    claim = "PrOSV beats FSSV (joint training) on the overall steering score, lang and simpo"
    paper = (f"lang {PAPER_MAIN['prosv_lang'][col]:.3f} vs {PAPER_MAIN['fssv_lang'][col]:.3f}; simpo "
             f"{PAPER_MAIN['prosv_simpo'][col]:.3f} vs {PAPER_MAIN['fssv_simpo'][col]:.3f} ({PAPER_MODELS[col]})")
    if main is None:
        return dict(claim=claim, ours="not measured (table 'main' missing)", paper=paper, verdict=NOT_MEASURED)
    pairs = _pairs_by_loss(main)
    if not pairs:
        return dict(claim=claim, ours="not measured (no PrOSV/FSSV pair with the same loss in the main table)",
                    paper=paper, verdict=NOT_MEASURED)
    parts, ok = [], []
    for lo, (p, f) in pairs.items():
        overlap = not (p["overall_lo"] > f["overall_hi"] or f["overall_lo"] > p["overall_hi"]) \
            if {"overall_lo", "overall_hi"} <= set(p.index) else None
        note = "" if overlap is None else (", 95% CIs overlap" if overlap else ", 95% CIs apart")
        ok.append(p["overall"] > f["overall"])
        parts.append(f"{lo}: {p['method']} {p['overall']:.3f} vs {f['method']} {f['overall']:.3f}{note} "
                     f"({HELD if ok[-1] else NOT_HELD})")
    missing = [lo for lo in ("lang", "simpo") if lo not in pairs]
    if missing:
        parts.append(f"{'/'.join(missing)}: not measured")
    return dict(claim=claim, ours="; ".join(parts), paper=paper, verdict=HELD if all(ok) else NOT_HELD)


def _claim_utility(utility: pd.DataFrame | None) -> dict:
    claim = "PrOSV keeps more general utility than FSSV"
    paper = ("PrOSV loses 18-29% relative accuracy, FSSV 68-90% (tinyGSM8K, Gemma-2-9B: PrOSV 68.4%, FSSV 8.6%, "
             "prompting 88.6%)")
    if utility is None:
        return dict(claim=claim, ours="not measured (table 'utility' missing)", paper=paper, verdict=NOT_MEASURED)
    ut = utility.copy()
    ut = ut[(ut["factor"].astype(float) - 1.0).abs() < 1e-9]
    per = ut.groupby("method", sort=True).agg(
        relative_accuracy=("relative_accuracy_mean", "mean"),
        **({"positions": ("positions", "first")} if "positions" in ut.columns else {}),
        **({"loss": ("loss", "first")} if "loss" in ut.columns else {})).reset_index()
    pairs = _pairs_by_loss(per)
    if not pairs:
        return dict(claim=claim, ours="not measured (no PrOSV/FSSV pair at factor 1 in the utility table)",
                    paper=paper, verdict=NOT_MEASURED)
    parts, ok = [], []
    for lo, (p, f) in pairs.items():
        ok.append(p["relative_accuracy"] > f["relative_accuracy"])
        parts.append(f"relative accuracy {p['method']} {p['relative_accuracy']:.2f} vs {f['method']} "
                     f"{f['relative_accuracy']:.2f} (mean over tasks, factor 1; {HELD if ok[-1] else NOT_HELD})")
    return dict(claim=claim, ours="; ".join(parts), paper=paper, verdict=HELD if all(ok) else NOT_HELD)


def _claim_robustness(robustness: pd.DataFrame | None) -> dict:
    claim = "PrOSV is more robust to a concept-suppression attack at equal utility (better front than FSSV at 100/80/50% factor)"
    paper = "PrOSV sits above the FSSV front traced at factor 1.0/0.8/0.5 (figure; no single number)"
    if robustness is None:
        return dict(claim=claim, ours="not measured (table 'robustness' missing)", paper=paper, verdict=NOT_MEASURED)
    rb = robustness[robustness["relative_accuracy"].notna()] if "relative_accuracy" in robustness else robustness.iloc[:0]
    if rb.empty:
        return dict(claim=claim, ours="not measured (no utility joined to the robustness table)", paper=paper,
                    verdict=NOT_MEASURED)
    pos = rb["positions"] if "positions" in rb.columns else pd.Series([None] * len(rb), index=rb.index)
    loss = rb["loss"] if "loss" in rb.columns else pd.Series([_objective_from_name(m) for m in rb["method"]],
                                                             index=rb.index)
    fam = pd.Series([family(m, p) for m, p in zip(rb["method"], pos)], index=rb.index)
    parts, ok = [], []
    for lo in ("lang", "simpo"):
        prosv = _prompt_only_rows(rb, fam, loss == lo)
        fssv = rb[(fam == "fssv") & (loss == lo)]
        if prosv.empty or fssv.empty:
            continue
        p = prosv.iloc[(prosv["factor"].astype(float) - 1.0).abs().argsort()].iloc[0]
        fr = fssv.sort_values("relative_accuracy")
        u = float(p["relative_accuracy"])
        lo_u, hi_u = fr["relative_accuracy"].min(), fr["relative_accuracy"].max()
        at = float(np.interp(u, fr["relative_accuracy"], fr["overall"]))
        where = "" if lo_u <= u <= hi_u else " (FSSV front held flat outside its measured utility range)"
        parts.append(f"{lo}: {p['method']} score {p['overall']:.3f} at utility {u:.2f}; FSSV front "
                     f"({', '.join(f'x{x:g}' for x in sorted(fr['factor'], reverse=True))}) at that utility "
                     f"{at:.3f}{where} ({HELD if float(p['overall']) > at else NOT_HELD})")
        ok.append(float(p["overall"]) > at)
    if not ok:
        return dict(claim=claim, ours="not measured (no PrOSV/FSSV pair with utility in the robustness table)",
                    paper=paper, verdict=NOT_MEASURED)
    return dict(claim=claim, ours="; ".join(parts), paper=paper, verdict=HELD if all(ok) else NOT_HELD)


def _claim_loreft(cosine: pd.DataFrame | None, loreft: pd.DataFrame | None) -> dict:
    claim = f"LoReFT (rank 1) and PrOSV coincide at template positions: direction cosine > {COS_THRESHOLD}"
    paper = f"cosine > {COS_THRESHOLD} on one concept, near-identical loss curves"
    if cosine is None or "cosine" not in cosine.columns:
        return dict(claim=claim, ours="not measured (table 'loreft_cosine' missing)", paper=paper,
                    verdict=NOT_MEASURED)
    c = cosine["cosine"].astype(float).abs()
    ours = f"cosine min {c.min():.3f}, mean {c.mean():.3f} over {len(c)} concept(s)"
    if loreft is not None and {"method", "loss", "step"} <= set(loreft.columns):
        fin = loreft.sort_values("step").groupby(["method", "concept"]).tail(1).groupby("method")["loss"].mean()
        if {"prosv", "loreft"} <= set(fin.index):
            ours += f"; final loss PrOSV {fin['prosv']:.3f} vs LoReFT {fin['loreft']:.3f}"
    return dict(claim=claim, ours=ours, paper=paper, verdict=HELD if (c > COS_THRESHOLD).all() else NOT_HELD)


def _claim_location(locate: pd.DataFrame | None, col: str) -> dict:
    claim = "p2+s2 is the best trade-off in the location search (best overall score)"
    pl = PAPER_LOCATE
    paper = (f"p2+s2 {pl['p2+s2'][col][0]:.2f} vs FSSV {pl['all'][col][0]:.2f}, whole prompt "
             f"{pl['prompt'][col][0]:.2f}, p4+s4 {pl['p4+s4'][col][0]:.2f}, p1+s1 {pl['p1+s1'][col][0]:.2f} "
             f"overall ({PAPER_MODELS[col]}); best on every model")
    if locate is None:
        return dict(claim=claim, ours="not measured (table 'locate' missing)", paper=paper, verdict=NOT_MEASURED)
    loc = locate.assign(positions=locate["positions"].astype(str))
    if "p2+s2" not in set(loc["positions"]):
        return dict(claim=claim, ours="not measured (p2+s2 was not searched)", paper=paper, verdict=NOT_MEASURED)
    if "chosen" in loc.columns and loc["chosen"].astype(bool).any():
        layer = loc.loc[loc["chosen"].astype(bool), "layer"].iloc[0]
    else:
        layer = loc.sort_values("overall", ascending=False)["layer"].iloc[0]
    at = loc[loc["layer"] == layer].sort_values("overall", ascending=False)
    best = at.iloc[0]
    cells = ", ".join(f"{r.positions} {r.overall:.2f}" for r in at.itertuples())
    others = []
    for lay, g in loc[loc["layer"] != layer].groupby("layer"):
        others.append(f"L{int(lay)}: best {g.sort_values('overall', ascending=False)['positions'].iloc[0]}")
    ours = f"layer {int(layer)}: {cells}" + (f" (other layers: {'; '.join(others)})" if others else "")
    return dict(claim=claim, ours=ours, paper=paper, verdict=HELD if best["positions"] == "p2+s2" else NOT_HELD)


def claims(tables: Mapping[str, pd.DataFrame | None], *, model: str | None = None) -> pd.DataFrame:
    """The paper's six claims, each with our value, the paper's value and a verdict from the data.

    Tables used: scaling, else losses (1), main (2), utility (3), robustness (4), loreft_cosine and loreft (5),
    locate (6). A missing or empty table makes its claim 'not measured'.
    """
    col, _ = paper_model(model)
    rows = [
        _claim_joint_training(_table(tables, "losses"), _table(tables, "scaling")),
        _claim_overall(_table(tables, "main"), col),
        _claim_utility(_table(tables, "utility")),
        _claim_robustness(_table(tables, "robustness")),
        _claim_loreft(_table(tables, "loreft_cosine"), _table(tables, "loreft")),
        _claim_location(_table(tables, "locate"), col),
    ]
    out = pd.DataFrame(rows, columns=["claim", "ours", "paper", "verdict"])
    out.insert(0, "#", range(1, len(out) + 1))
    return out


def write_summary(tables: Mapping[str, pd.DataFrame | None], path, *, model: str | None = None,
                  choice: Mapping | None = None) -> str:
    """Write SUMMARY.md: the claims (ours, paper, verdict), the main table, the location table.

    ``tables`` keys: main (required), losses, locate, utility, robustness, loreft, loreft_cosine,
    loreft_spread. ``model``: the configured model name. Returns the text written.
    """
    main = _require(_table(tables, "main"), "main")
    col, same = paper_model(model)
    cl = claims(tables, model=model)
    counts = cl["verdict"].value_counts()
    judge = _single(main.get("judge"))
    lines = [
        "# PrOSV reproduction: summary",
        "",
        f"Model: **{model or 'unknown'}**. Judge: **{judge}**. Paper: Bao et al., *Towards Steering without "
        f"Sacrifice* (ICML 2026). Paper values are for {PAPER_MODELS[col]}"
        + ("." if same else f" (the paper's smallest model; ours is {model or 'another model'}, so compare "
                            f"directions, not magnitudes)."),
    ]
    if choice:
        lines.append(f"Location chosen by the search: layer {choice.get('layer')}, positions "
                     f"{choice.get('positions')} (dev overall {_fmt(choice.get('overall'))}).")
    lines += [
        "",
        f"Claims: {counts.get(HELD, 0)} held, {counts.get(NOT_HELD, 0)} did not hold, "
        f"{counts.get(NOT_MEASURED, 0)} not measured. Verdicts are computed from this run's tables by a "
        f"fixed rule (higher mean wins; robustness compared at equal utility along the FSSV front; "
        f"cosine threshold {COS_THRESHOLD}); small concept counts make them indicative, see the CIs.",
        "",
        "## Claims",
        "",
        _markdown(cl.assign(**{"#": cl["#"].astype(str), "verdict": "**" + cl["verdict"] + "**"})),
        "",
        "## Main table",
        "",
        main_table_markdown(main, model=model),
    ]
    loc = _table(tables, "locate")
    if loc is not None:
        lines += ["## Location search (development concepts, factor-free protocol)", "",
                  locate_table_markdown(loc, model=model)]
    sc = _table(tables, "scaling")
    if sc is not None:
        view = sc.assign(**{c: sc[c].map(lambda x: _fmt(x, 3)) for c in ("final_loss", "overall", "alpha_final")})
        lines += ["## Scaling study (development concepts; last-epoch training loss and judge score per cell)", "",
                  _markdown(view[["cell", "kind", "c_alpha", "eta_alpha", "optimizer", "lr_alpha", "lr_v",
                                  "alpha_final", "final_loss", "overall"]]), ""]
    ut = _table(tables, "utility")
    if ut is not None:
        view = ut.assign(factor=ut["factor"].map(lambda f: _fmt(f, 2)),
                         accuracy=[_pm(m, s, 3) for m, s in zip(ut["accuracy_mean"], ut["accuracy_std"])],
                         relative=[_pm(m, s, 2) for m, s in zip(ut["relative_accuracy_mean"], ut["relative_accuracy_std"])],
                         n_concepts=ut["n_concepts"].map(_fmt) if "n_concepts" in ut else "-")
        lines += ["## Utility (accuracy, mean +- std over concepts)", "",
                  _markdown(view[["method", "factor", "task", "n_concepts", "accuracy", "relative"]]), ""]
    text = "\n".join(lines).rstrip() + "\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


# --------------------------------------------------------------------------------------------
# everything at once (the figures rule)

FIGURES = {
    "main_scores": ("main",),
    "locate_heatmap": ("locate",),
    "scaling": ("scaling",),
    "loss_curves": ("losses",),
    "loreft_vs_prosv": ("loreft", "loreft_cosine", "loreft_spread"),
    "utility": ("utility",),
    "robustness_vs_utility": ("robustness",),
}


def render_all(tables: Mapping[str, pd.DataFrame | None], figure_paths: Mapping[str, str | Path], *,
               main_md: str | Path | None = None, summary: str | Path | None = None,
               model: str | None = None, choice: Mapping | None = None, strict: bool = True) -> dict[str, str]:
    """Render every figure named in ``figure_paths`` (keys of :data:`FIGURES`), the main table and
    the summary. With ``strict=False`` a figure whose table is missing becomes a placeholder PNG
    saying so (the workflow still declares every output); the problems are returned by name."""
    judge = (choice or {}).get("judge")
    makers = {
        "main_scores": lambda: plot_main_scores(tables.get("main"), model=model),
        "locate_heatmap": lambda: plot_locate_heatmap(tables.get("locate"), choice=choice, model=model, judge=judge),
        "scaling": lambda: plot_scaling(tables.get("scaling"), model=model),
        "loss_curves": lambda: plot_loss_curves(tables.get("losses"), model=model),
        "loreft_vs_prosv": lambda: plot_loreft_vs_prosv(tables.get("loreft"), tables.get("loreft_cosine"),
                                                        tables.get("loreft_spread"), model=model),
        "utility": lambda: plot_utility(tables.get("utility"), model=model),
        "robustness_vs_utility": lambda: plot_robustness_vs_utility(tables.get("robustness"), model=model),
    }
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
            _style()
            fig, ax = plt.subplots(figsize=(6, 2))
            ax.axis("off")
            ax.text(0.5, 0.5, f"{name}: not available\n{err}", ha="center", va="center", wrap=True)
        save_figure(fig, path)
    if main_md is not None:
        Path(main_md).parent.mkdir(parents=True, exist_ok=True)
        Path(main_md).write_text(main_table_markdown(tables.get("main"), model=model))
    if summary is not None:
        write_summary(tables, summary, model=model, choice=choice)
    return problems
