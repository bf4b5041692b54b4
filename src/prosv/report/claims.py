"""The paper's claims, each decided from this run's per-concept tables by a paired comparison.

Every claim compares two conditions on the same concepts (:func:`prosv.stats.paired_comparison`: the
mean per-concept difference with a paired bootstrap 95% interval over concepts) and gets one of three
verdicts: ``held`` (interval on the paper's side of zero), ``contradicted`` (on the other side),
``inconclusive`` (it spans zero, or fewer than two concepts were measured). A claim made of several
comparisons holds when all of them hold and is contradicted when any is contradicted.

Tables used (per concept): ``scaling_concepts`` (1), ``main_concepts`` (2), ``utility_concepts`` (3),
``robustness_concepts`` and ``utility_concepts`` (4), ``loreft_cosine`` (5), ``locate_concepts`` and
``locate`` (6), ``task_items`` (7: the blog's task-steering result; its paired unit is a test item).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .. import evaluation as E
from ..stats import CONTRADICTED, HELD, INCONCLUSIVE, NOT_MEASURED, Comparison, paired_comparison
from .families import families, prompt_only
from .frames import table
from .paper import BLOG_TASK, COS_THRESHOLD, PAPER_LOCATE, PAPER_MAIN, PAPER_MODELS, paper_model

VERDICTS = (HELD, CONTRADICTED, INCONCLUSIVE, NOT_MEASURED)
COMPARISON_COLUMNS = [
    "claim",
    "comparison",
    "a",
    "b",
    "difference",
    "ci_low",
    "ci_high",
    "n",
    "sd",
    "detectable",
    "concepts_needed",
    "verdict",
]


def _row(claim: int, what: str, a: str, b: str, comp: Comparison | None, paper_sign: int) -> dict:
    if comp is None:
        nan = float("nan")
        return dict(
            claim=claim,
            comparison=what,
            a=a,
            b=b,
            difference=nan,
            ci_low=nan,
            ci_high=nan,
            n=0,
            sd=nan,
            detectable=nan,
            concepts_needed=nan,
            verdict=NOT_MEASURED,
        )
    verdict = comp.verdict(paper_sign) if comp.n >= 2 else (NOT_MEASURED if comp.n == 0 else INCONCLUSIVE)
    return dict(
        claim=claim,
        comparison=what,
        a=a,
        b=b,
        difference=comp.difference,
        ci_low=comp.ci_low,
        ci_high=comp.ci_high,
        n=comp.n,
        sd=comp.sd,
        detectable=comp.detectable,
        concepts_needed=comp.concepts_needed,
        verdict=verdict,
    )


def _series(df: pd.DataFrame, value: str, key: str = "concept_id") -> pd.Series:
    return df.groupby(key)[value].mean()


# -- 1: joint training


def _claim_joint_training(scaling: pd.DataFrame | None, boot: dict) -> list[dict]:
    """The base (large init and rate) cell's last-epoch loss per concept against alpha fixed, SGD, and
    the grid's smallest init and rate: lower is the paper's side."""
    if scaling is None or not {"cell", "kind", "concept", "final_loss"} <= set(scaling.columns):
        return [_row(1, "joint training vs alpha fixed", "joint", "alpha fixed", None, -1)]
    base = scaling[scaling.kind == "base"]
    if base.empty:
        return [_row(1, "joint training vs alpha fixed", "joint", "alpha fixed", None, -1)]
    a = _series(base, "final_loss", "concept")
    base_cell = str(base.cell.iloc[0])
    others = [(c, g) for c, g in scaling[scaling.kind.isin(["fixed", "sgd"])].groupby("cell", sort=True)]
    grid = scaling[scaling.kind == "grid"]
    if not grid.empty:
        corner = grid[(grid.c_alpha == grid.c_alpha.min()) & (grid.eta_alpha == grid.eta_alpha.min())]
        others.append((f"{corner.cell.iloc[0]} (smallest init and rate)", corner))
    return [
        _row(
            1,
            f"last-epoch loss, {base_cell} vs {cell}",
            base_cell,
            cell,
            paired_comparison(a, _series(g, "final_loss", "concept"), **boot),
            -1,
        )
        for cell, g in others
    ]


# -- 2: overall score


def _factor_free(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["protocol"] == E.PROTOCOL_FACTOR_FREE] if "protocol" in df.columns else df


def _sides(df: pd.DataFrame, loss: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(prompt-only rows, FSSV rows) of one loss, told apart by their data."""
    df = df[df["loss"] == loss]
    return df[prompt_only(df)], df[families(df) == "fssv"]


