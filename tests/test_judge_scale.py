"""The API judge at paper scale, against the fault-injecting loopback server (tests/judge_server.py):
thousands of ratings through 429s, 500s and timeouts with nothing lost or counted twice, bounded
concurrency, Retry-After waited out, and the cache resuming a judging run killed partway."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="the loopback judge server runs on uvicorn (the serve extra)")

from judge_server import (
    RATE_LIMITED,
    SERVER_ERROR,
    SLOW,
    Faults,
    FaultyJudgeServer,
    expected_outcomes,
    expected_rating,
    judge_prompt,
    make_items,
    prompt_digest,
    reply_for,
)

from prosv import judges as J

FAULTY = Faults(rate_limited=0.10, server_error=0.05, slow=0.02, retry_after_s=0.25, latency_s=0.002, seed=1)


def api_judge(base_url: str, **kw) -> J.OpenAIJudge:
    settings = dict(
        max_concurrency=12, requests_per_minute=None, timeout_s=1.5, backoff_s=0.02, max_retries=10, cache=False
    )
    return J.OpenAIJudge("stub-model", base_url, api_key_env=None, **{**settings, **kw})


# --------------------------------------------------------------------------------------------
# thousands of ratings through faults


def test_thousands_of_ratings_through_faults_arrive_once_each_and_are_counted_once():
    items = make_items(1000)
    prompts = {judge_prompt(axis, item) for item in items for axis in J.AXES}
    assert len(prompts) < 3 * len(items)  # the batch does repeat requests
    with FaultyJudgeServer(FAULTY) as server:
        judge = api_judge(server.base_url)
        ratings = judge.rate_many(items)
        seen = server.counts()

    assert [r.as_dict() for r in ratings] == [expected_rating(item) for item in items]
    # every distinct request answered exactly once, and nothing sent beyond what the fault plan makes
    assert seen["answers"] == dict.fromkeys(prompts, 1)
    planned = expected_outcomes(FAULTY, prompts)
    assert seen["outcomes"] == planned
    assert planned[RATE_LIMITED] > 200 and planned[SERVER_ERROR] > 100 and planned[SLOW] > 40
    # the judge's counters are the server's
    stats = judge.stats.as_dict()
    assert stats["calls"] == len(prompts) and stats["cache_hits"] == 0 and stats["errors"] == 0
    assert stats["rate_limited"] == seen["outcomes"][RATE_LIMITED]
    assert stats["server_errors"] == seen["outcomes"][SERVER_ERROR]
    assert stats["timeouts"] == seen["hung_up"] == seen["outcomes"][SLOW]  # every slow reply was given up on
    assert stats["retries"] == sum(seen["outcomes"].values()) - len(prompts)
    assert stats["prompt_tokens"] == seen["prompt_tokens"] and stats["completion_tokens"] == seen["completion_tokens"]
    assert stats["parse_failures"] == sum(len(r.parse_failures) for r in ratings) > 0
    assert stats["responses_rated"] == len(items)
    # concurrency bounded, and used
    assert 4 <= seen["max_in_flight"] <= judge.max_concurrency
    # every 429 was retried, none before its Retry-After ran out
    margins = seen["retry_after_margins"]
    assert len(margins) == seen["outcomes"][RATE_LIMITED] and min(margins) >= 0


def test_identical_requests_in_one_batch_are_sent_once():
    # the fluency rubric sees the response alone: one response under ten concepts is one request
    response = "The tide came in slowly over the flat grey sand."
    items = [(f"concept {i}", f"Instruction {i}.", response) for i in range(10)] + [
        ("concept 3", "Instruction 3.", response)
    ]
    with FaultyJudgeServer() as server:
        judge = api_judge(server.base_url)
        ratings = judge.rate_many(items)
        seen = server.counts()
    prompts = {judge_prompt(axis, item) for item in items for axis in J.AXES}
    assert len(prompts) == 2 * 10 + 1
    assert seen["answers"] == dict.fromkeys(prompts, 1)
    assert judge.stats.calls == len(prompts) and judge.stats.cache_hits == 0
    assert [r.as_dict() for r in ratings] == [expected_rating(item) for item in items]


@pytest.mark.parametrize("header", ["seconds", "http-date", "milliseconds"])
def test_retry_after_is_waited_out_in_full(header):
    # longer than the judge's own longest back-off; given in seconds, as an HTTP date, or as OpenAI's
    # retry-after-ms beside a Retry-After of 0 that must not win
    faults = Faults(
        rate_limited=1.0,
        fail_attempts=1,
        retry_after_s=1.0 if header == "http-date" else 0.4,
        retry_after_date=header == "http-date",
        retry_after_ms=header == "milliseconds",
    )
    item = make_items(1)[0]
    with FaultyJudgeServer(faults) as server:
        judge = api_judge(server.base_url, backoff_s=0.01, max_backoff_s=0.05, max_retries=2)
        rating = judge.rate(*item)
        seen = server.counts()
    assert rating.as_dict() == expected_rating(item)
    assert seen["outcomes"][RATE_LIMITED] == judge.stats.rate_limited == 3
    assert len(seen["retry_after_margins"]) == 3 and min(seen["retry_after_margins"]) >= 0


def test_a_batchs_retries_are_one_log_line_with_their_causes(caplog):
    items = make_items(60, repeats=False)
    faults = Faults(rate_limited=0.2, server_error=0.1, retry_after_s=0.01, seed=3)
    with FaultyJudgeServer(faults) as server, caplog.at_level("DEBUG", logger="prosv.judges.llm"):
        judge = api_judge(server.base_url)
        judge.rate_many(items)
        seen = server.counts()
    lines = [r for r in caplog.records if r.levelname == "WARNING"]
    retries = sum(seen["outcomes"].values()) - len(seen["answers"])
    assert retries > 10 and len(lines) == 1
    assert lines[0].getMessage() == (
        f"judge: {retries} retries for {len(seen['answers'])} requests ({seen['outcomes'][RATE_LIMITED]} rate limited, "
        f"{seen['outcomes'][SERVER_ERROR]} server errors, 0 timeouts)"
    )
    assert sum("retry" in r.getMessage() and r.levelname == "DEBUG" for r in caplog.records) == retries


def test_a_request_that_fails_for_good_ends_the_batch_without_sending_the_rest():
    items = make_items(200, repeats=False)
    with FaultyJudgeServer(Faults(server_error=1.0)) as server:
        judge = api_judge(server.base_url, max_concurrency=4, max_retries=1, backoff_s=0.01)
        with pytest.raises(J.JudgeAPIError, match="after 2 attempts"):
            judge.rate_many(items)
        seen = server.counts()
    # the requests already running finish their attempts (typically 10 to 16 attempts in all); the
    # queued ones, most of the 600, are never sent
    assert sum(seen["attempts"].values()) < 0.1 * 2 * 3 * len(items)


def test_cache_closes_the_connections_of_finished_threads(tmp_path):
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc/self/fd to count open files")
    cache = J.JudgeCache(tmp_path / "c.sqlite")

    def open_cache_files() -> int:
        count = 0
        for fd in os.listdir(fd_dir):
            try:
                count += os.readlink(fd_dir / fd).startswith(str(tmp_path))
            except OSError:  # closed meanwhile
                pass
        return count

    cache.put(J.JudgeCache.key("j", "p"), "j", {"text": "x"})
    before = open_cache_files()
    for _ in range(60):  # one short-lived worker thread per call, as each rate_many makes its own pool
        worker = threading.Thread(target=cache.get, args=(J.JudgeCache.key("j", "p"),))
        worker.start()
        worker.join()
    # the last worker's connection may still be open until the next one is made
    assert open_cache_files() <= 2 * before
    assert cache.get(J.JudgeCache.key("j", "p")) == {"text": "x"}
    cache.close()


# --------------------------------------------------------------------------------------------
# a judging run killed partway resumes from the cache

JUDGING_RUN = """
import json, sys
from pathlib import Path
from prosv.judges import OpenAIJudge
base_url, cache, items_path, out_path = sys.argv[1:5]
items = [tuple(t) for t in json.loads(Path(items_path).read_text())]
judge = OpenAIJudge("stub-model", base_url, api_key_env=None, max_concurrency=8, requests_per_minute=None,
                    timeout_s=1.5, backoff_s=0.02, max_retries=10, cache=cache)
