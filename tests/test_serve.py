"""`prosv serve` on loopback, driven by the official openai client.

The server is the command line in a subprocess (tests/serving.py) on a tiny random-weight model with
hand-made vector files; every answer is checked against `prosv.generation.generate` (or the
`prosv generate` command) run in this process on the same weights: greedy answers must be equal
token for token, alone or batched with other requests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from conftest import make_tiny_model
from serving import VECTORS, http, make_vector_folder, running_server

openai = pytest.importorskip("openai", reason="the serve tests use the official openai client (the test extra)")
pytest.importorskip("starlette", reason="prosv serve needs the serve extra (starlette, uvicorn)")

from prosv.generation import Steering, generate
from prosv.models import load_model
from prosv.positions import template_ids
from prosv.vectors import load_vectors

TOKENS = 16
LIMIT = 64  # the test server's --max-tokens-limit


@pytest.fixture(scope="module")
def vector_dir(tmp_path_factory, tiny_dir):
    return make_vector_folder(tmp_path_factory.mktemp("vectors"), tiny_dir)


@pytest.fixture(scope="module")
def server(tiny_dir, vector_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "serve.log"
    with running_server(tiny_dir, vector_dir, log, args=("--max-tokens-limit", str(LIMIT))) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def base(client):
    return next(m.id for m in client.models.list().data if m.steering is None)


@pytest.fixture(scope="module")
def reference(tiny_dir, vector_dir):
    """The library's answer for (prompt, vector name, factor, ...), on the same weights in fp32."""
    model, tokenizer = load_model(str(tiny_dir), device="cpu", dtype="float32")

    def answer(prompt, vector=None, factor=1.0, max_tokens=TOKENS, temperature=0.0, seed=0):
        steering = None
        if vector is not None:
            stem, _, concept = vector.partition("@")
            vec = load_vectors(vector_dir / f"{stem}.safetensors")
            k = vec.index_of(concept) if concept else 0
            steering = Steering(vec.module, vec.layer, vec.positions, rows=[k], factor=factor)
        return generate(model, tokenizer, [prompt], steering, max_tokens, temperature, seed)[0]

    answer.tokenizer = tokenizer
    return answer


def ask(client, model, prompt, max_tokens=TOKENS, **kw):
    kw.setdefault("temperature", 0)
    messages = [{"role": "user", "content": prompt}]
    return client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens, **kw)


def test_model_list_has_the_base_model_and_every_servable_vector(server, client, base, vector_dir):
    listed = {m.id: m for m in client.models.list().data}
    names = [n for n, spec in VECTORS.items() if spec[3] == 1] + ["pair@c0", "pair@c1"]
    assert set(listed) == {base} | {f"{base}:{n}" for n in names}
    for name in names:
        stem, _, concept = name.partition("@")
        vec = load_vectors(vector_dir / f"{stem}.safetensors")
        k = vec.index_of(concept) if concept else 0
        shown = listed[f"{base}:{name}"].steering
        layer = tuple(shown["layer"]) if isinstance(shown["layer"], list) else shown["layer"]
        assert (layer, shown["positions"], shown["method"], shown["loss"]) == (
            vec.layer, vec.positions, vec.method, vec.metadata["loss"]
        )  # fmt: skip
        assert shown["alpha"] == pytest.approx(float(vec.module.alpha[k]))
        assert shown["prompt_only"] == (vec.positions != "all")
    status, body = http(server + "/v1/models")
    assert status == 200 and set(body["refused"]) == {"other_model", "too_wide"}


def test_steered_and_unsteered_answers_differ_and_say_what_was_applied(client, base):
    plain = ask(client, base, "Tell me about owls.")
    steered = ask(client, f"{base}:prosv_a", "Tell me about owls.")
    by_field = ask(client, base, "Tell me about owls.", extra_body={"steering": {"vector": "prosv_a", "factor": 1.0}})
    assert plain.choices[0].message.content != steered.choices[0].message.content
    assert by_field.choices[0].message.content == steered.choices[0].message.content
    assert plain.steering == {"vector": None, "factor": None}
    assert (steered.steering["vector"], steered.steering["factor"]) == ("prosv_a", 1.0)
    half = ask(client, base, "Tell me about owls.", extra_body={"steering": {"vector": "prosv_a", "factor": 0.5}})
    assert half.steering["factor"] == 0.5