def _prosv_vs_fssv(claim: int, what: str, df: pd.DataFrame | None, value: str, boot: dict) -> list[dict]:
    """PrOSV against FSSV per loss on one per-concept value (the paper: PrOSV higher)."""
    rows = []
    for loss in ("lang", "simpo"):
        label = f"{what}, PrOSV vs FSSV ({loss})"
        if df is None:
            rows.append(_row(claim, label, "PrOSV", "FSSV", None, 1))
            continue
        p, f = _sides(df, loss)
        if p.empty or f.empty:
            continue
        pm, fm = p.method.iloc[0], f.method.iloc[0]
        comp = paired_comparison(_series(p[p.method == pm], value), _series(f[f.method == fm], value), **boot)
        rows.append(_row(claim, label, pm, fm, comp, 1))
    return rows or [_row(claim, f"{what}, PrOSV vs FSSV", "PrOSV", "FSSV", None, 1)]


def _claim_overall(concepts: pd.DataFrame | None, boot: dict) -> list[dict]:
    return _prosv_vs_fssv(2, "overall score", None if concepts is None else _factor_free(concepts), "overall", boot)


# -- 3: utility


def _claim_utility(utility: pd.DataFrame | None, boot: dict) -> list[dict]:
    at1 = None if utility is None else utility[(utility["factor"].astype(float) - 1.0).abs() < 1e-9]
    return _prosv_vs_fssv(3, "relative accuracy at factor 1", at1, "relative_accuracy", boot)


# -- 4: robustness at equal utility


def front_at(utilities: np.ndarray, scores: np.ndarray, u: float) -> float:
    """The FSSV front (score against utility over its factors) read at utility `u`, linearly
    interpolated and held flat beyond its measured range."""
    order = np.argsort(utilities)
    return float(np.interp(u, np.asarray(utilities, float)[order], np.asarray(scores, float)[order]))


def _claim_robustness(attack: pd.DataFrame | None, utility: pd.DataFrame | None, boot: dict) -> list[dict]:
    rows = []
    for loss in ("lang", "simpo"):
        what = f"score under attack minus FSSV front at equal utility ({loss})"
        if attack is None or utility is None:
            rows.append(_row(4, what, "PrOSV", "FSSV front", None, 1))
            continue
        joined = attack.merge(
            utility[["method", "factor", "concept_id", "relative_accuracy"]],
            on=["method", "factor", "concept_id"],
            how="inner",
        )
        p, f = _sides(joined, loss)
        p = p[(p["factor"].astype(float) - 1.0).abs() < 1e-9]
        if p.empty or f.empty:
            continue
        pm, fm = p.method.iloc[0], f.method.iloc[0]
        diffs = {}
        for cid, g in p[p.method == pm].groupby("concept_id"):
            front = f[(f.method == fm) & (f.concept_id == cid)]
            if len(front) >= 1:
                u = float(g.relative_accuracy.mean())
                diffs[cid] = float(g.overall.mean()) - front_at(
                    front.relative_accuracy.to_numpy(), front.overall.to_numpy(), u
                )
        comp = paired_comparison(pd.Series(diffs, dtype=float), 0.0, **boot) if diffs else None
        rows.append(_row(4, what, pm, f"{fm} front", comp, 1))
    return rows or [_row(4, "score under attack minus FSSV front", "PrOSV", "FSSV front", None, 1)]


# -- 5: LoReFT


def _claim_loreft(cosine: pd.DataFrame | None, boot: dict) -> list[dict]:
    what = f"|cos(LoReFT R row, PrOSV v)| minus {COS_THRESHOLD}"
    if cosine is None or "cosine" not in cosine.columns:
        return [_row(5, what, "cosine", str(COS_THRESHOLD), None, 1)]
    values = cosine.groupby("concept")["cosine"].mean().abs()
    return [_row(5, what, "cosine", str(COS_THRESHOLD), paired_comparison(values, COS_THRESHOLD, **boot), 1)]


# -- 6: location


def _claim_location(locate: pd.DataFrame | None, per_concept: pd.DataFrame | None, boot: dict) -> list[dict]:
    what = "p2+s2 minus the best other placement (development concepts)"
    if locate is None or per_concept is None or "p2+s2" not in set(locate.positions.astype(str)):
        return [_row(6, what, "p2+s2", "best other", None, 1)]
    layer = (
        int(locate.loc[locate.chosen.astype(bool), "layer"].iloc[0])
        if "chosen" in locate and locate.chosen.astype(bool).any()
        else int(locate.sort_values("overall").layer.iloc[-1])
    )
    at = locate[(locate.layer == layer) & (locate.positions.astype(str) != "p2+s2")]
    if at.empty:
        return [_row(6, what, "p2+s2", "best other", None, 1)]
    other = str(at.sort_values(["overall", "concept_score"]).positions.iloc[-1])
    cells = per_concept[per_concept.layer == layer]
    a = _series(cells[cells.positions.astype(str) == "p2+s2"], "overall")
    b = _series(cells[cells.positions.astype(str) == other], "overall")
    return [_row(6, f"{what}, layer {layer}", "p2+s2", other, paired_comparison(a, b, **boot), 1)]


