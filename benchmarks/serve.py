"""`prosv serve` throughput: 32 concurrent clients with 8 vectors, batched, against one request at a time.

The server (`prosv.serve.make_app` over the already loaded model, uvicorn on loopback in a thread of
this process) holds 8 vector files at layer N/3: 4 PrOSV (p2+s2), 2 FSSV (all), 2 `prompt`. 32 chat
requests (evaluation instructions, greedy, a fixed number of new tokens, vector i mod 8) are sent
either all at once by 32 client threads, so the engine decodes them in one continuous batch, or one
after another by one client, so every request decodes alone. The two variants alternate over
rounds; the ratio is completion tokens per second batched / one at a time (medians). Each round also
checks the answers: every request must get the same text in both variants (greedy decoding; a
mismatch means a row's numbers depended on its batch, which bf16 can do at near-ties).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory

from common import LAYER, ROOT, Check, Result, interleaved, median

CLIENTS = 32
PLACEMENTS = ["p2+s2"] * 4 + ["all"] * 2 + ["prompt"] * 2


def _vectors(folder: Path, model) -> list[str]:
    from prosv.interventions import SteeringVectors
    from prosv.models import hidden_size, num_layers
    from prosv.vectors import save_vectors

    names = []
    for i, positions in enumerate(PLACEMENTS):
        name = f"v{i}_{positions.replace('+', '')}"
        module = SteeringVectors.initialise(1, hidden_size(model), c_alpha=4.0, c_v=8.0, seed=i)
        save_vectors(folder / f"{name}.safetensors", module, model=model.prosv_ref.source_id, layer=LAYER,
                     positions=positions, loss="lang", hyperparameters={}, hidden_size=hidden_size(model),
                     num_layers=num_layers(model))  # fmt: skip
        names.append(name)
    return names


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read())


class _Loopback:
    """uvicorn serving `app` on a free loopback port in a thread of this process."""

    def __init__(self, app):
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=60)


def run(model, tokenizer, quick: bool) -> Result:
    from prosv.serve import ServeSettings, make_app, served_model_id

    res = Result("serve", "prosv serve: 32 clients, 8 vectors, batched / one at a time", __doc__)
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        res.blocked = "needs the serve extra: .venv/bin/pip install -e '.[serve]'"
        return res
    rounds, new_tokens = (1, 6) if quick else (2, 16)
    with open(ROOT / "data" / "instructions" / "eval.jsonl") as f:
        prompts = [json.loads(line)["instruction"] for line in f][:CLIENTS]
    with TemporaryDirectory() as tmp:
        names = _vectors(Path(tmp), model)
        app = make_app(model, tokenizer, model.prosv_ref.name, tmp, ServeSettings(max_batch=CLIENTS))
        base = served_model_id(model.prosv_ref.name)
        requests = [
            {"model": f"{base}:{names[i % len(names)]}", "messages": [{"role": "user", "content": p}],
             "max_tokens": new_tokens, "temperature": 0}
            for i, p in enumerate(prompts)
        ]  # fmt: skip
        answers: dict[str, list[list[dict]]] = {"batched": [], "one at a time": []}
        latencies: dict[str, list[float]] = {"batched": [], "one at a time": []}
        with _Loopback(app) as server:
            endpoint = server.url + "/v1/chat/completions"

            def timed_post(body):
                t = time.perf_counter()
                out = _post(endpoint, body)
                return out, time.perf_counter() - t

            def batched():
                with ThreadPoolExecutor(CLIENTS) as pool:
                    got = list(pool.map(timed_post, requests))
                answers["batched"].append([g for g, _ in got])
                latencies["batched"] += [s for _, s in got]

            def one_at_a_time():
                got = [timed_post(body) for body in requests]
                answers["one at a time"].append([g for g, _ in got])
                latencies["one at a time"] += [s for _, s in got]

            _post(endpoint, {**requests[0], "max_tokens": 2})  # warm-up
            seconds = interleaved({"batched": batched, "one at a time": one_at_a_time}, rounds)
            with urllib.request.urlopen(server.url + "/health", timeout=30) as resp:
                health = json.loads(resp.read())
    tokens = {k: [sum(a["usage"]["completion_tokens"] for a in run) for run in v] for k, v in answers.items()}
    rate = {k: [n / s for n, s in zip(tokens[k], seconds[k])] for k in seconds}
    same = [
        sum(x["choices"][0]["message"]["content"] == y["choices"][0]["message"]["content"] for x, y in zip(b, o))
        for b, o in zip(answers["batched"], answers["one at a time"])
    ]
    ratio = median(rate["batched"]) / median(rate["one at a time"])
    res.headers = ["variant", "completion tok/s", "wall s per round", "median latency s", "max latency s"]
    for k in seconds:
        res.rows.append([k, median(rate[k]), median(seconds[k]), median(latencies[k]), max(latencies[k])])
    res.checks.append(Check("completion tok/s, batched / one at a time", ratio, "> 1", ratio > 1))
    res.checks.append(
        Check(f"answers equal in both variants (of {CLIENTS}), worst round", min(same), "", None, "{:.0f}")
    )
    res.notes.append(
        f"{CLIENTS} requests, {len(names)} vectors at layer {LAYER} ({', '.join(sorted(set(PLACEMENTS)))}), greedy, "
        f"max_tokens {new_tokens}, {rounds} rounds; the engine's largest decode batch: {health['largest_batch']} rows"
    )
    return res
