"""Fitting the offline judge on our hand labels, and measuring any judge's agreement with them."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...data import default_data_dir
from ...evaluation import RATING_COLUMNS
from ...files import write_json
from ..base import AXES, Judge
from .features import AXIS_FEATURES
from .judge import DEFAULT_THRESHOLDS, FEATURE_VERSION, OfflineJudge
from .models import DEFAULT_FLUENCY_LM, DEFAULT_LM_MAX_TOKENS, EMBEDDING_PACKAGE, FLUENCY_LMS
from .ordinal import fit_ordinal, spearman


def default_calibration_data() -> Path:
    return default_data_dir() / "judge_calibration" / "calibration.jsonl"


def load_calibration(path: str | Path | None = None) -> pd.DataFrame:
    path = Path(path) if path is not None else default_calibration_data()
    df = pd.read_json(path, lines=True)
    need = {
        "id",
        "concept",
        "instruction",
        "response",
        "concept_rating",
        "instruction_rating",
        "fluency_rating",
        "split",
        "kind",
    }
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing keys {sorted(missing)}")
    return df


def agreement(pred: Sequence[int], gold: Sequence[int]) -> dict[str, float]:
    pred, gold = np.asarray(pred), np.asarray(gold)
    return {
        "accuracy": float((pred == gold).mean()),
        "spearman": spearman(pred, gold),
        "mae": float(np.abs(pred - gold).mean()),
        "n": int(len(gold)),
    }


def _fit_axes(df, feats, axis_features, l2, cal, held) -> tuple[dict, dict]:
    """Each axis's ordinal model fitted on the calibrate rows; agreement on both splits."""
    axes, metrics = {}, {}
    for axis in AXES:
        cols = axis_features[axis]
        y = df[f"{axis}_rating"].to_numpy()
        model = fit_ordinal(feats.loc[cal, cols].to_numpy(), y[cal], cols, l2=l2)
        pred = np.array([model.predict(row)[0] for row in feats[cols].to_dict("records")])
        axes[axis] = asdict(model)
        metrics[axis] = {"calibrate": agreement(pred[cal], y[cal]), "heldout": agreement(pred[held], y[held])}
    return axes, metrics


def calibrate_offline_judge(
    path: str | Path | None = None,
    out: str | Path | None = DEFAULT_THRESHOLDS,
    *,
    fluency_lm: str = DEFAULT_FLUENCY_LM,
    lm_max_tokens: int = DEFAULT_LM_MAX_TOKENS,
    l2: float = 1.0,
    embedding_dtype: str = "bfloat16",
    axis_features: Mapping[str, Sequence[str]] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Fit the offline judge's per-axis ordinal models on the ``calibrate`` split of ``path``,
    report agreement (exact-match accuracy, Spearman rho) on the ``heldout`` split, and write the
    thresholds file (unless ``out`` is None). Returns the thresholds mapping, metrics included."""
    path = Path(path) if path is not None else default_calibration_data()
    df = load_calibration(path)
    axis_features = {a: list(f) for a, f in (axis_features or AXIS_FEATURES).items()}
    config = {
        "fluency_lm": {"name": fluency_lm, "max_tokens": lm_max_tokens, "dtype": "bfloat16"},
        "embedding_dtype": embedding_dtype,
    }
    judge = OfflineJudge(config, cache=False)
    t0 = time.perf_counter()
    feats = pd.DataFrame(judge.features(list(zip(df["concept"], df["instruction"], df["response"]))))
    seconds = time.perf_counter() - t0
    cal = (df["split"] == "calibrate").to_numpy()
    held = (df["split"] == "heldout").to_numpy()
    axes, metrics = _fit_axes(df, feats, axis_features, l2, cal, held)
    thresholds = {
        "format": "prosv offline judge thresholds v1",
        "feature_version": FEATURE_VERSION,
        "embedding_model": f"sentence-transformers/all-MiniLM-L6-v2 via PyPI {EMBEDDING_PACKAGE}",
        "embedding_dtype": embedding_dtype,
        "fluency_lm": {**config["fluency_lm"], "source": FLUENCY_LMS[fluency_lm]},
        "fit": {
            "method": "ordinal logistic regression (cumulative logit), standardised features",
            "l2": l2,
            "split": "calibrate",
        },
        "axes": axes,
        "calibration": {
            "data": str(path),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "n_calibrate": int(cal.sum()),
            "n_heldout": int(held.sum()),
            "feature_seconds": round(seconds, 2),
            "metrics": metrics,
        },
    }
    if out is not None:
        write_json(out, thresholds)
    if verbose:
        print(format_metrics(metrics))
        if out is not None:
            print(f"wrote {out}")
    return thresholds


def evaluate_judge(judge: Judge, path: str | Path | None = None, split: str | None = "heldout") -> dict[str, Any]:
    """Agreement of any judge with the hand labels of ``path`` (one split, or all rows)."""
    df = load_calibration(path)
    if split:
        df = df[df["split"] == split]
    rated = judge.rate_dataframe(df)
    return {axis: agreement(rated[col], df[f"{axis}_rating"]) for axis, col in zip(AXES, RATING_COLUMNS)}


def format_metrics(metrics: Mapping[str, Any]) -> str:
    lines = [f"{'axis':12s} {'split':10s} {'n':>4s} {'accuracy':>9s} {'spearman':>9s} {'mae':>6s}"]
    for axis, per in metrics.items():
        for split, m in per.items() if "accuracy" not in per else [("", per)]:
            lines.append(
                f"{axis:12s} {split:10s} {m['n']:4d} {m['accuracy']:9.3f} {m['spearman']:9.3f} {m['mae']:6.3f}"
            )
    return "\n".join(lines)
