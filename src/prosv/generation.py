"""Batched, left-padded, steered generation with a KV cache.

Our own decoding loop (rather than `model.generate`) so that each forward call's intervention
mask is explicit: prompt-only placements steer the prefill call and nothing after it; FSSV also
steers every decoded token. Each row samples from its own seeded generator, so a row's text does
not depend on which other rows share its batch.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .interventions import Layers, optional_hook
from .padding import left_pad, padding_id
from .positions import PositionSpec, as_spec, left_padded_mask, template_ids


@dataclass
class Steering:
    """What to steer with: a module at a layer and positions, a concept index per prompt, a factor."""

    module: torch.nn.Module
    layer: Layers  # one layer, or the layers of a LayeredSteering
    positions: str | PositionSpec | list  # one placement for every prompt, or one per prompt
    rows: list[int] = field(default_factory=list)  # concept index of each prompt; -1 = unsteered
    factor: float = 1.0


@dataclass
class Generation:
    prompt_ids: list[int]
    token_ids: list[int]
    text: str


def eos_ids(model, tokenizer) -> set[int]:
    ids = {tokenizer.eos_token_id}
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(gen_eos, int):
        ids.add(gen_eos)
    elif gen_eos:
        ids.update(gen_eos)
    return {i for i in ids if i is not None}


# a row samples from the stream seed * SAMPLE_ID_SPAN + sample id: ids below the span never meet the
# streams of a neighbouring seed
SAMPLE_ID_SPAN = 1_000_003


def _row_generators(seed: int, indices: list[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    # on the model's device, so that sampling stays there: a CPU draw over a 256k vocabulary costs
    # 5.9 ms a row on our 2-core reference CPU, several times a 2B model's whole decode step on a GPU
    return [torch.Generator(device=device).manual_seed(seed * SAMPLE_ID_SPAN + i) for i in indices]


def _prefill_masks(hook, rows, specs: list[PositionSpec], attn: torch.Tensor) -> torch.Tensor | None:
    """Set the hook for the prefill call; return the mask for decoding steps.

    Rows whose placement also steers generated tokens (FSSV) keep steering every step; the others
    only in the prefill. None when no row does: then decoding steps skip the edit entirely.
    """
    device = attn.device
    hook.rows = torch.tensor(rows, dtype=torch.long, device=device)
    if len(set(specs)) > 1:
        hook.mask = torch.cat([left_padded_mask(spec, attn[i : i + 1]) for i, spec in enumerate(specs)])
    else:
        hook.mask = left_padded_mask(specs[0], attn)
    if any(spec.generation for spec in specs):
        return torch.tensor([[spec.generation] for spec in specs], dtype=torch.bool, device=device)
    return None


def last_logits(model) -> dict:
    """Keyword asking a prefill call for the last position's logits only, where the model takes it.
    Decoding reads nothing else, and with a large vocabulary the full [batch, prompt, vocab] logits
    (soft-capped, for Gemma-2) cost more than the rest of the prefill: for the full-size rehearsal's
    tiny Gemma-2 (vocabulary 262144) and 64 prompts of 43 tokens, 2.9 GB and 11-12 s on one shared CPU
    core, against 0.8 s for the last position alone (README, "Full-size rehearsal")."""
    return {"logits_to_keep": 1} if _takes_logits_to_keep(type(model)) else {}


@functools.cache
def _takes_logits_to_keep(model_class: type) -> bool:
    # once per model class: generation and the server call this for every prefill
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


def draw_tokens(probs: torch.Tensor, generators) -> torch.Tensor:
    """One token per row of ``probs`` [rows, vocab], each row from its own generator: the first token
    whose cumulative probability passes one uniform draw (inverse CDF). A row's token depends on its
    own probabilities and generator only, so a batch draws what its rows would alone; one batched
    cumsum replaces a multinomial call per row, which took a ninth of CPU decoding time."""
    uniform = torch.cat([torch.rand(1, generator=g, device=probs.device) for g in generators])
    cdf = probs.cumsum(dim=-1)
    token = torch.searchsorted(cdf, (uniform * cdf[:, -1]).unsqueeze(-1), right=True).squeeze(-1)
    return token.clamp(max=probs.shape[-1] - 1)  # a draw rounding past the last cumulative sum


def _next_tokens(logits: torch.Tensor, temperature: float, generators) -> torch.Tensor:
    """Greedy at temperature 0; else each row samples with its own generator (batch-invariant)."""
    if not temperature or temperature <= 0:
        return logits.argmax(dim=-1)
    return draw_tokens(torch.softmax(logits.float() / temperature, dim=-1), generators)


@torch.no_grad()
def _decode_batch(
    model,
    prompt_ids: list[list[int]],
    pad_id: int,
    eos: set[int],
    hook,
    rows,
    specs: list[PositionSpec] | None,
    max_new_tokens: int,
    temperature: float,
    generators,
) -> list[list[int]]:
    device = next(model.parameters()).device
    ids, attn = left_pad(prompt_ids, pad_id, device)
    batch = ids.shape[0]
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
    decode_mask = _prefill_masks(hook, rows, specs, attn) if hook is not None else None
    out = model(input_ids=ids, attention_mask=attn, position_ids=position_ids, use_cache=True, **last_logits(model))
    next_pos = position_ids[:, -1:] + 1
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    produced: list[list[int]] = [[] for _ in range(batch)]
    for step in range(max_new_tokens):
        token = _next_tokens(out.logits[:, -1, :], temperature, generators)
        token = torch.where(finished, torch.full_like(token, pad_id), token)
        for i in range(batch):
            if not finished[i]:
                produced[i].append(int(token[i]))
        finished |= torch.tensor([int(t) in eos for t in token.tolist()], device=device)
        if bool(finished.all()) or step == max_new_tokens - 1:
            break
        attn = torch.cat([attn, torch.ones((batch, 1), dtype=attn.dtype, device=device)], dim=1)
        if hook is not None:
            hook.mask = decode_mask  # FSSV steers each new token; prompt-only placements leave decoding alone
        out = model(
            input_ids=token[:, None], attention_mask=attn, position_ids=next_pos, cache=out.cache, use_cache=True
        )
        next_pos = next_pos + 1
    if hook is not None:
        hook.mask = None
    return produced


def _placements(steering: Steering | None, n: int) -> list[PositionSpec] | None:
    if steering is None:
        return None
    if isinstance(steering.positions, (list, tuple)):
        if len(steering.positions) != n:
            raise ValueError(f"steering.positions has {len(steering.positions)} entries for {n} prompts")
        return [as_spec(p) for p in steering.positions]
    return [as_spec(steering.positions)] * n


def generate(
    model,
    tokenizer,
    prompts: list,
    steering: Steering | None = None,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
    desc: str = "generate",
    sample_ids: list[int] | None = None,
) -> list[Generation]:
    """Generate a response for each prompt (an instruction string or a list of chat messages).

    temperature 0 is greedy decoding; otherwise sampling with a per-row generator seeded from
    (seed, sample id), the sample id being the prompt's index unless `sample_ids` gives one (equal
    ids draw the same random numbers: the same prompt under several conditions). With `steering`,
    prompt i is steered by concept steering.rows[i].
    """
    if not prompts:
        return []
    if steering is not None and len(steering.rows) != len(prompts):
        raise ValueError(f"steering.rows has {len(steering.rows)} entries for {len(prompts)} prompts")
    if sample_ids is not None and len(sample_ids) != len(prompts):
        raise ValueError(f"sample_ids has {len(sample_ids)} entries for {len(prompts)} prompts")
    all_ids = [template_ids(tokenizer, p) for p in prompts]
    pad_id = padding_id(tokenizer)
    eos = eos_ids(model, tokenizer)
    specs = _placements(steering, len(prompts))
    ids = sample_ids if sample_ids is not None else list(range(len(prompts)))
    device = next(model.parameters()).device
    results: list[Generation] = []
    with optional_hook(
        model, getattr(steering, "layer", None), getattr(steering, "module", None), getattr(steering, "factor", 1.0)
    ) as hook:
        for start in tqdm(range(0, len(prompts), batch_size), desc=desc, disable=not progress, unit="batch"):
            idx = list(range(start, min(start + batch_size, len(prompts))))
            new = _decode_batch(
                model,
                [all_ids[i] for i in idx],
                pad_id,
                eos,
                hook,
                [steering.rows[i] for i in idx] if steering is not None else None,
                [specs[i] for i in idx] if specs else None,
                max_new_tokens,
                temperature,
                _row_generators(seed, [ids[i] for i in idx], device),
            )
            results += [
                Generation(all_ids[i], toks, tokenizer.decode(toks, skip_special_tokens=True))
                for i, toks in zip(idx, new)
            ]
    return results
