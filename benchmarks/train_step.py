"""Seconds per training step divided by seconds per plain forward pass, on the same batch.

One step of `prosv.training.train` (p2+s2, lang loss, layer L = N/3, 8 examples of ~40 prompt
and 64 response tokens) against one `model(input_ids, attention_mask)` of the same 8 sequences
with full logits and no gradients. The ratio says how much a training step costs over just
reading the data through the model: target <= 1.5. The two alternate at the finest grain: the
forward pass runs right after every optimizer step of a multi-epoch train() run (one step per
epoch), timed apart, and each step is divided by the mean of the forward passes just before and
after it; the ratio is the median of those pairs. Steps are timed from one optimizer step to the
next, so the one-off prefix computation and setup are left out. With the prefix cache, blocks
0..L run once per example, so a step is forward plus backward through the blocks after L: the
floor is 2(N-L)/N (backward without weight gradients costs about one forward).
"""

from __future__ import annotations

import dataclasses

import torch
from common import LAYER, Check, Result, StepClock, concept_datasets, interleaved, median


def run(model, tokenizer, quick: bool) -> Result:
    from prosv.models import num_layers
    from prosv.training import TrainConfig, encode, train

    epochs, rounds = (3, 1) if quick else (4, 2)
    examples = concept_datasets(1, 8)[0]
    base = dict(
        positions="p2+s2", loss="lang", epochs=epochs, batch_size=8, micro_batch_size=16, max_response_tokens=64
    )
    has_cache = "prefix_cache" in {f.name for f in dataclasses.fields(TrainConfig)}
    configs = (
        {
            "prefix cache on": TrainConfig(**base, prefix_cache=True),
            "prefix cache off": TrainConfig(**base, prefix_cache=False),
        }
        if has_cache
        else {"default config (no prefix_cache option)": TrainConfig(**base)}
    )

    enc = encode(tokenizer, examples, 64)
    seqs = [e.prompt + e.response for e in enc]
    width = max(map(len, seqs))
    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=device)
    attn = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=device)

    def forward():
        with torch.no_grad():
            model(input_ids=ids, attention_mask=attn)

    steps = {name: [] for name in configs}
    forwards = {name: [] for name in configs}
    ratios = {name: [] for name in configs}

    def variant(name):
        def go():
            with StepClock(between=forward) as clock:
                train(model, tokenizer, LAYER, [examples], configs[name], progress=False)
            steps[name] += clock.steps
            forwards[name] += clock.between_times
            ratios[name] += clock.paired_ratios()

        return go

    forward()  # warm-up: first-call allocations
    interleaved({name: variant(name) for name in configs}, rounds)

    n = num_layers(model)
    res = Result("train_step", "training step / plain forward pass", __doc__)
    res.headers = ["train() config", "median step s", "median forward s", "step / forward (median of pairs)", "pairs"]
    for name in configs:
        ratio = median(ratios[name])
        res.rows.append([name, median(steps[name]), median(forwards[name]), ratio, len(ratios[name])])
        res.checks.append(Check(f"step / forward, {name}", ratio, "<= 1.5", ratio <= 1.5))
    floor = 2 * (n - LAYER) / n
    res.checks.append(Check(f"theoretical floor 2(N-L)/N, N={n}, L={LAYER}", floor, "", None))
    res.notes.append(
        f"batch: {len(seqs)} sequences, {sum(map(len, seqs))} tokens (padded width {width}), "
        f"model dtype {next(model.parameters()).dtype}; {epochs} epochs of 1 step per train() call, "
        f"{rounds} round(s) per config"
    )
    if not has_cache:
        res.notes.append("TrainConfig has no prefix_cache field in this checkout: only the default is measured")
    return res
