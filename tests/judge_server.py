"""A fault-injecting OpenAI-compatible judge server on loopback, for the judge's scale tests and its
throughput benchmark (benchmarks/judge_throughput.py imports it from here).

It answers ``POST /v1/chat/completions`` with a rating the tests can compute on their own
(:func:`rating_for`, :func:`reply_for`: a function of the user prompt alone) and injects faults at
set rates: 429 with a ``Retry-After`` header, 500, and slow replies that outlast the client's
timeout. Whether attempt k of a prompt fails, and how, is a hash of (seed, k, prompt): the fault
pattern does not depend on the order in which concurrent requests arrive, so a run's fault counts
are reproducible. The server counts everything it did, per prompt and in all, measures requests in
flight, and how long each prompt waited after a 429 before it came back.

The app is plain ASGI under uvicorn (the stack ``prosv serve`` runs on), in a thread of the test
process on a socket bound to a free port.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate

from prosv.judges import AXES, harmonic_mean, judge_messages
from prosv.judges.llm import SYSTEM_PROMPT

CLEAN = "ok"
RATE_LIMITED = "429"
SERVER_ERROR = "500"
SLOW = "slow"


def _unit(*parts) -> float:
    """A number in [0, 1) fixed by ``parts``."""
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def rating_for(prompt: str) -> int | None:
    """The rating the server gives ``prompt``: 0, 1 or 2, or None (one prompt in 40) for an answer
    that holds no rating (the judge must score it 0 and count a parse failure)."""
    u = _unit("rating", prompt)
    return None if u < 1 / 40 else int(3 * (u - 1 / 40) / (1 - 1 / 40))


def prompt_digest(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def reply_for(prompt: str) -> str:
    """The server's whole answer to ``prompt``; it names the prompt's digest, so a stored answer
    says which prompt it belongs to."""
    rating = rating_for(prompt)
    reason = f"Prompt {prompt_digest(prompt)} read."
    if rating is None:
        return reason + " I cannot settle on a rating for this one."
    return f"{reason} An earlier draft said Rating: [[{(rating + 1) % 3}]], on reflection:\nRating: [[{rating}]]"


@dataclass(frozen=True)
class Faults:
    """Shares of attempts answered with each fault (the rest are answered after ``latency_s``).

    A 429 says ``Retry-After: retry_after_s`` (in seconds, or as an HTTP date rounded up to the
    next whole second when ``retry_after_date``; or, when ``retry_after_ms``, OpenAI's
    ``retry-after-ms`` with the wait beside a ``Retry-After: 0`` a client must not read first); a
    slow reply comes after ``slow_s`` unless the client hangs up first. Attempts after the first
    ``fail_attempts`` of a prompt are always clean.
    """

    rate_limited: float = 0.0
    server_error: float = 0.0
    slow: float = 0.0
    retry_after_s: float = 0.2
    retry_after_date: bool = False
    retry_after_ms: bool = False
    slow_s: float = 30.0
    latency_s: float = 0.0
    fail_attempts: int | None = None
    seed: int = 0

    def outcome(self, prompt: str, attempt: int) -> str:
        if self.fail_attempts is not None and attempt >= self.fail_attempts:
            return CLEAN
        u = _unit("fault", self.seed, attempt, prompt)
        for kind, share in ((RATE_LIMITED, self.rate_limited), (SERVER_ERROR, self.server_error), (SLOW, self.slow)):
            if u < share:
                return kind
            u -= share
        return CLEAN

    def attempts_until_answered(self, prompt: str) -> list[str]:
        """The outcomes of a prompt's attempts up to and including its first clean one."""
        out = [self.outcome(prompt, 0)]
        while out[-1] != CLEAN:
            out.append(self.outcome(prompt, len(out)))
        return out

    def retry_after(self) -> tuple[list[tuple[bytes, bytes]], float | None]:
        """The headers that say how long to wait, and the monotonic time an HTTP date names (None for
        a number of seconds, which count from when the answer goes out)."""
        if self.retry_after_ms:
            return [(b"retry-after-ms", b"%d" % round(1000 * self.retry_after_s)), (b"retry-after", b"0")], None
        if not self.retry_after_date:
            return [(b"retry-after", b"%g" % self.retry_after_s)], None
        now = time.time()
        at = math.ceil(now + self.retry_after_s)
        return [(b"retry-after", formatdate(at, usegmt=True).encode())], time.monotonic() + (at - now)


