"""The compute model of `prosv plan` against measured times, and its projection for the paper configs.

`prosv plan` projects GPU-hours from FLOPs and bytes (`prosv.plan`: `training_work`, `generation_work`,
`ModelDims`), with an assumed share of the accelerator's peak. Here the same functions predict the
embedded model's times on this machine from two throughputs measured in the same run, a large bf16
matmul (FLOP/s) and a large tensor copy (bytes/s), at a share of 1; the ratio measured / predicted per
kind of work says how far the model is off where it can be checked: (a) one training epoch of
`train()` (p2+s2, lang loss, layer N/3, 16 examples, from a filled prefix cache: forward and
backward through the blocks after L), timed as the difference between a 3-epoch and a 1-epoch run
from the same cache, divided by 2; (b) a prefill of 8 prompts (`logits_to_keep=1`, as generate asks);
(c) one decode step of `generate` at batch 8 (greedy; the model call plus the loop's own work,
stamped as in the `decode` benchmark). A ratio above 1 is time the FLOP and byte counts do not see
(kernel efficiency below the matmul's, elementwise work, Python). Then it prints the H100
projection for config/paper/gemma-2-2b-it_L10.yaml and gemma-2-9b-it_L20.yaml. No target.
"""

from __future__ import annotations

import json
import time

import torch
from common import LAYER, ROOT, Check, Result, concept_datasets, interleaved, median, sync

PAPER_CONFIGS = ["gemma-2-2b-it_L10.yaml", "gemma-2-9b-it_L20.yaml"]


def matmul_flops(rounds: int, size: int = 2048) -> float:
    """Achieved FLOP/s of a square bf16 matmul (the model's dtype on this CPU), median over rounds."""
    a, b = torch.randn(size, size, dtype=torch.bfloat16), torch.randn(size, size, dtype=torch.bfloat16)
    a @ b  # warm-up
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * size**3 / median(times)


def copy_bandwidth(rounds: int, megabytes: int = 512) -> float:
    """Achieved bytes/s of a tensor copy (read and write), median over rounds."""
    x = torch.empty(megabytes << 20, dtype=torch.uint8).fill_(1)
    y = torch.empty_like(x)
    y.copy_(x)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        y.copy_(x)
        times.append(time.perf_counter() - t)
    return 2 * x.numel() / median(times)


def run(model, tokenizer, quick: bool) -> Result:
    from prosv.generation import generate, last_logits
    from prosv.padding import left_pad
    from prosv.plan import (
        DEFAULT_ACCELERATOR,
        Accelerator,
        compute_section,
        dims_from_config,
        generation_work,
        load_config,
        training_work,
    )
    from prosv.positions import template_ids
    from prosv.training import PrefixCache, TrainConfig, encode, train

    rounds, batch, new_tokens = (2, 8, 16) if quick else (4, 8, 32)
    dims = dims_from_config(model.config)
    device = next(model.parameters()).device
    if device.type != "cpu":
        raise RuntimeError("the calibration times the CPU (its matmul and copy throughput)")

    # (a) training: epochs from a filled cache
    examples = concept_datasets(1, 16)[0]
    cfg = dict(positions="p2+s2", loss="lang", batch_size=8, micro_batch_size=16, max_response_tokens=64)
    cache = PrefixCache(LAYER)
    train(model, tokenizer, LAYER, [examples], TrainConfig(**cfg, epochs=1), progress=False, cache=cache)

    def epochs(n):
        def go():
            train(model, tokenizer, LAYER, [examples], TrainConfig(**cfg, epochs=n), progress=False, cache=cache)

        return go

    times = interleaved({1: epochs(1), 3: epochs(3)}, rounds)
    epoch_s = (median(times[3]) - median(times[1])) / 2
    encoded = encode(tokenizer, examples, cfg["max_response_tokens"])
    per_example = [training_work(dims, LAYER, 1, 1, len(e.response), len(e.prompt), new_sequences=0) for e in encoded]
    epoch = sum(per_example[1:], per_example[0])
    train_tokens = sum(len(e.prompt) + len(e.response) for e in encoded)

    # (b) prefill and (c) decode of 8 prompts
    with open(ROOT / "data" / "instructions" / "eval.jsonl") as f:
        prompts = [json.loads(line)["instruction"] for line in f][:batch]
    ids, attn = left_pad([template_ids(tokenizer, p) for p in prompts], tokenizer.pad_token_id, device)
    width = ids.shape[1]

    def prefill():
        with torch.no_grad():
            model(input_ids=ids, attention_mask=attn, use_cache=True, **last_logits(model))

    steps: list[float] = []

    def decode():
        stamps: list[float] = []
        handle = model.register_forward_pre_hook(lambda mod, args: stamps.append(time.perf_counter()))
        try:
            generate(model, tokenizer, prompts, max_new_tokens=new_tokens + 1, batch_size=batch)
        finally:
            handle.remove()
        stamps.append(time.perf_counter())
        steps.extend(b - a for a, b in zip(stamps[1:], stamps[2:]))

    prefill()
    times.update(interleaved({"prefill": prefill, "decode": decode}, rounds))
    sync()
    flops, bandwidth = matmul_flops(4 * rounds), copy_bandwidth(rounds)
    cpu = Accelerator("this CPU (measured)", flops, bandwidth)
    gen = generation_work(dims, [batch], new_tokens + 1, prompt_tokens=width)
    predicted = {
        "training epoch": epoch.compute_flops / cpu.peak_flops,
        "prefill": gen.compute_flops / cpu.peak_flops,
        "decode step": max(gen.decode_flops / cpu.peak_flops, gen.decode_bytes / cpu.bandwidth) / gen.decode_steps,
    }
    measured = {"training epoch": epoch_s, "prefill": median(times["prefill"]), "decode step": median(steps)}
    tokens = {"training epoch": train_tokens, "prefill": batch * width, "decode step": batch}

    res = Result("gpu_projection", "the plan's compute model: measured / predicted seconds on this CPU", __doc__)
    res.headers = ["kind", "tokens", "predicted s", "measured s", "measured / predicted", "measured ms per token"]
    for kind in predicted:
        ratio = measured[kind] / predicted[kind]
        res.rows.append(
            [kind, tokens[kind], predicted[kind], measured[kind], ratio, 1e3 * measured[kind] / tokens[kind]]
        )
        res.checks.append(Check(f"{kind}: measured / predicted", ratio, "", None, "{:.2f}"))
    res.notes.append(
        f"measured on this CPU: bf16 matmul {flops / 1e9:.0f} GFLOP/s (2048 x 2048), copy {bandwidth / 1e9:.1f} "
        f"GB/s; the embedded model's shape from its config.json ({dims.total_params:,} parameters); prompts of "
        f"{width} tokens (padded), {new_tokens} decode steps timed per round"
    )
    for name in PAPER_CONFIGS:
        path = ROOT / "config" / "paper" / name
        if not path.is_file():
            continue
        section = compute_section(load_config(path), DEFAULT_ACCELERATOR)
        if "unknown" in section:
            res.notes.append(f"{name}: not projected ({section['unknown']})")
            continue
        stages = "; ".join(f"{s['name']} {s['gpu_hours']:.3f}" for s in section["stages"])
        res.notes.append(
            f"{name} on one {section['accelerator']['name']} (MFU {section['mfu']:g}, bandwidth "
            f"{section['bandwidth_efficiency']:g}): {section['gpu_hours']:.2f} GPU-hours in all, at most "
            f"{section['max_hours_per_job']:.3f} h in one job ({stages})"
        )
    return res
