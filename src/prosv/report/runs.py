"""The same claims decided in several runs (seeds, dtypes, commits, machines), side by side.

Each run's comparisons are recomputed from its ``tables/*.parquet`` with the current statistic
(:func:`prosv.report.claims.comparisons`), so runs made before a change of the statistic compare on
equal terms. A comparison is ``same`` when every run gives it one verdict, ``flip`` when one run calls
it held and another contradicted (the outcome a study must not have), else ``changed``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..files import write_text
from ..stats import CONTRADICTED, HELD, NOT_MEASURED
from .claims import comparisons
from .text import markdown

SAME, CHANGED, FLIP = "same", "changed", "flip"
KEY = ["claim", "comparison"]


def run_tables(run: str | Path) -> dict[str, pd.DataFrame]:
    """Every table a run's ``aggregate`` wrote (``<run>/tables/<name>.parquet``), by name."""
    folder = Path(run) / "tables"
    paths = sorted(folder.glob("*.parquet"))
    if not paths:
        raise FileNotFoundError(f"{run}: no tables/*.parquet (is it a run's results folder, after `aggregate`?)")
    return {p.stem: pd.read_parquet(p) for p in paths}


def run_settings(run: str | Path) -> dict[str, str]:
    """The seed and dtype of a run's main vectors (their metadata), where it has any; a key whose
    values differ between vector files lists them all."""
    from safetensors import safe_open

    from ..provenance import combined, recorded

    paths = [p for p in sorted((Path(run) / "vectors").glob("**/*.safetensors")) if ".shards" not in p.parent.name]
    seeds = {}  # a shard repeats its merged file: merged files only
    for path in paths:
        with safe_open(str(path), framework="numpy") as f:
            seed = json.loads((f.metadata() or {}).get("hyperparameters") or "{}").get("seed")
        if seed is not None:
            seeds[str(seed)] = None
    dtype = combined(recorded(paths)).get("dtype")
    return {k: v for k, v in (("seed", " / ".join(seeds)), ("dtype", dtype)) if v}


def stability(verdicts: Sequence[str]) -> str:
    """``flip`` when the runs call one comparison both held and contradicted, ``same`` when they all
    agree, else ``changed`` (``not measured`` when no run measured it)."""
    seen = set(verdicts)
    if not seen:
        return NOT_MEASURED
    if {HELD, CONTRADICTED} <= seen:
        return FLIP
    return SAME if len(seen) == 1 else CHANGED


def verdicts_across(runs: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per comparison (claim, comparison) and, per run label, its difference, interval, n,
    verdict and the condition compared against (``b``: the runner-up placement can differ by run);
    ``stability`` over the runs that measured it. ``runs``: label -> a run's comparisons table."""
    if not runs:
        raise ValueError("no runs to compare")
    # every comparison once, in the order the runs list them (a run may lack one another has)
    wide = pd.concat([comp[KEY] for comp in runs.values()]).drop_duplicates().reset_index(drop=True)
    for label, comp in runs.items():
        part = comp[[*KEY, "b", "difference", "ci_low", "ci_high", "n", "verdict"]].rename(
            columns={c: f"{c} {label}" for c in ("b", "difference", "ci_low", "ci_high", "n", "verdict")}
        )
        wide = wide.merge(part, on=KEY, how="left", sort=False)
    verdict_cols = [f"verdict {label}" for label in runs]
    wide["stability"] = [
        stability([v for v in row if isinstance(v, str) and v != NOT_MEASURED]) for row in wide[verdict_cols].values
    ]
    return wide


def _cell(row, label: str, show_b: bool) -> str:
    verdict = row[f"verdict {label}"]
    if not isinstance(verdict, str) or row[f"n {label}"] == 0:
        return NOT_MEASURED
    d, lo, hi = row[f"difference {label}"], row[f"ci_low {label}"], row[f"ci_high {label}"]
    text = f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}], n {int(row[f'n {label}'])}, {verdict}"
    if verdict in (HELD, CONTRADICTED):
        text = f"**{text}**"
    return f"{text} (vs {row[f'b {label}']})" if show_b else text


def across_markdown(table: pd.DataFrame, labels: Sequence[str], settings: Mapping[str, Mapping] | None = None) -> str:
    """The comparisons of :func:`verdicts_across` as a markdown table, one column per run, and a line
    that counts the comparisons whose verdict stayed the same, changed, or flipped."""
    settings = settings or {}
    heads = []
    for label in labels:
        s = settings.get(label) or {}
        extra = ", ".join(f"{k} {v}" for k, v in s.items())
        heads.append(f"{label} ({extra})" if extra else label)
    rows = []
    for _, row in table.iterrows():
        bs = {row[f"b {label}"] for label in labels if isinstance(row[f"b {label}"], str)}
        show_b = len(bs) > 1
        rows.append(
            {
                "#": str(row["claim"]),
                "comparison": row["comparison"],
                **{head: _cell(row, label, show_b) for head, label in zip(heads, labels)},
                "verdicts": row["stability"],
            }
        )
    counts = table["stability"].value_counts()
    flips = table.loc[table["stability"] == FLIP, "comparison"].tolist()
    measured = len(table) - counts.get(NOT_MEASURED, 0)
    line = (
        f"{measured} comparisons measured over {len(labels)} runs: {counts.get(SAME, 0)} kept one verdict, "
        f"{counts.get(CHANGED, 0)} changed between held or contradicted and inconclusive, "
        f"{counts.get(FLIP, 0)} flipped between held and contradicted" + (f" ({'; '.join(flips)})." if flips else ".")
    )
    return markdown(pd.DataFrame(rows)) + "\n\n" + line + "\n"


def compare_runs(
    runs: Sequence[str | Path],
    labels: Sequence[str] | None = None,
    *,
    out: str | Path | None = None,
    n_boot: int = 10_000,
    seed: int = 0,
) -> tuple[pd.DataFrame, str]:
    """Recompute every run's comparisons from its tables and set them side by side: (the wide table of
    :func:`verdicts_across`, its markdown). ``labels`` default to the folders' names; ``out`` (markdown)
    is written atomically when given."""
    labels = list(labels) if labels else [Path(r).name or str(r) for r in runs]
    if len(labels) != len(runs):
        raise ValueError(f"--label: {len(labels)} labels for {len(runs)} runs")
    if len(set(labels)) != len(labels):
        raise ValueError(f"--label: run labels must differ, got {labels} (name them with --label)")
    per_run = {label: comparisons(run_tables(run), n_boot=n_boot, seed=seed) for label, run in zip(labels, runs)}
    table = verdicts_across(per_run)
    text = across_markdown(table, labels, {label: run_settings(run) for label, run in zip(labels, runs)})
    if out is not None:
        write_text(out, text)
    return table, text