ratings = judge.rate_many(items)
with open(out_path, "w") as f:
    json.dump({"ratings": [r.as_dict() for r in ratings], "stats": judge.stats.as_dict()}, f)
"""


def cached_prompts(path: Path, prompt_by_digest: dict[str, str]) -> set[str]:
    """The prompts whose answers the cache file holds; checks the file is whole and every stored
    answer is the server's answer to its prompt."""
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        texts = [json.loads(value)["text"] for (value,) in con.execute("SELECT value FROM judge_cache")]
    finally:
        con.close()
    prompts = {prompt_by_digest[text.split()[1]] for text in texts}
    assert len(prompts) == len(texts)
    assert all(text == reply_for(prompt_by_digest[text.split()[1]]) for text in texts)
    return prompts


def test_a_killed_judging_run_resumes_from_the_cache(tmp_path):
    items = make_items(300, repeats=False)
    prompts = {judge_prompt(axis, item) for item in items for axis in J.AXES}
    prompt_by_digest = {prompt_digest(p): p for p in prompts}
    assert len(prompt_by_digest) == len(prompts) == 3 * len(items)
    (tmp_path / "items.json").write_text(json.dumps(items))
    cache, out, log_path = tmp_path / "cache.sqlite", tmp_path / "ratings.json", tmp_path / "run.log"

    def judging_run(server):
        cmd = [sys.executable, "-c", JUDGING_RUN, server.base_url, str(cache), str(tmp_path / "items.json"), str(out)]
        with open(log_path, "ab") as log:
            return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)

    stored: set[str] = set()
    with FaultyJudgeServer(FAULTY) as server:
        for kill_at in (150, 400, 700):  # answers sent in all before each kill
            before = server.counts()
            run = judging_run(server)
            assert server.wait_answered(kill_at, timeout_s=60), log_path.read_text()[-2000:]
            run.send_signal(signal.SIGKILL)
            assert run.wait(timeout=30) == -signal.SIGKILL and not out.exists()
            server.settle()  # what the killed run had sent belongs to its counts
            after = server.counts()
            # a resumed run asks only for what the cache lacks
            asked = {p for p in prompts if after["attempts"][p] > before["attempts"][p]}
            assert not asked & stored
            now_stored = cached_prompts(cache, prompt_by_digest)
            # nothing stored before is lost; of the answers sent, at most one per worker thread
            # had not been stored yet when the kill came
            assert stored <= now_stored
            answered = {p for p in prompts if after["answers"][p] > before["answers"][p]}
            assert now_stored - stored <= answered and len(answered - now_stored) <= 8
            stored = now_stored
        before = server.counts()
        run = judging_run(server)
        assert run.wait(timeout=120) == 0, log_path.read_text()[-2000:]
        after = server.counts()
    assert {p for p in prompts if after["attempts"][p] > before["attempts"][p]} == prompts - stored
    assert cached_prompts(cache, prompt_by_digest) == prompts
    result = json.loads(out.read_text())
    assert result["stats"]["cache_hits"] == len(stored) and result["stats"]["calls"] == len(prompts - stored)

    with FaultyJudgeServer() as clean:  # the same items judged in one uninterrupted run
        uninterrupted = api_judge(clean.base_url).rate_many(items)
    assert result["ratings"] == [r.as_dict() for r in uninterrupted] == [expected_rating(item) for item in items]