class FaultyJudgeServer:
    """The ASGI app and its counters; ``with FaultyJudgeServer(faults) as server:`` serves it on
    ``server.base_url`` until the block ends.

    Counters (read them under ``server.lock``, or through :meth:`counts`): ``outcomes`` per kind,
    ``answers`` (answers sent, per prompt; ``answered`` in all), ``attempts`` per prompt,
    ``hung_up`` (slow replies the client gave up on), ``in_flight`` / ``max_in_flight``,
    ``retry_after_margins`` (for every 429 followed by another attempt of its prompt: seconds
    between the end of Retry-After and that attempt; negative means the client came back early;
    ``retry_after_by_prompt`` the same per prompt, for clients that may send one prompt twice),
    ``prompt_tokens`` and ``completion_tokens`` of the answers sent.
    """

    def __init__(self, faults: Faults = Faults()):
        self.faults = faults
        self.lock = threading.Lock()
        self._answered = threading.Condition(self.lock)
        self.outcomes: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        self.answered = 0
        self.attempts: Counter[str] = Counter()
        self.hung_up = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.retry_after_margins: list[float] = []
        self.retry_after_by_prompt: dict[str, list[float]] = {}
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._retry_not_before: dict[str, float] = {}
        self._last_arrival = 0.0
        self.base_url = ""

    # --- what tests read ---------------------------------------------------------------------

    def counts(self) -> dict:
        """A copy of the counters."""
        with self.lock:
            return {
                "outcomes": Counter(self.outcomes),
                "answers": Counter(self.answers),
                "answered": self.answered,
                "attempts": Counter(self.attempts),
                "hung_up": self.hung_up,
                "max_in_flight": self.max_in_flight,
                "retry_after_margins": list(self.retry_after_margins),
                "retry_after_by_prompt": {p: list(m) for p, m in self.retry_after_by_prompt.items()},
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
            }

    def settle(self, quiet_s: float = 0.2, timeout_s: float = 30) -> None:
        """Wait until nothing is in flight and no request has come for ``quiet_s``: after a client is
        killed, what it had already sent is then counted."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if self.in_flight == 0 and time.monotonic() - self._last_arrival >= quiet_s:
                    return
            time.sleep(quiet_s / 4)
        raise TimeoutError(f"the judge server was still busy after {timeout_s} s")

    def wait_answered(self, n: int, timeout_s: float) -> bool:
        """Block until ``n`` answers have been sent in all (True) or ``timeout_s`` passed (False)."""
        with self._answered:
            return self._answered.wait_for(lambda: self.answered >= n, timeout_s)

    # --- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] != "POST" or scope["path"].rstrip("/") != "/v1/chat/completions":
            await _send_json(send, 404, {"error": {"message": f"no route {scope['method']} {scope['path']}"}})
            return
        try:
            payload = json.loads(body)
            prompt = payload["messages"][-1]["content"]
            model = payload["model"]
            if not isinstance(prompt, str):
                raise TypeError("the last message has no text content")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            await _send_json(send, 400, {"error": {"message": f"bad request: {exc}"}})
            return
        now = time.monotonic()
        with self.lock:
            attempt = self.attempts[prompt]
            self.attempts[prompt] += 1
            outcome = self.faults.outcome(prompt, attempt)
            self.outcomes[outcome] += 1
            not_before = self._retry_not_before.pop(prompt, None)
            if not_before is not None:
                self.retry_after_margins.append(now - not_before)
                self.retry_after_by_prompt.setdefault(prompt, []).append(now - not_before)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._last_arrival = now
        try:
            await self._answer(prompt, model, outcome, receive, send)
        finally:
            with self.lock:
                self.in_flight -= 1

    async def _answer(self, prompt: str, model: str, outcome: str, receive, send) -> None:
        if outcome == RATE_LIMITED:
            headers, not_before = self.faults.retry_after()
            with self.lock:
                # seconds count from the moment the answer goes out: the client cannot have it sooner
                # (stamped after the send, the stamp would wait for this thread to get the GIL back
                # from a client in the same process, which may already be waiting out the 429)
                self._retry_not_before[prompt] = not_before or time.monotonic() + self.faults.retry_after_s
            await _send_json(send, 429, {"error": {"message": "slow down"}}, headers)
            return
        if outcome == SERVER_ERROR:
            await _send_json(send, 500, {"error": {"message": "injected failure"}})
            return
        if outcome == SLOW:
            try:
                # the next message after the body is the client hanging up
                await asyncio.wait_for(receive(), self.faults.slow_s)
                with self.lock:
                    self.hung_up += 1
                return
            except TimeoutError:
                pass  # the client waited it out: it gets the answer below, counted as an answer
        elif self.faults.latency_s > 0:
            await asyncio.sleep(self.faults.latency_s)
        text = reply_for(prompt)
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        answer = {
            "id": f"chatcmpl-{prompt_digest(prompt)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        }
        await _send_json(send, 200, answer)
        with self._answered:
            self.answers[prompt] += 1
            self.answered += 1
            self.prompt_tokens += usage["prompt_tokens"]
            self.completion_tokens += usage["completion_tokens"]
            self._answered.notify_all()

    # --- serving ------------------------------------------------------------------------------

    def __enter__(self) -> FaultyJudgeServer:
        import uvicorn

        # IPPROTO_TCP named: asyncio turns Nagle off only on sockets that say TCP, and without that
        # every answer waits ~40 ms for a delayed ACK
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        # a long keep-alive: a connection the server closes while the client reuses it would be a
        # retry no fault accounts for
        config = uvicorn.Config(self, lifespan="off", log_level="warning", access_log=False, timeout_keep_alive=600)
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._uvicorn.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fault-injecting judge server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self._uvicorn.should_exit = True
        self._thread.join(timeout=30)


async def _send_json(send, status: int, obj: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(obj).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data)), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": data})


def expected_outcomes(faults: Faults, prompts) -> Counter[str]:
    """What serving each prompt once, retrying until a clean answer, takes in all, by kind."""
    out: Counter[str] = Counter()
    for prompt in prompts:
        out.update(faults.attempts_until_answered(prompt))
    return out


# --- what the judge must make of this server's answers ---------------------------------------


def make_items(n: int, repeats: bool = True) -> list[tuple[str, str, str]]:
    """``n`` (concept, instruction, response) triples. With ``repeats``, as in a real grid: every 25th
    response is the one before under another concept (so its fluency request is the same one), and
    the last 2% of items are copies of earlier ones."""
    items = []
    for i in range(n):
        concept, instruction = f"concept {i % 40}", f"Instruction {i % 97}: say something."
        response = f"Response {i}, a few words about concept {i % 40}."
        if repeats and i % 25 == 24:
            concept, response = f"concept {(i + 7) % 40}", items[-1][2]
        if repeats and i >= n - n // 50:
            concept, instruction, response = items[(i * 7) % (n - n // 50)]
        items.append((concept, instruction, response))
    return items


def judge_prompt(axis: str, item) -> str:
    """The user prompt the API judge sends for one axis of ``item`` (what this server rates)."""
    return judge_messages(axis, *item, SYSTEM_PROMPT)[-1]["content"]


def expected_rating(item) -> dict:
    """``Rating.as_dict()`` as the judge must make it of this server's answers to ``item``: from the
    server's rating function alone."""
    prompts = {axis: judge_prompt(axis, item) for axis in AXES}
    ratings = {axis: rating_for(p) for axis, p in prompts.items()}
    values = {axis: 0 if r is None else r for axis, r in ratings.items()}
    return {
        **values,
        "score": harmonic_mean(*values.values()),
        "raw": {axis: reply_for(p) for axis, p in prompts.items()},
        "parse_failures": [axis for axis in AXES if ratings[axis] is None],
        "errors": [],
    }