CLAIMS = {
    1: "Joint training needs a large factor init and learning rate (alpha fixed, SGD or a small init: higher loss)",
    2: "PrOSV beats FSSV (joint training) on the overall steering score, lang and simpo",
    3: "PrOSV keeps more general utility than FSSV",
    4: "PrOSV is more robust to a concept-suppression attack at equal utility (above the FSSV front at 100/80/50%)",
    5: f"LoReFT (rank 1) and PrOSV coincide at template positions: direction cosine above {COS_THRESHOLD}",
    6: "p2+s2 is the best placement in the location search (best overall score)",
    7: "On a yes/no reading task, PrOSV at every layer beats FSSV and the unsteered model and stays below LoRA "
    "(vectors align the answer format, not task knowledge)",
}

# claim 7: (what, a, b, paper sign) per comparison of per-item correctness
TASK_COMPARISONS = (
    ("accuracy, PrOSV minus FSSV (every layer), over test items", "prosv_layers", "fssv_layers", 1),
    ("accuracy, PrOSV (every layer) minus unsteered, over test items", "prosv_layers", "unsteered", 1),
    ("accuracy, LoRA minus PrOSV (every layer), over test items", "lora", "prosv_layers", 1),
)


def _claim_task(items: pd.DataFrame | None, boot: dict) -> list[dict]:
    from .task import per_item

    rows = []
    for what, a, b, sign in TASK_COMPARISONS:
        present = items is not None and {a, b} <= set(items["arm"])
        comp = paired_comparison(per_item(items, a), per_item(items, b), **boot) if present else None
        rows.append(_row(7, what, a, b, comp, sign))
    return rows


def paper_values(model: str | None) -> dict[int, str]:
    col, _ = paper_model(model)
    m, loc = PAPER_MAIN, PAPER_LOCATE
    return {
        1: "naive joint training fails: after 10 epochs SGD at c_alpha=1 stays at 3.236, Adam at c_alpha=1, "
        "lr 5e-4 reaches 3.181, Adam at c_alpha=32, lr 1e-2 reaches 2.025 (one concept)",
        2: f"lang {m['prosv_lang'][col]:.3f} vs {m['fssv_lang'][col]:.3f}; simpo {m['prosv_simpo'][col]:.3f} vs "
        f"{m['fssv_simpo'][col]:.3f} ({PAPER_MODELS[col]})",
        3: "PrOSV loses 18-29% relative accuracy, FSSV 68-90% (tinyGSM8K; Gemma-2-9B: PrOSV 68.4%, FSSV 8.6%)",
        4: "PrOSV sits above the FSSV front traced at factor 1.0/0.8/0.5 (a figure; no single number)",
        5: f"cosine > {COS_THRESHOLD} on one concept, near-identical loss curves",
        6: f"p2+s2 {loc['p2+s2'][col][0]:.2f} vs FSSV {loc['all'][col][0]:.2f}, whole prompt "
        f"{loc['prompt'][col][0]:.2f}, p4+s4 {loc['p4+s4'][col][0]:.2f}, p1+s1 {loc['p1+s1'][col][0]:.2f} "
        f"overall ({PAPER_MODELS[col]}); best on every model",
        7: "BoolQ accuracy (Llama-2-7B, blog): " + ", ".join(f"{k} {v:g}" for k, v in BLOG_TASK.items()),
    }


def comparisons(tables: Mapping[str, pd.DataFrame | None], *, n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Every paired comparison behind the claims, one row each (COMPARISON_COLUMNS)."""
    boot = {"n_boot": n_boot, "seed": seed}
    rows = (
        _claim_joint_training(table(tables, "scaling_concepts"), boot)
        + _claim_overall(table(tables, "main_concepts"), boot)
        + _claim_utility(table(tables, "utility_concepts"), boot)
        + _claim_robustness(table(tables, "robustness_concepts"), table(tables, "utility_concepts"), boot)
        + _claim_loreft(table(tables, "loreft_cosine"), boot)
        + _claim_location(table(tables, "locate"), table(tables, "locate_concepts"), boot)
        + _claim_task(table(tables, "task_items"), boot)
    )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def combine(verdicts: list[str]) -> str:
    """A claim's verdict from its comparisons: all held -> held; any contradicted -> contradicted."""
    measured = [v for v in verdicts if v != NOT_MEASURED]
    if not measured:
        return NOT_MEASURED
    if CONTRADICTED in measured:
        return CONTRADICTED
    return HELD if all(v == HELD for v in measured) and len(measured) == len(verdicts) else INCONCLUSIVE


def claims(
    tables: Mapping[str, pd.DataFrame | None], *, model: str | None = None, n_boot: int = 10_000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims, comparisons): one row per claim with its verdict and the paper's value, and the paired
    comparisons it rests on."""
    comp = comparisons(tables, n_boot=n_boot, seed=seed)
    paper = paper_values(model)
    rows = [
        {"#": k, "claim": text, "paper": paper[k], "verdict": combine(comp.loc[comp.claim == k, "verdict"].tolist())}
        for k, text in CLAIMS.items()
    ]
    return pd.DataFrame(rows), comp
