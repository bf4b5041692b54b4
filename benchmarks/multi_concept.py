"""Concepts trained per hour: K concepts in one train() call versus one call per concept.

`prosv.training.train` packs the rows of all K concepts into shared forward passes while each
concept keeps its own optimizer and schedule. Against it: the same K concepts trained one at a
time in the same process (model loaded once), and the same plus a fresh process per concept
(what one job per concept pays: interpreter, imports and model load, timed as a subprocess).
Target: grouped >= 3x the one-at-a-time rate. Also checks the promise that a concept trained in a
group follows the same loss curve as the concept trained alone.
"""

from __future__ import annotations

import subprocess
import sys

from common import LAYER, MODEL, ROOT, Check, Result, concept_datasets, interleaved, median, timed

LOAD = f"import prosv, torch; torch.set_num_threads(2); from prosv.models import load_model; load_model({MODEL!r})"


def run(model, tokenizer, quick: bool) -> Result:
    from prosv.training import TrainConfig, train

    K = 8
    per_concept, epochs, rounds, loads = (4, 1, 1, 1) if quick else (8, 2, 2, 2)
    datasets = concept_datasets(K, per_concept)
    cfg = TrainConfig(positions="p2+s2", epochs=epochs, batch_size=4, micro_batch_size=32, max_response_tokens=32)
    losses = {}

    def grouped():
        losses["grouped"] = train(model, tokenizer, LAYER, datasets, cfg, progress=False).losses

    def one_at_a_time():
        losses["alone"] = train(model, tokenizer, LAYER, datasets[:1], cfg, progress=False).losses
        for d in datasets[1:]:
            train(model, tokenizer, LAYER, [d], cfg, progress=False)

    times = interleaved({"grouped: 1 call, K concepts": grouped, "one train() call per concept": one_at_a_time}, rounds)
    load_times = [
        timed(lambda: subprocess.run([sys.executable, "-c", LOAD], cwd=ROOT, check=True, capture_output=True))
        for _ in range(loads)
    ]

    t_group = median(times["grouped: 1 call, K concepts"])
    t_seq = median(times["one train() call per concept"])
    t_load = median(load_times)
    rate = {
        "grouped: 1 call, K concepts": 3600 * K / t_group,
        "one train() call per concept": 3600 * K / t_seq,
        "one process per concept (calls + process start and model load)": 3600 * K / (t_seq + K * t_load),
    }
    res = Result("multi_concept", f"concepts per hour, K={K} in one call vs one at a time", __doc__)
    res.headers = ["variant", "median s for K concepts", "concepts / hour", "grouped speed-up"]
    for name, r in rate.items():
        res.rows.append([name, 3600 * K / r, r, rate["grouped: 1 call, K concepts"] / r])
    res.checks.append(Check("grouped / one call per concept", t_seq / t_group, ">= 3", t_seq / t_group >= 3))
    fresh = (t_seq + K * t_load) / t_group
    res.checks.append(Check("grouped / one process per concept", fresh, ">= 3", fresh >= 3))
    g0 = losses["grouped"]
    g0 = g0[g0.concept_index == 0].loss.to_numpy()
    diff = abs(g0 - losses["alone"].loss.to_numpy()).max()
    res.checks.append(
        Check("max |loss difference|, concept 0 grouped vs alone", diff, "<= 1e-3", diff <= 1e-3, "{:.2e}")
    )
    res.notes.append(
        f"{K} concepts x {per_concept} examples (~40 prompt + 32 response tokens), {epochs} epochs, "
        f"batch_size 4, micro_batch_size 32, {rounds} round(s); fresh process + model load "
        f"{t_load:.1f} s (median of {loads})"
    )
    return res
