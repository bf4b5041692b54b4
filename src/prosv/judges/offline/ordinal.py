"""Ordinal logistic models that map features to a 0/1/2 rating, and rank agreement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class OrdinalAxis:
    """Cumulative-logit (proportional odds) model of one axis: ``eta = w . (x - mean) / scale``;
    the rating is the number of cut-points below ``eta``."""

    features: list[str]
    mean: list[float]
    scale: list[float]
    weights: list[float]
    cutpoints: list[float]

    def eta(self, feats: Mapping[str, float]) -> float:
        x = np.array([feats[f] for f in self.features], dtype=float)
        return float(((x - np.array(self.mean)) / np.array(self.scale)) @ np.array(self.weights))

    def predict(self, feats: Mapping[str, float]) -> tuple[int, float]:
        eta = self.eta(feats)
        return int(sum(eta > c for c in self.cutpoints)), eta


def fit_ordinal(
    X: np.ndarray, y: np.ndarray, features: Sequence[str], l2: float = 1.0, n_classes: int = 3
) -> OrdinalAxis:
    """Maximum-likelihood ordinal logistic regression with an L2 penalty on the weights."""
    from scipy.optimize import minimize

    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=int)
    mean = X.mean(0)
    scale = X.std(0)
    scale[scale < 1e-8] = 1.0
    Z = (X - mean) / scale
    d, k = Z.shape[1], n_classes - 1

    def unpack(p):
        w = p[:d]
        theta = np.cumsum(np.concatenate([[p[d]], np.exp(p[d + 1 :])]))
        return w, theta

    def nll(p):
        w, theta = unpack(p)
        eta = Z @ w
        cdf = 1.0 / (1.0 + np.exp(-(theta[None, :] - eta[:, None])))  # P(y <= j)
        cdf = np.concatenate([np.zeros((len(y), 1)), cdf, np.ones((len(y), 1))], axis=1)
        prob = cdf[np.arange(len(y)), y + 1] - cdf[np.arange(len(y)), y]
        return -np.log(np.clip(prob, 1e-12, None)).sum() + 0.5 * l2 * (w @ w)

    p0 = np.concatenate([np.zeros(d), [-1.0], np.zeros(k - 1)])
    res = minimize(nll, p0, method="L-BFGS-B")
    w, theta = unpack(res.x)
    return OrdinalAxis(list(features), mean.tolist(), scale.tolist(), w.tolist(), theta.tolist())


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho with average ranks for ties (NaN when either side is constant)."""
    ra, rb = (pd.Series(np.asarray(v, dtype=float)).rank().to_numpy() for v in (a, b))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])
