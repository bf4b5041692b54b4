"""Figures from the tidy tables (matplotlib and seaborn; no model, no torch).

Families (colours, markers, line styles) come from each row's data (:mod:`.families`), never from
method names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Rectangle

from .. import evaluation as E
from ..files import atomic_write
from .families import families, position_key
from .frames import RATINGS, isna, require, single
from .paper import COS_THRESHOLD, PAPER_MAIN, paper_key, paper_label, paper_model


def figure_title(what: str, model: str | None = None, judge: str | None = None, protocol: str | None = None) -> str:
    bits = [
        b for b in (model and f"model {model}", judge and f"judge {judge}", protocol and f"protocol {protocol}") if b
    ]
    return what + ("\n" + ", ".join(bits) if bits else "")


def style():
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.15)
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "axes.titleweight": "bold",
            "axes.titlesize": 11,
            "legend.frameon": False,
        }
    )


FAMILY_COLOURS = {
    "fssv": "Reds",
    "posthoc": "Reds",
    "prosv": "Blues",
    "prompt": "Purples",
    "fixed": "Greens",
    "loreft": "Oranges",
}


def palette(families_by_name: dict[str, str]) -> dict[str, tuple]:
    """Stable colours by family: FSSV reds, PrOSV blues, whole prompt purples, baselines greys."""
    fixed = {"unsteered": "#9e9e9e", "prompting": "#616161"}
    counters: dict[str, int] = {}
    other = sns.color_palette("Set2", 8)
    out = {}
    for name, fam in families_by_name.items():
        if name in fixed:
            out[name] = fixed[name]
            continue
        k = counters.get(fam, 0)
        counters[fam] = k + 1
        out[name] = sns.color_palette(FAMILY_COLOURS[fam], 6)[2 + k % 4] if fam in FAMILY_COLOURS else other[k % 8]
    return out


def save_figure(fig, path) -> Path:
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, bbox_inches="tight", format=path.suffix.lstrip(".") or "png"))
    plt.close(fig)
    return path


def _overall_panel(ax, df: pd.DataFrame, model: str | None, show_paper: bool) -> None:
    names = list(df["method"])
    colors = palette(dict(zip(names, families(df))))
    x = np.arange(len(df))
    err = np.vstack(
        [(df["overall"] - df["overall_lo"]).clip(lower=0), (df["overall_hi"] - df["overall"]).clip(lower=0)]
    )
    bars = ax.bar(
        x,
        df["overall"],
        yerr=err,
        capsize=4,
        color=[colors[n] for n in names],
        edgecolor="black",
        linewidth=0.6,
        label="ours (95% CI)",
    )
    for b, proto in zip(bars, df["protocol"]):
        if proto == E.PROTOCOL_FACTOR_GRID:
            b.set_hatch("//")
    col, _ = paper_model(model)
    marks = [(i, PAPER_MAIN[key][col]) for i, r in df.iterrows() if (key := paper_key(r)) is not None]
    if show_paper and marks:
        ax.scatter(*zip(*marks), marker="D", s=36, color="white", edgecolor="black", zorder=5, label=paper_label(model))
    for xi, v in zip(x, df["overall"]):
        if not isna(v):
            ax.text(
                xi,
                0.03,
                f"{v:.2f}",
                ha="center",
                va="bottom",
                fontsize=8,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
            )
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_xlabel("")
    ax.set_ylabel("overall score (0-2, harmonic mean)")
    ax.set_ylim(0, max(2.0 if df["overall_hi"].max() > 1.2 else 1.3, float(np.nanmax(df["overall_hi"])) * 1.1))
    ax.legend(loc="upper left", fontsize=8)
    grid = (df["protocol"] == E.PROTOCOL_FACTOR_GRID).any()
    ax.set_title("Overall steering score" + (" (hatched: factor grid)" if grid else ""))


def _ratings_panel(ax, df: pd.DataFrame) -> None:
    names = list(df["method"])
    long = df.melt(id_vars=["method"], value_vars=list(RATINGS), var_name="rating", value_name="score")
    long["rating"] = long["rating"].str.replace("_score", "", regex=False)
    sns.barplot(
        data=long,
        x="method",
        y="score",
        hue="rating",
        ax=ax,
        palette="muted",
        order=names,
        edgecolor="black",
        linewidth=0.4,
    )
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylim(0, 2.05)
    ax.set_ylabel("mean rating (0-2)")
    ax.set_xlabel("")
    ax.set_title("Concept, instruction and fluency ratings")
    ax.legend(title=None, fontsize=8, ncol=3, loc="upper left")


def plot_main_scores(main: pd.DataFrame, *, model: str | None = None, show_paper: bool = True):
    """Overall score per method (95% CI over concepts), with the paper's number beside it, and the
    three rating means. Factor-grid rows are hatched."""
    main = require(main, "main", ["method", "protocol", "overall", "overall_lo", "overall_hi", *RATINGS])
    style()
    df = main.reset_index(drop=True)
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(max(9, 1.6 * len(df) + 5), 4.4), gridspec_kw={"width_ratios": [1.1, 1]}
    )
    _overall_panel(ax, df, model, show_paper)
    _ratings_panel(ax2, df)
    what = f"Main results ({single(df.get('n_concepts'))} concepts)"
    fig.suptitle(figure_title(what, model, single(df.get("judge")), single(df["protocol"])), fontsize=11)
    fig.tight_layout()
    return fig


def plot_locate_heatmap(
    locate: pd.DataFrame, *, choice: Mapping | None = None, model: str | None = None, judge: str | None = None
):
    """Overall and concept score per (layer, positions) on the development concepts; the chosen
    cell framed."""
    loc = require(locate, "locate", ["layer", "positions", "overall", "concept_score"])
    style()
    positions = sorted(loc["positions"].astype(str).unique(), key=position_key)
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
        grid = (
            loc.assign(layer=loc["layer"].astype(int), positions=loc["positions"].astype(str))
            .pivot_table(index="layer", columns="positions", values=metric, aggfunc="mean")
            .reindex(index=layers, columns=positions)
        )
        sns.heatmap(
            grid, annot=True, fmt=".2f", cmap=cmap, ax=ax, cbar_kws={"shrink": 0.8}, linewidths=0.5, linecolor="white"
        )
        ax.set_xlabel("positions")
        ax.set_ylabel("layer")
        ax.set_title({"overall": "overall score", "concept_score": "concept score"}[metric])
        ax.tick_params(axis="y", rotation=0)
        if chosen and chosen[0] in layers and chosen[1] in positions:
            ax.add_patch(
                Rectangle(
                    (positions.index(chosen[1]), layers.index(chosen[0])),
                    1,
                    1,
                    fill=False,
                    edgecolor="red",
                    linewidth=2.5,
                )
            )
    n = single(loc.get("n_concepts"))
    what = f"Location search ({n} development concepts; red: chosen)"
    fig.suptitle(figure_title(what, model, judge, "factor_free"), fontsize=11)
    fig.tight_layout()
    return fig


def plot_scaling(scaling: pd.DataFrame, *, model: str | None = None):
    """Final training loss and overall score over factor init x factor learning rate (Adam, raw
    rates), and every ablation cell (alpha fixed, SGD, rate transfer) beside the best grid cell."""
    sc = require(scaling, "scaling", ["cell", "kind", "c_alpha", "eta_alpha", "final_loss", "overall"])
    grid = sc[sc["kind"] == "grid"]
    if grid.empty:
        raise ValueError("table 'scaling' has no grid cells")
    style()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), gridspec_kw={"width_ratios": [1, 1, 1.2]})
    for ax, metric, cmap, title in (
        (axes[0], "final_loss", "viridis_r", "last-epoch training loss"),
        (axes[1], "overall", "viridis", "overall score"),
    ):
        table = (
            grid.pivot_table(index="c_alpha", columns="eta_alpha", values=metric, aggfunc="mean")
            .sort_index(ascending=False)
            .sort_index(axis=1)
        )
        table.columns = [f"{c:g}" for c in table.columns]
        table.index = [f"{c:g}" for c in table.index]
        sns.heatmap(
            table, annot=True, fmt=".2f", cmap=cmap, ax=ax, cbar_kws={"shrink": 0.8}, linewidths=0.5, linecolor="white"
        )
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
    n = single(sc.get("positions"))
    layer = single(sc.get("layer"))
    fig.suptitle(figure_title(f"Scaling study (layer {layer}, {n}; development concepts)", model), fontsize=11)
    fig.tight_layout()
    return fig


def plot_loss_curves(losses: pd.DataFrame, *, model: str | None = None):
    """Training loss per step (mean over concepts, band: min-max) of the main runs, one panel per
    objective, and the trajectory of the factor alpha."""
    df = require(losses, "losses", ["method", "step", "loss"])
    style()
    if "role" in df.columns and (df["role"] == "main").any():
        df = df[df["role"].isin(["main", "extra"])]
    elif "split" in df.columns and (df["split"] == "eval").any():
        df = df[df["split"] == "eval"]
    df = df.copy()
    df["objective"] = df["objective"].fillna("other") if "objective" in df.columns else "other"
    df["run"] = df["method"].astype(str)
    if "positions" in df.columns:
        df["run"] = df["run"] + " (" + df["positions"].astype(str) + ")"
    objectives = sorted(df["objective"].unique())
    has_alpha = "alpha" in df.columns and df["alpha"].notna().any()
    ncol = len(objectives) + (1 if has_alpha else 0)
    fig, axes = plt.subplots(1, ncol, figsize=(4.6 * ncol, 3.9), squeeze=False)
    axes = axes[0]
    run_family = dict(zip(df["run"], families(df)))
    colors = palette(dict(sorted(run_family.items())))
    for ax, obj in zip(axes, objectives):
        part = df[df["objective"] == obj]
        for run, g in part.groupby("run", sort=True):
            s = g.groupby("step")["loss"].agg(["mean", "min", "max"])
            ax.plot(
                s.index, s["mean"], color=colors[run], label=run, lw=1.6, ls="--" if run_family[run] == "fixed" else "-"
            )
            ax.fill_between(s.index, s["min"], s["max"], color=colors[run], alpha=0.15, lw=0)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(f"training loss ({obj})")
        ax.set_title(f"{obj} loss (mean over concepts; band: min-max)", fontsize=10)
        ax.legend(fontsize=7)
    if has_alpha:
        ax = axes[-1]
        for run, g in df[df["alpha"].notna()].groupby("run", sort=True):
            s = g.groupby("step")["alpha"].mean()
            ax.plot(
                s.index, s.values, color=colors[run], label=run, lw=1.6, ls="--" if run_family[run] == "fixed" else "-"
            )
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("factor alpha (mean over concepts)")
        ax.set_title("Trained factor alpha")
        if (df["alpha"].dropna() > 0).all():
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    layer = single(df.get("layer"))
    fig.suptitle(figure_title(f"Joint training of factor and direction (layer {layer})", model), fontsize=11)
    fig.tight_layout()
    return fig


def plot_loreft_vs_prosv(loreft: pd.DataFrame, cosine: pd.DataFrame, spread: pd.DataFrame, *, model: str | None = None):
    """LoReFT (rank 1) against PrOSV at the same positions: loss curves, direction cosine, and the
    spread of hidden states at the intervened vs content positions (the mechanism)."""
    lo = require(loreft, "loreft", ["method", "concept", "step", "loss"])
    cos = require(cosine, "loreft_cosine", ["concept", "cosine"])
    sp = require(spread, "loreft_spread", ["kind", "position", "mean_pairwise_cosine"])
    style()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9), gridspec_kw={"width_ratios": [1.3, 0.8, 1.1]})
    ax = axes[0]
    lo = lo.assign(concept=lo["concept"].astype(str))
    styles = dict(zip(sorted(lo["concept"].unique()), ["-", "--", ":", "-."] * 10))
    mcolors = {"prosv": sns.color_palette("Blues", 6)[4], "loreft": sns.color_palette("Oranges", 6)[4]}
    for (method, concept), g in lo.groupby(["method", "concept"], sort=True):
        g = g.sort_values("step")
        ax.plot(
            g["step"],
            g["loss"],
            ls=styles[concept],
            color=mcolors.get(method, "grey"),
            label=f"{method}, concept {concept}",
            lw=1.5,
        )
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
    sns.barplot(
        data=sp,
        x="position",
        y="mean_pairwise_cosine",
        hue="kind",
        ax=ax,
        palette="Set2",
        edgecolor="black",
        linewidth=0.4,
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean pairwise cosine across prompts")
    ax.set_title("Hidden-state spread at each position")
    ax.legend(title=None, fontsize=8)
    fig.suptitle(figure_title("LoReFT collapses to a steering vector at template positions", model), fontsize=11)
    fig.tight_layout()
    return fig


def _utility_label(method, factor) -> str:
    return str(method) if isna(factor) or abs(float(factor) - 1.0) < 1e-9 else f"{method} x{float(factor):g}"


def plot_utility(utility: pd.DataFrame, *, model: str | None = None):
    """Relative accuracy (steered / unsteered) per task, mean and std over concepts."""
    ut = require(utility, "utility", ["method", "factor", "task", "relative_accuracy_mean", "relative_accuracy_std"])
    style()
    ut = ut.copy()
    ut["label"] = [_utility_label(m, f) for m, f in zip(ut["method"], ut["factor"])]
    fam_order = {"baseline": 1, "fssv": 2, "prompt": 3, "prosv": 4}
    ut["_k"] = [0 if m == "unsteered" else fam_order.get(f, 5) for m, f in zip(ut["method"], families(ut))]
    labels = list(ut.sort_values(["_k", "method", "factor"], ascending=[True, True, False])["label"].unique())
    tasks = sorted(ut["task"].unique())
    fig, ax = plt.subplots(figsize=(max(6.5, 0.9 * len(labels) * max(1, len(tasks)) * 0.7 + 3), 4.2))
    width = 0.8 / len(tasks)
    pal = sns.color_palette("deep", len(tasks))
    for j, task in enumerate(tasks):
        part = ut[ut["task"] == task].set_index("label").reindex(labels)
        xs = np.arange(len(labels)) + (j - (len(tasks) - 1) / 2) * width
        ax.bar(
            xs,
            part["relative_accuracy_mean"],
            width,
            yerr=part["relative_accuracy_std"].fillna(0),
            capsize=3,
            color=pal[j],
            edgecolor="black",
            lw=0.5,
            label=task,
        )
    ax.axhline(1.0, color="black", lw=0.8, ls=":")
    ax.set_xticks(np.arange(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel("accuracy relative to unsteered")
    ax.legend(title="task", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    n = single(ut.loc[ut["method"] != "unsteered", "n_concepts"]) if "n_concepts" in ut else None
    ax.set_title(figure_title(f"Utility under steering (mean +- std over {n} concepts)", model))
    fig.tight_layout()
    return fig


def plot_robustness_vs_utility(robustness: pd.DataFrame, *, model: str | None = None):
    """Steering score under the suppression attack against utility (relative accuracy); FSSV traced
    over its factor multipliers, PrOSV and baselines as points."""
    rb = require(robustness, "robustness", ["method", "factor", "overall", "relative_accuracy"])
    rb = rb[rb["relative_accuracy"].notna()]
    if rb.empty:
        raise ValueError("table 'robustness' has no row with a utility (relative_accuracy): nothing to plot")
    style()
    judge = single(rb.get("judge"))
    method_family = dict(zip(rb["method"], families(rb)))
    colors = palette(dict(sorted(method_family.items())))
    fig, ax = plt.subplots(figsize=(6.8, 4.8))
    for method, g in rb.groupby("method", sort=True):
        g = g.sort_values("relative_accuracy")
        fam = method_family[method]
        yerr = None
        if {"overall_lo", "overall_hi"} <= set(g.columns):
            yerr = np.vstack(
                [(g["overall"] - g["overall_lo"]).clip(lower=0), (g["overall_hi"] - g["overall"]).clip(lower=0)]
            )
        xerr = g["relative_accuracy_std"].fillna(0).to_numpy() if "relative_accuracy_std" in g else None
        marker = {"fssv": "s", "prosv": "o", "baseline": "^"}.get(fam, "D")
        ax.errorbar(
            g["relative_accuracy"],
            g["overall"],
            yerr=yerr,
            xerr=xerr,
            fmt=marker + ("-" if len(g) > 1 else ""),
            color=colors[method],
            label=method,
            ms=7,
            capsize=3,
            lw=1.4,
            elinewidth=0.8,
            alpha=0.95,
        )
        if len(g) > 1 or fam == "fssv":
            for _, r in g.iterrows():
                ax.annotate(
                    f"x{r['factor']:g}",
                    (r["relative_accuracy"], r["overall"]),
                    textcoords="offset points",
                    xytext=(5, 4),
                    fontsize=7,
                    color=colors[method],
                )
    ax.set_xlabel("utility: accuracy relative to unsteered (mean over tasks)")
    ax.set_ylabel("overall score under suppression attack")
    ax.set_xlim(left=min(0, ax.get_xlim()[0]))
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="best")
    ax.text(
        0.99, 0.01, "better: up and right", transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="grey"
    )
    ax.set_title(
        figure_title("Robustness vs utility (FSSV traced over factor multipliers)", model, judge, "suppression_attack")
    )
    fig.tight_layout()
    return fig


def placeholder(message: str):
    """A small figure that says why the real one could not be drawn."""
    style()
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig
