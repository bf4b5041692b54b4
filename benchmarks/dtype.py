"""What running in fp32 instead of bf16 costs: seconds per forward pass in fp32 / in bf16.

prosv runs the model in bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16 or AMX) and in
fp32 elsewhere (`prosv.models.default_dtype`), so a CPU without those features pays this ratio on
every job, and its numbers differ from a bf16 run's. Two copies of the embedded model, one per
dtype, each run `model(ids, mask)` on the same batch (8 chat-templated exemplars with their
responses, full logits, no gradients), interleaved; the ratio is the median over rounds of each
round's fp32 / bf16 time. On a CPU without native bf16 the bf16 side runs emulated and says
nothing about a bf16 machine; the report says which case it measured. No target: it is the figure
the fp32 fallback's warning quotes.
"""

from __future__ import annotations

import copy

import torch
from common import Check, Result, exemplars, interleaved, median


def run(model, tokenizer, quick: bool) -> Result:
    from prosv.padding import left_pad
    from prosv.positions import template_ids
    from prosv.provenance import cpu_has_native_bf16

    rounds, batch = (3, 4) if quick else (8, 8)
    rows = exemplars()[:batch]
    seqs = [template_ids(tokenizer, r["instruction"]) + tokenizer(r["response"])["input_ids"][:64] for r in rows]
    device = next(model.parameters()).device
    ids, attn = left_pad(seqs, tokenizer.pad_token_id, device)
    copies = {dt: copy.deepcopy(model).to(dt) for dt in (torch.bfloat16, torch.float32)}

    def forward(m):
        def go():
            with torch.no_grad():
                m(input_ids=ids, attention_mask=attn)

        return go

    for m in copies.values():
        forward(m)()  # warm-up
    times = interleaved({str(dt): forward(m) for dt, m in copies.items()}, rounds)
    bf16, fp32 = times[str(torch.bfloat16)], times[str(torch.float32)]
    ratio = median([f / b for f, b in zip(fp32, bf16)])
    native = device.type == "cuda" or cpu_has_native_bf16()
    res = Result("dtype", "seconds per forward pass, fp32 / bf16", __doc__)
    res.headers = ["dtype", "median s per forward", "rounds"]
    res.rows = [["bfloat16", median(bf16), len(bf16)], ["float32", median(fp32), len(fp32)]]
    res.checks.append(Check("fp32 / bf16 forward seconds", ratio, "", None))
    res.notes.append(
        f"{batch} sequences of {ids.shape[1]} tokens (left-padded), full logits; "
        + ("bf16 is native here (CUDA or AVX512-BF16/AMX)" if native else "bf16 is emulated here: not a bf16 machine")
    )
    del copies
    return res
