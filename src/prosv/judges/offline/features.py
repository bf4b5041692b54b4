"""The offline judge's features: sentence pieces, repetition and lexical statistics, LM log-probability summaries."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

_SENT_SPLIT = re.compile(r"(?<=[.!?;:])\s+|\n+")
_WORD = re.compile(r"\w+", re.UNICODE)
_PLAIN_CHARS = set(".,;:!?'\"()-[]{}=*_+/`%<>#&@$^~|\\")


def segments(text: str, max_words: int = 24, stride: int = 16) -> list[str]:
    """Sentence-like pieces of a response (long run-ons cut into overlapping word windows)."""
    parts = [p.strip() for p in _SENT_SPLIT.split(text) if p and p.strip()]
    out: list[str] = []
    for part in parts:
        words = part.split()
        if len(words) > max_words:
            out.extend(" ".join(words[j : j + max_words]) for j in range(0, len(words) - max_words + stride, stride))
        else:
            out.append(part)
    return out or [text.strip() or "(empty)"]


def _distinct(words: Sequence[str], n: int) -> float:
    grams = list(zip(*(words[k:] for k in range(n))))
    return len(set(grams)) / len(grams) if grams else 1.0


def text_statistics(text: str, vocab: set[str] | None = None) -> dict[str, float]:
    """Model-free fluency statistics: repetition (distinct n-grams, compression) and lexical checks."""
    words = [w.lower() for w in _WORD.findall(text)]
    raw = text.encode("utf-8")
    alpha = [w for w in words if w.isalpha()]
    stats = {
        "distinct_1": _distinct(words, 1),
        "distinct_2": _distinct(words, 2),
        "distinct_3": _distinct(words, 3),
        "compression": len(zlib.compress(raw, 9)) / max(len(raw), 1),
        "odd_chars": sum(1 for ch in text if not (ch.isalnum() or ch.isspace() or ch in _PLAIN_CHARS))
        / max(len(text), 1),
        "n_words": float(len(words)),
    }
    if vocab is not None:
        stats["known_words"] = sum(w in vocab for w in alpha) / len(alpha) if alpha else 0.0
    return stats


def lm_statistics(cond: np.ndarray, unigram: np.ndarray, skip: int = 1) -> dict[str, float]:
    """Summaries of the per-token log-probabilities (the first ``skip`` tokens are left out: they
    are predicted from nothing and say little about fluency)."""
    c, u = cond[skip:], unigram[skip:]
    if len(c) == 0:
        c, u = cond, unigram
    if len(c) == 0:
        return {"lm_mean": -20.0, "lm_slor": -10.0, "lm_p10": -20.0, "lm_low": 1.0}
    return {
        "lm_mean": float(c.mean()),
        "lm_slor": float((c - u).mean()),
        "lm_p10": float(np.percentile(c, 10)),
        "lm_low": float((c < -8.0).mean()),
    }


# The features each axis uses (chosen by cross-validation on the calibrate split only).
AXIS_FEATURES: dict[str, list[str]] = {
    "concept": ["c_max", "c_whole"],
    "instruction": ["i_mean", "i_max", "i_frac"],
    "fluency": ["lm_mean", "lm_low", "distinct_1", "distinct_3"],
}