@pytest.mark.parametrize(
    "vector, factor",
    [
        (None, 1.0),
        ("prosv_a", 1.0),
        ("prompt_c", 0.7),
        ("fssv_d", 1.0),
        ("fssv_e", 0.3),
        ("pair@c1", 1.5),
        ("layered_h", 1.0),
    ],
)
def test_greedy_answer_equals_the_library_alone(client, base, reference, vector, factor):
    prompt = "Write a short poem about the sea, please."
    extra = {"steering": {"vector": vector, "factor": factor}} if vector else {}
    got = ask(client, base, prompt, extra_body=extra)
    want = reference(prompt, vector, factor)
    assert got.choices[0].message.content == want.text
    assert got.usage.completion_tokens == len(want.token_ids)
    assert got.usage.prompt_tokens == len(want.prompt_ids)
    assert got.choices[0].finish_reason == ("length" if len(want.token_ids) == TOKENS else "stop")


def test_greedy_answer_equals_the_prosv_generate_command(client, base, tiny_dir, vector_dir):
    prompt, factor = "Give me a tip for studying.", 1.3
    env = {**os.environ, "PROSV_CPU_DTYPE": "float32"}
    cmd = [sys.executable, "-m", "prosv.cli", "generate", "--model", str(tiny_dir), "--factor", str(factor)]
    cmd += ["--vector", str(vector_dir / "fssv_d.safetensors"), "--max-new-tokens", str(TOKENS), prompt]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    steered_cli, plain_cli = re.search(r"--- steered [^\n]*\n(.*)\n--- unsteered:\n(.*)\n\Z", out.stdout, re.S).groups()
    steered = ask(client, f"{base}:fssv_d", prompt, extra_body={"steering": {"factor": factor}})
    plain = ask(client, base, prompt)
    assert steered.choices[0].message.content.strip() == steered_cli
    assert plain.choices[0].message.content.strip() == plain_cli


def test_32_concurrent_clients_with_9_vectors_are_batched_and_answered_exactly(client, base, reference, server):
    names = [n for n, spec in VECTORS.items() if spec[3] == 1] + ["pair@c1"]  # one at two layers
    assert len(names) == 9
    cases = [
        (f"Question {i}: " + "tell me something " * (i % 5) + f"about the number {i}.", names[i % 9],
         [1.0, 0.5, 1.5, 2.0][i // 8], 6 + i % 11)
        for i in range(32)
    ]  # fmt: skip
    start = threading.Barrier(len(cases))

    def one(case):
        prompt, vector, factor, max_tokens = case
        start.wait(timeout=60)
        extra = {"steering": {"vector": vector, "factor": factor}}
        return ask(client, base, prompt, max_tokens=max_tokens, extra_body=extra)

    with ThreadPoolExecutor(len(cases)) as pool:
        answers = list(pool.map(one, cases))
    for (prompt, vector, factor, max_tokens), got in zip(cases, answers):
        want = reference(prompt, vector, factor, max_tokens)
        assert got.choices[0].message.content == want.text, (prompt, vector, factor)
        assert got.steering["vector"] == vector and got.steering["factor"] == factor
    status, health = http(server + "/health")
    assert status == 200 and health["largest_batch"] >= 8, health  # requests shared decode steps


def test_seeded_sampling_equals_the_library_and_top_p_near_zero_is_greedy(client, base, reference):
    prompt = "Name three colours."
    sampled = ask(client, f"{base}:prosv_b", prompt, temperature=0.9, seed=7)
    assert sampled.choices[0].message.content == reference(prompt, "prosv_b", temperature=0.9, seed=7).text
    again = ask(client, f"{base}:prosv_b", prompt, temperature=0.9, seed=7)
    assert again.choices[0].message.content == sampled.choices[0].message.content
    other = ask(client, f"{base}:prosv_b", prompt, temperature=0.9, seed=8)
    assert other.choices[0].message.content != sampled.choices[0].message.content
    nucleus = ask(client, f"{base}:prosv_b", prompt, temperature=1.0, top_p=1e-6, seed=3)
    assert nucleus.choices[0].message.content == reference(prompt, "prosv_b").text


def test_streamed_chunks_reassemble_to_the_answer(client, base):
    prompt = "Describe a busy street at night."
    whole = ask(client, f"{base}:fssv_e", prompt, max_tokens=24)
    chunks = list(
        ask(client, f"{base}:fssv_e", prompt, max_tokens=24, stream=True, stream_options={"include_usage": True})
    )
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len(pieces) > 3 and "".join(pieces) == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        whole.choices[0].finish_reason
    ]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.steering["vector"] == "fssv_e" for c in chunks)


