"""The LLM judge: any OpenAI-compatible chat-completions server, with our own rubric prompts.

The answer ends with ``Rating: [[k]]``; the last rating in the answer is taken
(:func:`prosv.judges.base.parse_rating`); an answer without one scores 0 and counts as a parse
failure. Requests run in a thread pool, under a rate limit, with a timeout and exponential back-off;
a 429 or 5xx that says Retry-After is retried no sooner than it asks.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import random
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from .base import AXES, Item, Judge, JudgeStats, Rating, as_triple, parse_rating
from .cache import JudgeCache, prompt_hash_text

log = logging.getLogger(__name__)


PROMPT_VERSION = "prosv-rubric-v1"

SYSTEM_PROMPT = (
    "You grade short texts written by a language model. Apply the rubric you are given literally, "
    "reason briefly, and always end with the rating line in the requested format."
)

_FINAL_LINE = (
    "Give a short reason (one or two sentences), then end your answer with a line of exactly "
    "this form, with k replaced by your rating:\nRating: [[k]]"
)

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


def judge_messages(
    axis: str, concept: str, instruction: str, response: str, system_prompt: str | None = SYSTEM_PROMPT
) -> list[dict[str, str]]:
    """The chat messages the LLM judge sends for one axis."""
    user = RUBRICS[axis].format(concept=concept, instruction=instruction, response=response)
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": user})
    return messages


def retry_after_seconds(value: str | None) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (it holds seconds or an HTTP date);
    None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # an HTTP date is GMT
            when = when.replace(tzinfo=dt.UTC)
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def server_wait_seconds(headers) -> float | None:
    """The wait a 429 or 5xx answer asks for: OpenAI's ``retry-after-ms`` (milliseconds, the finer
    one, read first as OpenAI's own client does), else ``Retry-After``; None when neither is readable."""
    try:
        ms = float(headers.get("retry-after-ms") or "nan")
    except ValueError:
        ms = float("nan")
    if math.isfinite(ms):
        return max(0.0, ms / 1000)
    return retry_after_seconds(headers.get("retry-after"))


class JudgeAPIError(RuntimeError):
    """A judge request failed for good (after retries, or with a non-retryable status)."""


