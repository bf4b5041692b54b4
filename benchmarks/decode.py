"""Steered decode throughput divided by unsteered decode throughput, PrOSV (p2+s2) and FSSV (all).

`prosv.generation.generate`, greedy, 8 prompts, 64 new tokens, one steering vector at layer N/3
with a small factor. Prompt-only steering (PrOSV) leaves every decoding step alone, so its decode
speed should match unsteered decoding: target >= 0.97. FSSV edits every new token and is reported
for comparison. Prefill is separated from decoding: a forward pre-hook on the model stamps every
call, the first call is the prefill, and each gap between later calls is one decode step (model
call plus the loop's own work). Per round the three variants run back to back; the ratio is the
median over rounds of each round's ratio of median step times.
"""

from __future__ import annotations

import json
import time

from common import LAYER, ROOT, Check, Result, interleaved, median


def run(model, tokenizer, quick: bool) -> Result:
    from prosv.generation import Steering, generate
    from prosv.interventions import SteeringVectors
    from prosv.models import hidden_size

    rounds, new_tokens, batch, factor = (2, 24, 8, 0.05) if quick else (4, 64, 8, 0.05)
    with open(ROOT / "data" / "instructions" / "eval.jsonl") as f:
        prompts = [json.loads(line)["instruction"] for line in f][:batch]
    module = SteeringVectors.initialise(1, hidden_size(model), c_alpha=4.0, c_v=8.0, seed=0)
    module.to(next(model.parameters()).device)
    steering = {
        "unsteered": None,
        "PrOSV (p2+s2)": Steering(module, LAYER, "p2+s2", [0] * batch, factor),
        "FSSV (all)": Steering(module, LAYER, "all", [0] * batch, factor),
    }
    per_round: dict[str, list[float]] = {name: [] for name in steering}  # median step s of each round
    steps: dict[str, list[float]] = {name: [] for name in steering}
    prefill: dict[str, list[float]] = {name: [] for name in steering}
    lengths: dict[str, list[float]] = {name: [] for name in steering}

    def variant(name):
        def go():
            stamps: list[float] = []
            handle = model.register_forward_pre_hook(lambda mod, args: stamps.append(time.perf_counter()))
            try:
                out = generate(
                    model, tokenizer, prompts, steering[name], max_new_tokens=new_tokens + 1, batch_size=batch
                )
            finally:
                handle.remove()
            stamps.append(time.perf_counter())
            gaps = [b - a for a, b in zip(stamps[1:], stamps[2:])]  # decode steps after the prefill
            prefill[name].append(stamps[1] - stamps[0])
            lengths[name].append(sum(len(g.token_ids) for g in out) / len(out))
            per_round[name].append(median(gaps))
            steps[name].extend(gaps)

        return go

    generate(model, tokenizer, prompts[:2], max_new_tokens=4)  # warm-up
    interleaved({name: variant(name) for name in steering}, rounds)

    def ratio(name):  # decode tok/s of `name` / unsteered decode tok/s
        return median([u / s for u, s in zip(per_round["unsteered"], per_round[name])])

    res = Result("decode", "steered / unsteered decode tokens per second", __doc__)
    res.headers = [
        "variant",
        "decode tok/s",
        "x unsteered",
        "median s per step",
        "steps timed",
        "prefill s",
        "mean new tokens",
    ]
    for name in steering:
        step = median(steps[name])
        res.rows.append(
            [name, batch / step, ratio(name), step, len(steps[name]), median(prefill[name]), median(lengths[name])]
        )
    res.checks.append(
        Check("PrOSV decode tok/s / unsteered", ratio("PrOSV (p2+s2)"), ">= 0.97", ratio("PrOSV (p2+s2)") >= 0.97)
    )
    res.checks.append(Check("FSSV decode tok/s / unsteered", ratio("FSSV (all)"), "", None))
    res.notes.append(
        f"{batch} prompts, greedy, up to {new_tokens} decode steps after the prefill, factor {factor}, "
        f"{rounds} rounds; tok/s counts every row of each step"
    )
    return res