def test_stop_sequences_cut_the_answer_streamed_or_not(client, base):
    prompt = "Describe a busy street at night."
    full = ask(client, base, prompt, max_tokens=24).choices[0].message.content
    stop = full[8:11]
    want = full[: full.find(stop)]
    cut = ask(client, base, prompt, max_tokens=24, stop=[stop, "never-seen"])
    assert cut.choices[0].message.content == want and cut.choices[0].finish_reason == "stop"
    chunks = ask(client, base, prompt, max_tokens=24, stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == want


NAN_BODY = b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], '
NAN_BODY += b'"steering": {"vector": "prosv_a", "factor": NaN}}'
BAD = [
    ({"model": "{base}:nope"}, 404, "unknown vector 'nope'"),
    ({"steering": {"vector": "nope"}}, 404, "unknown vector 'nope'"),
    ({"model": "{base}:other_model"}, 400, "was trained for model 'someone/else-1b'"),
    ({"model": "{base}:too_wide"}, 400, "has width 128, the served model 64"),
    ({"model": "{base}:pair"}, 400, "holds several concepts"),
    ({"steering": {"vector": "prosv_a", "factor": 1e999}}, 400, "steering.factor"),
    ({"steering": {"vector": "prosv_a", "factor": "big"}}, 400, "steering.factor"),
    ({"max_tokens": LIMIT + 1}, 400, f"above this server's limit of {LIMIT}"),
    ({"max_tokens": 0}, 400, "max_tokens"),
    ({"messages": []}, 400, "messages is empty"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, 400, "messages.0.role"),
    ({"model": "{base}:../prosv_a"}, 400, "refused"),
    ({"steering": {"vector": "sub/prosv_a"}}, 400, "refused"),
    ({"steering": {"vector": "..\\prosv_a"}}, 400, "refused"),
    ({"model": "gpt-4o"}, 404, "unknown model 'gpt-4o'"),
    ({"model": "{base}:prosv_a", "steering": {"vector": "prosv_b"}}, 400, "names vector 'prosv_a'"),
    ({"steering": {"factor": 2.0}}, 400, "steering.factor given without a vector"),
    ({"n": 2}, 400, "n=2"),
    ({"temperature": -1}, 400, "temperature"),
    ({"tools": [{"type": "function"}]}, 400, "tools is not supported"),
]


@pytest.mark.parametrize("change, status, words", BAD, ids=[w for _, _, w in BAD])
def test_bad_request_gets_an_openai_error_that_names_the_problem(server, base, change, status, words):
    body = {"model": base, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    body.update({k: v.replace("{base}", base) if isinstance(v, str) else v for k, v in change.items()})
    got_status, got = http(server + "/v1/chat/completions", json.dumps(body).encode())
    assert got_status == status, got
    assert set(got["error"]) == {"message", "type", "param", "code"} and words in got["error"]["message"], got


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"", "not valid JSON"),
        (NAN_BODY, "factor"),
    ],
)
def test_malformed_bodies_are_refused_and_the_server_keeps_serving(server, client, base, reference, raw, words):
    status, got = http(server + "/v1/chat/completions", raw.replace(b"%s", base.encode()) if b"%s" in raw else raw)
    assert status == 400 and words in got["error"]["message"], got
    assert ask(client, base, "Hello there").choices[0].message.content == reference("Hello there").text


def test_the_openai_client_sees_the_status_and_message(server, client, base):
    with pytest.raises(openai.NotFoundError, match="unknown vector 'nope'"):
        ask(client, f"{base}:nope", "hi")
    with pytest.raises(openai.BadRequestError, match="above this server's limit"):
        ask(client, base, "hi", max_tokens=LIMIT + 1)
    status, got = http(server + "/v1/nothing-here")
    assert status == 404 and "error" in got


