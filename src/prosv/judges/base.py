"""What every judge is: it rates (concept, instruction, response) on three axes, each 0, 1 or 2.

:class:`Judge` is the interface; :class:`Rating` one judged response; :class:`JudgeStats` the
counters every judge keeps (calls, cache hits, tokens, errors, parse failures), written beside the
ratings by :func:`save_ratings` and carried in every ratings table.
"""

from __future__ import annotations

import json
import math
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..evaluation import JUDGE_COUNT_COLUMNS, OVERALL, RATING_COLUMNS, overall_score
from ..files import write_json, write_table
from .cache import JudgeCache, open_cache

AXES: tuple[str, str, str] = ("concept", "instruction", "fluency")
RAW_COLUMNS: tuple[str, str, str] = tuple(f"judge_raw_{a}" for a in AXES)  # type: ignore[assignment]


def harmonic_mean(concept: float, instruction: float, fluency: float) -> float:
    """Overall score of one response: harmonic mean of the three ratings, 0 if any is 0."""
    return float(overall_score(concept, instruction, fluency))


_RATING_RE = re.compile(
    r"\[\[\s*(?P<bracketed>[^\[\]]*?)\s*\]\]"  # [[k]] anywhere
    r"|\brating\b\W{0,3}\s*[:=]\s*\**\s*(?P<bare>[+-]?\d+(?:\.\d+)?)(?!\.?\d|\s*/)",  # Rating: k (not k/10)
    re.IGNORECASE,
)
_THINK_RE = re.compile(r"<think>.*?(</think>|$)", re.IGNORECASE | re.DOTALL)