@dataclass
class APIJudgeStats(JudgeStats):
    """The counters of :class:`JudgeStats` plus why requests were retried: ``rate_limited`` (429),
    ``server_errors`` (5xx) and ``timeouts`` (no answer within ``timeout_s``). Each failed attempt
    counts once, retried or not."""

    rate_limited: int = 0
    server_errors: int = 0
    timeouts: int = 0


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

    Three requests per response (one per axis; identical requests in one batch are sent once), each
    cached under ``judge_id`` + hash of the exact request. The API key is read from the environment
    variable ``api_key_env`` (if set) and never written anywhere.
    """

    kind = "openai"

    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
        api_key_env: str | None = "PROSV_JUDGE_API_KEY",
        max_concurrency: int = 4,
        requests_per_minute: float | None = 60,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        system_prompt: str | None = SYSTEM_PROMPT,
        on_error: str = "raise",
        cache: JudgeCache | str | Path | bool | None = None,
        seed: int | None = None,
    ):
        super().__init__(cache)
        self.stats = APIJudgeStats()
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
        return {
            **super().describe(),
            "model": self.model,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "prompt_version": PROMPT_VERSION,
        }

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
        payload = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
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
                if isinstance(exc, requests.Timeout):
                    self.stats.add(timeouts=1)
            else:
                if resp.status_code == 200:
                    try:
                        return resp.json()
                    except ValueError:
                        last_error = f"invalid JSON from server: {resp.text[:200]!r}"
                elif resp.status_code == 429 or resp.status_code >= 500:
                    last_error = f"HTTP {resp.status_code}: {resp.text[:200]!r}"
                    self.stats.add(**{"rate_limited" if resp.status_code == 429 else "server_errors": 1})
                    retry_after = server_wait_seconds(resp.headers)
                else:
                    raise JudgeAPIError(f"HTTP {resp.status_code} from {url}: {resp.text[:500]}")
            if attempt < self.max_retries:
                delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * (1.0 + 0.25 * random.random())
                if retry_after is not None:
                    # the server's wait in full, even past max_backoff_s: coming back sooner only earns
                    # another 429 and spends a retry
                    delay = max(delay, retry_after)
                # one line per retry only at debug level: a paper-size job retries thousands of times;
                # rate_many logs each batch's counts instead
                log.debug(
                    "judge request failed (%s); retry %d/%d in %.1fs", last_error, attempt + 1, self.max_retries, delay
                )
                time.sleep(delay)
        raise JudgeAPIError(f"judge request to {url} failed after {self.max_retries + 1} attempts: {last_error}")

    def _complete(self, key: str, payload: dict[str, Any]) -> str:
        """The judge's answer to one request: from the cache, else from the server (then cached)."""
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
        self.stats.add(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )
        if self.cache is not None:
            self.cache.put(key, self.judge_id, {"text": text, "usage": usage, "model": body.get("model")})
        return text

    def _one(self, request: tuple[str, dict[str, Any]]) -> tuple[str, str | None, str | None]:
        """(cache key, answer or None, error or None) of one request."""
        key, payload = request
        try:
            return key, self._complete(key, payload), None
        except JudgeAPIError as exc:
            self.stats.add(errors=1)
            if self.on_error == "raise":
                raise
            return key, None, str(exc)

    def rate_many(self, items: Iterable[Item], progress: bool = False) -> list[Rating]:
        triples = [as_triple(it) for it in items]
        start = time.perf_counter()
        before = self.stats.as_dict()
        # one request per distinct payload: the fluency rubric sees the response alone, so a
        # response shared by several rows (one per concept, say) is one request, not several that
        # each cost a call and race to write one cache key
        distinct: dict[str, dict[str, Any]] = {}
        keys: list[dict[str, str]] = []
        for triple in triples:
            row = {}
            for axis in AXES:
                payload = self._payload(judge_messages(axis, *triple, self.system_prompt))
                row[axis] = JudgeCache.key(self.judge_id, prompt_hash_text(payload))
                distinct.setdefault(row[axis], payload)
            keys.append(row)
        answers: dict[str, str] = {}
        errors: dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            # map's iterator cancels the requests not yet started when one raises (on_error: raise)
            results = pool.map(self._one, distinct.items())
            if progress:
                from tqdm.auto import tqdm

                results = tqdm(results, total=len(distinct), desc="judging")
            for key, text, error in results:
                if text is None:
                    errors[key] = error
                else:
                    answers[key] = text
        ratings = []
        failures = 0
        for row in keys:
            values, raw, failed, errored = {}, {}, [], []
            for axis, key in row.items():
                if key in errors:
                    errored.append(axis)  # a failed request is an error, not an answer that failed to parse
                    raw[axis] = f"[judge error] {errors[key]}"
                    parsed = None
                else:
                    raw[axis] = answers[key]
                    parsed = parse_rating(raw[axis])
                    if parsed is None:
                        failed.append(axis)
                values[axis] = 0 if parsed is None else parsed
            failures += len(failed)
            ratings.append(Rating(**values, raw=raw, parse_failures=tuple(failed), errors=tuple(errored)))
        self.stats.add(parse_failures=failures, responses_rated=len(triples), seconds=time.perf_counter() - start)
        self._log_retries(before)
        return ratings

    def _log_retries(self, before: dict[str, Any]) -> None:
        """One line for a batch's retries, by cause (none when the batch needed none)."""
        now = self.stats.as_dict()
        delta = {k: now[k] - before[k] for k in ("calls", "retries", "rate_limited", "server_errors", "timeouts")}
        if delta["retries"]:
            log.warning(
                "judge: %d retries for %d requests (%d rate limited, %d server errors, %d timeouts)",
                delta["retries"],
                delta["calls"],
                delta["rate_limited"],
                delta["server_errors"],
                delta["timeouts"],
            )