def test_an_api_key_is_required_when_its_variable_is_set(tiny_dir, vector_dir, tmp_path):
    with running_server(tiny_dir, vector_dir, tmp_path / "serve.log", env={"PROSV_API_KEY": "s3cret"}) as url:
        assert http(url + "/health")[0] == 200  # the health check needs no key
        status, got = http(url + "/v1/models")
        assert status == 401 and "missing or wrong API key" in got["error"]["message"]
        wrong = openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError, match="PROSV_API_KEY"):
            wrong.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
        good = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
        model = good.models.list().data[0].id
        assert ask(good, model, "hi", max_tokens=2).usage.completion_tokens >= 1


def test_a_missing_vector_folder_is_a_one_line_error(tiny_dir, tmp_path):
    cmd = [sys.executable, "-m", "prosv.cli", "serve", "--model", str(tiny_dir), "--vectors", str(tmp_path / "none")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "not a folder" in out.stderr and "Traceback" not in out.stderr


# --- the engine in this process: joining and leaving between steps ---------------------------


def test_a_request_joins_a_running_batch_and_leaves_when_it_finishes(tokenizer, tmp_path):
    from prosv.serve.engine import Engine, Job
    from prosv.serve.registry import VectorRegistry

    model = make_tiny_model(tokenizer)
    make_vector_folder(tmp_path, "tiny")
    registry = VectorRegistry(tmp_path, model, "tiny")
    engine = Engine(model, tokenizer, registry, max_batch=4)
    results, first_tokens, finished = {}, threading.Event(), threading.Event()

    def sink(key, out):
        def emit(event):
            out.append(event)
            if key == "long" and sum(e.kind == "text" for e in out) >= 3:
                first_tokens.set()
            if event.kind != "text":
                results[key] = out
                if len(results) == 2:
                    finished.set()

        return emit

    long_prompt, short_prompt = "Tell me a long story about a fox.", "Hi"
    engine.start()
    try:
        engine.submit(Job(template_ids(tokenizer, long_prompt), 30, sink("long", []), registry.resolve("fssv_d")))
        assert first_tokens.wait(60)
        engine.submit(
            Job(template_ids(tokenizer, short_prompt), 5, sink("short", []), registry.resolve("prosv_a"), 0.5)
        )
        assert finished.wait(60)
    finally:
        engine.stop()
    steps = list(engine.rows_per_step)
    short_tokens = results["short"][-1].completion_tokens
    assert steps[0] == 1 and steps[-1] == 1  # alone, joined, alone again
    assert steps.count(2) == short_tokens - 1  # its first token comes from its prefill, each other from a shared step
    for key, prompt, name, factor, n in (
        ("long", long_prompt, "fssv_d", 1.0, 30),
        ("short", short_prompt, "prosv_a", 0.5, 5),
    ):
        vec = load_vectors(tmp_path / f"{name}.safetensors")
        want = generate(model, tokenizer, [prompt], Steering(vec.module, vec.layer, vec.positions, [0], factor), n)
        assert "".join(e.text for e in results[key] if e.kind == "text") == want[0].text


def test_prefill_projects_only_the_last_position_onto_the_vocabulary(tokenizer, tmp_path):
    """Decoding reads the last position's logits only; the library's and the server's prefill ask the
    model for nothing more (a [batch, prompt, vocab] tensor is most of a large-vocabulary prefill),
    and the answers stay those of the full computation (the equality tests above)."""
    from prosv.serve.engine import Engine, Job
    from prosv.serve.registry import VectorRegistry

    model = make_tiny_model(tokenizer)
    make_vector_folder(tmp_path, "tiny")
    registry = VectorRegistry(tmp_path, model, "tiny")
    positions = []
    handle = model.get_output_embeddings().register_forward_hook(lambda m, args, out: positions.append(out.shape[1]))
    prompts = ["Tell me a long story about a fox.", "Hi"]
    try:
        generate(model, tokenizer, prompts, max_new_tokens=3)
        assert positions == [1, 1, 1]  # one prefill of both prompts, two decode steps
        positions.clear()
        engine, done = Engine(model, tokenizer, registry, max_batch=4), threading.Event()
        engine.start()
        try:
            engine.submit(Job(template_ids(tokenizer, prompts[0]), 3, lambda e: e.kind != "text" and done.set(), None))
            assert done.wait(60)
        finally:
            engine.stop()
        assert positions == [1, 1, 1]
    finally:
        handle.remove()


def test_rows_that_leave_free_their_cache_columns(tokenizer):
    from prosv.padding import left_pad
    from prosv.serve.kv import KVRows

    model = make_tiny_model(tokenizer)
    prompts = [
        template_ids(tokenizer, "A much longer question than the other one, surely."),
        template_ids(tokenizer, "Hi"),
    ]
    rows, alone = KVRows(), []
    with torch.no_grad():
        for ids in prompts:
            ids_t, attn = left_pad([ids], tokenizer.pad_token_id, "cpu")
            out = model(input_ids=ids_t, attention_mask=attn, use_cache=True)
            alone.append(out.cache.layers[0].keys.clone())
            rows.join(out.cache, attn, torch.tensor([[len(ids)]]))
    assert rows.attn.shape == (2, len(prompts[0])) and rows.attn[1].sum() == len(prompts[1])
    rows.keep([1])
    assert rows.attn.shape == (1, len(prompts[1])) and bool(rows.attn.all())
    assert torch.equal(rows.cache.layers[0].keys, alone[1]) and int(rows.next_pos) == len(prompts[1])


def test_streamed_text_never_splits_a_character_and_adds_up_to_the_decoded_text(tokenizer):
    from prosv.serve.decoding import TextStream

    text = "Ünïcödé: 日本語のテキスト, emoji 🦉🌊 and plain words."
    tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
    for stop in ([], ["テキ"], ["words", "🌊"]):
        stream, pieces = TextStream(tokenizer, stop), []
        for n in range(1, len(tokens) + 1):
            stream.update(tokens[:n])
            pieces.append(stream.delta(final=n == len(tokens) or stream.stopped))
            if stream.stopped:
                break
        cut = min([text.find(s) for s in stop if s in text], default=len(text))
        assert "".join(pieces) == text[:cut] and not any("\ufffd" in p for p in pieces)


def test_a_model_whose_cache_rows_cannot_be_merged_is_refused_before_serving(tokenizer, tmp_path):
    from transformers import Gemma2Config, Gemma2ForCausalLM

    from prosv.serve.engine import Engine
    from prosv.serve.kv import UnsupportedCache
    from prosv.serve.registry import VectorRegistry

    config = Gemma2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=8)  # fmt: skip
    model = Gemma2ForCausalLM(config).eval()
    with pytest.raises(UnsupportedCache, match="sliding-window"):
        Engine(model, tokenizer, VectorRegistry(tmp_path, model, "gemma-tiny"))