def parse_rating(text: str | None, allowed: Sequence[int] = (0, 1, 2)) -> int | None:
    """The last rating in a judge's answer, or None when there is none that can be read.

    The answer is meant to end with ``Rating: [[k]]``. We take the last ``[[...]]`` or
    ``Rating: k`` in the text (reasoning inside ``<think>`` blocks is ignored); its content must be
    one of ``allowed`` (``2``, ``2.0`` and `` 2 `` all read as 2). Anything else, including a last
    rating outside the scale or an unfilled template ``[[k]]``, is None: callers score it 0 and
    count a parse failure.
    """
    if not text:
        return None
    text = _THINK_RE.sub(" ", str(text))
    matches = list(_RATING_RE.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    value = last.group("bracketed") if last.group("bracketed") is not None else last.group("bare")
    value = value.strip().strip("*").strip()
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or number != int(number) or int(number) not in allowed:
        return None
    return int(number)


@dataclass
class Rating:
    """One judged response: the three ratings, the overall score and the judge's raw output."""

    concept: int
    instruction: int
    fluency: int
    raw: dict[str, str] = field(default_factory=dict)
    parse_failures: tuple[str, ...] = ()  # axes whose answer held no readable rating
    errors: tuple[str, ...] = ()  # axes whose request failed (on_error: zero)

    @property
    def score(self) -> float:
        return harmonic_mean(self.concept, self.instruction, self.fluency)

    def as_dict(self) -> dict[str, Any]:
        return {
            "concept": self.concept,
            "instruction": self.instruction,
            "fluency": self.fluency,
            "score": self.score,
            "raw": dict(self.raw),
            "parse_failures": list(self.parse_failures),
            "errors": list(self.errors),
        }


@dataclass
class JudgeStats:
    """Counters of one judge object (thread safe). ``calls`` are requests to the model (the API,
    or the offline models for one response); ``cache_hits`` are calls answered from the cache;
    ``parse_failures`` counts ratings whose raw output held no readable rating (cached or not);
    ``errors`` counts requests that failed for good (they are not parse failures)."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    parse_failures: int = 0
    errors: int = 0
    retries: int = 0
    responses_rated: int = 0
    seconds: float = 0.0

    def __post_init__(self):
        self._lock = threading.Lock()

    def add(self, **deltas: float) -> None:
        with self._lock:
            for key, value in deltas.items():
                setattr(self, key, getattr(self, key) + value)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            out = dict(asdict(self).items())
        out["tokens"] = out["prompt_tokens"] + out["completion_tokens"]
        out["seconds"] = round(out["seconds"], 3)
        return out


Item = Mapping[str, str] | Sequence[str]


def as_triple(item: Item) -> tuple[str, str, str]:
    if isinstance(item, Mapping):
        return str(item["concept"]), str(item["instruction"]), str(item["response"])
    concept, instruction, response = item
    return str(concept), str(instruction), str(response)


class Judge(ABC):
    """Rates responses on concept, instruction and fluency (0-2 each).

    Subclasses implement :meth:`rate_many` (cache look-ups and counters included) and
    :attr:`judge_id`; :meth:`rate` (one response) and :meth:`rate_dataframe` build on it.
    """

    kind: str = "abstract"

    def __init__(self, cache: JudgeCache | str | Path | bool | None = None):
        self.cache = open_cache(cache)
        self.stats = JudgeStats()

    @property
    @abstractmethod
    def judge_id(self) -> str:
        """Identifies everything that determines the output: part of every cache key."""

    @abstractmethod
    def rate_many(self, items: Iterable[Item], progress: bool = False) -> list[Rating]:
        """Rate a list of (concept, instruction, response) triples or mappings, in order."""

    def rate(self, concept: str, instruction: str, response: str) -> Rating:
        return self.rate_many([(concept, instruction, response)])[0]

    def rate_dataframe(
        self,
        df: pd.DataFrame,
        *,
        concept_col: str = "concept",
        instruction_col: str = "instruction",
        response_col: str = "response",
        progress: bool = False,
    ) -> pd.DataFrame:
        """Copy of ``df`` with ``concept_score``, ``instruction_score``, ``fluency_score``,
        ``overall``, ``judge``, the raw judge outputs (``judge_raw_<axis>``) and the response's
        counts (:data:`prosv.evaluation.JUDGE_COUNT_COLUMNS`) added; the judge's counters after the run are in
        ``out.attrs['judge_stats']``."""
        missing = [c for c in (concept_col, instruction_col, response_col) if c not in df.columns]
        if missing:
            raise KeyError(f"frame lacks column(s) {missing}")
        triples = list(
            zip(df[concept_col].astype(str), df[instruction_col].astype(str), df[response_col].fillna("").astype(str))
        )
        ratings = self.rate_many(triples, progress=progress)
        out = df.copy()
        for axis, col in zip(AXES, RATING_COLUMNS):
            out[col] = [getattr(r, axis) for r in ratings]
        out[OVERALL] = [r.score for r in ratings]
        out["judge"] = self.judge_id
        for axis, col in zip(AXES, RAW_COLUMNS):
            out[col] = [r.raw.get(axis, "") for r in ratings]
        calls, errors, failures = JUDGE_COUNT_COLUMNS
        out[calls] = len(AXES)
        out[errors] = [len(r.errors) for r in ratings]
        out[failures] = [len(r.parse_failures) for r in ratings]
        out.attrs["judge_stats"] = self.stats.as_dict()
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "judge_id": self.judge_id}

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


def save_ratings(ratings: pd.DataFrame, path: str | Path, judge: Judge | None = None) -> Path:
    """Write a ratings frame (parquet, csv or jsonl by suffix, atomically) and the judge's counters
    beside it as ``<path>.judge_stats.json``. Returns the stats path."""
    path = Path(path)
    stats = judge.stats.as_dict() if judge is not None else dict(ratings.attrs.get("judge_stats", {}))
    meta = {
        "judge": judge.describe() if judge is not None else {"judge_id": _single(ratings.get("judge"))},
        "stats": stats,
        "n_responses": int(len(ratings)),
    }
    return _write_ratings(path, ratings, meta)


def ratings_stats_path(path: str | Path) -> Path:
    """Where a ratings table's judge counters are written: ``<path>.judge_stats.json``."""
    path = Path(path)
    return path.with_name(path.name + ".judge_stats.json")


def _write_ratings(path: Path, ratings: pd.DataFrame, meta: dict) -> Path:
    frame = pd.DataFrame(ratings)
    frame.attrs = {}
    write_table(path, frame)
    return write_json(ratings_stats_path(path), meta)


def merge_ratings(paths: list, out: str | Path) -> Path:
    """One ratings table from the rated shards of a run (config key ``concepts_per_job``), rows in
    shard order, with the shards' judge counters summed; returns the stats path."""
    frames, stats, judge = [], {}, None
    for path in paths:
        frames.append(pd.read_parquet(path))
        meta = json.loads(ratings_stats_path(path).read_text())
        judge = judge or meta["judge"]
        for key, value in meta["stats"].items():
            stats[key] = stats.get(key, 0) + value
    if not frames:
        raise ValueError(f"{out}: no rated shards to merge")
    if "seconds" in stats:
        stats["seconds"] = round(stats["seconds"], 3)
    ratings = pd.concat(frames, ignore_index=True)
    # the order one job writes (factor, then sample), whatever the cut: a merged table is the same
    # however a split was sharded
    order = [c for c in ("factor", "sample_id") if c in ratings.columns]
    if order:
        ratings = ratings.sort_values(order, kind="stable", ignore_index=True)
    return _write_ratings(Path(out), ratings, {"judge": judge, "stats": stats, "n_responses": int(len(ratings))})


def _single(col) -> str | None:
    if col is None:
        return None
    values = sorted(set(map(str, col.dropna())))
    return values[0] if len(values) == 1 else ",".join(values)
