"""The API judge's throughput: requests per second it holds against a loopback OpenAI-compatible server,
clean and with faults, at two concurrencies.

The paper protocol sends tens of thousands of judge requests (10 responses x 3 axes per concept and
method, plus the factor grid), so what the client itself sustains matters. The server is
tests/judge_server.py (plain ASGI under uvicorn, in a thread of this process): it answers at once
(0 ms, where the figure is the client's own ceiling, shared with the server on the same cores) or
after 25 ms (a stand-in for a remote API, where the ceiling is concurrency / 25 ms). With faults, 10%
of attempts get a 429 with Retry-After 0.25 s, 5% a 500, 2% a reply slower than the client's 1 s
timeout. Every run judges the same items, all distinct, with a fresh sqlite cache (the workflow's
configuration, so cache writes are part of the cost); one row runs without the cache. The variants
alternate over rounds (order reversed every other round); figures are medians. Each run's ratings
are checked against the server's own rating function.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from common import ROOT, Check, Result, interleaved, median

sys.path.insert(0, str(ROOT / "tests"))  # the loopback judge server lives beside the tests that use it

CONCURRENCIES = (4, 16)
LATENCIES_S = (0.0, 0.025)
FAULTS = dict(rate_limited=0.10, server_error=0.05, slow=0.02, retry_after_s=0.25)
TIMEOUT_S = 1.0


def run(model=None, tokenizer=None, quick: bool = False) -> Result:
    """`model` and `tokenizer` are unused: the signature is the one benchmarks/run.py calls."""
    from judge_server import Faults, FaultyJudgeServer, expected_rating, make_items

    from prosv.judges import OpenAIJudge

    logging.getLogger("prosv.judges.llm").setLevel(logging.ERROR)  # a warning per retry would bury the table
    res = Result("judge_throughput", "API judge requests/s against a loopback server", __doc__)
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        res.blocked = "needs the serve extra (uvicorn): .venv/bin/pip install -e '.[serve]'"
        return res
    rounds, n_items = (1, 100) if quick else (2, 400)
    items = make_items(n_items, repeats=False)
    expected = [expected_rating(item) for item in items]
    # (server latency, concurrency, faults, cache); the last one shows what the cache costs
    configs = [(lat, c, faulty, True) for lat in LATENCIES_S for c in CONCURRENCIES for faulty in (False, True)]
    configs.append((0.0, max(CONCURRENCIES), False, False))
    measured: dict[tuple, list[dict]] = {c: [] for c in configs}
    correct = []

    with TemporaryDirectory() as tmp:

        def variant(config):
            latency, concurrency, faulty, cached = config

            def judge_once():
                faults = Faults(latency_s=latency, **(FAULTS if faulty else {}))  # one fault plan every round
                cache = Path(tmp) / f"cache-{time.monotonic_ns()}.sqlite" if cached else False
                with FaultyJudgeServer(faults) as server:
                    judge = OpenAIJudge("stub-model", server.base_url, api_key_env=None,
                                        max_concurrency=concurrency, requests_per_minute=None, timeout_s=TIMEOUT_S,
                                        backoff_s=0.05, max_retries=10, cache=cache)  # fmt: skip
                    t = time.perf_counter()
                    ratings = judge.rate_many(items)
                    seconds = time.perf_counter() - t
                    judge.close()
                    seen = server.counts()
                correct.append([r.as_dict() for r in ratings] == expected)
                stats = judge.stats.as_dict()
                attempts = sum(seen["outcomes"].values())
                # seconds the server and the faults impose: every attempt's latency, Retry-Afters, timeouts
                imposed = attempts * latency + stats["rate_limited"] * faults.retry_after_s
                imposed += stats["timeouts"] * TIMEOUT_S
                measured[config].append(
                    dict(seconds=seconds, attempts=attempts, answered=stats["calls"], retries=stats["retries"],
                         in_flight=seen["max_in_flight"], floor=imposed / concurrency)
                )  # fmt: skip
                return [seconds]

            return judge_once

        interleaved({config: variant(config) for config in configs}, rounds)

    res.headers = ["server latency ms", "concurrency", "faults", "cache", "HTTP requests/s", "ratings/s",
                   "ceiling ratings/s", "retries per run", "most in flight", "wall s", "floor s"]  # fmt: skip
    for config, runs in measured.items():
        latency, concurrency, faulty, cached = config
        res.rows.append(
            [
                f"{latency * 1000:.0f}",
                concurrency,
                "429/500/slow" if faulty else "none",
                "sqlite" if cached else "off",
                median([r["attempts"] / r["seconds"] for r in runs]),
                median([r["answered"] / r["seconds"] for r in runs]),
                f"{concurrency / latency:.0f}" if latency else "-",
                median([r["retries"] for r in runs]),
                max(r["in_flight"] for r in runs),
                median([r["seconds"] for r in runs]),
                median([r["floor"] for r in runs]) if latency or faulty else "-",
            ]
        )
    res.checks.append(Check("runs whose ratings all equal the server's", sum(correct), "", all(correct), "{:.0f}"))
    clean = {c: median([r["answered"] / r["seconds"] for r in runs]) for c, runs in measured.items()}
    for latency in LATENCIES_S:
        hi, lo = max(CONCURRENCIES), min(CONCURRENCIES)
        ratio = clean[(latency, hi, False, True)] / clean[(latency, lo, False, True)]
        res.checks.append(
            Check(f"clean ratings/s at {latency * 1000:.0f} ms, concurrency {hi} / {lo}", ratio, "", None, "{:.2f}")
        )
    res.notes.append(
        f"{len(items)} items = {3 * len(items)} distinct requests per run, {rounds} round(s); client timeout 1 s, "
        "back-off 0.05 s doubling; faults: 10% 429 (Retry-After 0.25 s), 5% 500, 2% slower than the timeout. "
        "HTTP requests/s counts every attempt the server saw, ratings/s the distinct requests answered."
    )
    res.notes.append(
        "floor: what the server and the faults impose, spread over the concurrency (every attempt's latency, "
        "every Retry-After, every timeout); no client takes less, and wall s minus floor s is the client's own "
        "cost. At 0 ms the server answers within one step of its event loop, so requests never overlap there "
        "(most in flight 1) however many the client keeps open."
    )
    return res


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer items, one round: a smoke test")
    started = time.perf_counter()
    result = run(quick=parser.parse_args().quick)
    result.seconds = time.perf_counter() - started
    print(result.text())