def test_a_failed_forward_call_fails_its_requests_and_the_engine_goes_on(tokenizer, tmp_path):
    from prosv.serve.engine import Engine, Job
    from prosv.serve.registry import VectorRegistry

    model = make_tiny_model(tokenizer)
    registry = VectorRegistry(make_vector_folder(tmp_path, "tiny"), model, "tiny")
    engine = Engine(model, tokenizer, registry)
    ended = {"bad": threading.Event(), "good": threading.Event()}
    seen = {"bad": [], "good": []}

    def sink(key):
        def emit(event):
            seen[key].append(event)
            if event.kind != "text":
                ended[key].set()

        return emit

    engine.start()
    try:
        engine.submit(Job([len(tokenizer) + 10], 4, sink("bad")))  # a token id the embedding does not have
        assert ended["bad"].wait(60) and seen["bad"][-1].kind == "error" and "IndexError" in seen["bad"][-1].text
        engine.submit(Job(template_ids(tokenizer, "Hi"), 4, sink("good"), registry.resolve("prosv_a")))
        assert ended["good"].wait(60) and seen["good"][-1].kind == "done"
    finally:
        engine.stop()
    vec = load_vectors(tmp_path / "prosv_a.safetensors")
    want = generate(model, tokenizer, ["Hi"], Steering(vec.module, vec.layer, vec.positions, [0]), 4)[0].text
    assert "".join(e.text for e in seen["good"] if e.kind == "text") == want
