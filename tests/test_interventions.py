"""Independent checks of the hook, the KV-cache paths and multi-concept batching on a tiny model."""

import pytest
import torch
from conftest import make_tiny_model

from prosv.generation import Steering, generate, left_pad
from prosv.interventions import LoReFT, SteeringVectors, attached
from prosv.positions import parse_positions, template_ids

PROMPTS = ["Say hello.", "Describe a quiet morning by a lake in some detail.", "Why?"]
LAYER = 1


def random_vectors(k: int, hidden: int, scale: float = 30.0, seed: int = 1) -> SteeringVectors:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(k, hidden, generator=g)
    v = v / v.norm(dim=1, keepdim=True)
    return SteeringVectors(torch.full((k,), scale), v)


def no_cache_greedy(model, ids, steps, module, spec, row):
    """Reference decoder: recompute the whole sequence at every step, no KV cache.

    Prompt-only specs steer the same prompt positions each time; `all` also steers generated tokens.
    """
    spec = parse_positions(spec)
    seq = list(ids)
    prompt_idx = spec.prompt_indices(len(ids))
    with attached(model, LAYER, module) as hook:
        hook.rows = torch.tensor([row])
        for _ in range(steps):
            mask = torch.zeros(1, len(seq), dtype=torch.bool)
            mask[0, prompt_idx] = True
            if spec.generation:
                mask[0, len(ids) :] = True
            hook.mask = mask
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([seq])).logits
            seq.append(int(logits[0, -1].argmax()))
    return seq[len(ids) :]


@pytest.mark.parametrize("spec", ["p2+s2", "all", "prompt"])
def test_cached_generation_equals_no_cache_recomputation(tiny_model, tokenizer, spec):
    module = random_vectors(1, tiny_model.config.hidden_size)
    steps = 12
    outs = generate(
        tiny_model, tokenizer, PROMPTS[:2], Steering(module, LAYER, spec, rows=[0, 0]), max_new_tokens=steps
    )
    plain = generate(tiny_model, tokenizer, PROMPTS[:2], max_new_tokens=steps)
    for i, prompt in enumerate(PROMPTS[:2]):
        ids = template_ids(tokenizer, prompt)
        reference = no_cache_greedy(tiny_model, ids, len(outs[i].token_ids), module, spec, 0)
        assert outs[i].token_ids == reference
    assert [o.token_ids for o in outs] != [o.token_ids for o in plain], "steering must change the output"


def test_prompt_only_differs_from_fssv(tiny_model, tokenizer):
    module = random_vectors(1, tiny_model.config.hidden_size)
    prosv = generate(tiny_model, tokenizer, PROMPTS, Steering(module, LAYER, "p2+s2", rows=[0] * 3), max_new_tokens=10)
    fssv = generate(tiny_model, tokenizer, PROMPTS, Steering(module, LAYER, "all", rows=[0] * 3), max_new_tokens=10)
    assert [o.token_ids for o in prosv] != [o.token_ids for o in fssv]


def test_per_row_placements_match_each_placement_alone(tiny_model, tokenizer):
    """One batch mixing placements (and FSSV, which also steers decoding) equals each row generated alone."""
    module = random_vectors(3, tiny_model.config.hidden_size)
    specs, rows = ["p2+s2", "all", "prompt"], [0, 1, 2]
    mixed = generate(tiny_model, tokenizer, PROMPTS, Steering(module, LAYER, specs, rows=rows), max_new_tokens=10)
    for i in range(3):
        alone = generate(
            tiny_model, tokenizer, [PROMPTS[i]], Steering(module, LAYER, specs[i], rows=[rows[i]]), max_new_tokens=10
        )
        assert mixed[i].token_ids == alone[0].token_ids, specs[i]
    with pytest.raises(ValueError, match="positions"):
        generate(tiny_model, tokenizer, PROMPTS, Steering(module, LAYER, specs[:2], rows=rows), max_new_tokens=2)


def test_alpha_zero_leaves_logits_bit_identical(tiny_model, tokenizer):
    ids, attn = left_pad([template_ids(tokenizer, p) for p in PROMPTS], tokenizer.pad_token_id, "cpu")
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        base = tiny_model(input_ids=ids, attention_mask=attn, position_ids=pos).logits
        module = SteeringVectors(torch.zeros(1), torch.randn(1, tiny_model.config.hidden_size))
        with attached(tiny_model, LAYER, module) as hook:
            hook.rows = torch.zeros(3, dtype=torch.long)
            hook.mask = torch.ones_like(attn, dtype=torch.bool)
            steered = tiny_model(input_ids=ids, attention_mask=attn, position_ids=pos).logits
    assert torch.equal(base, steered)


def test_hook_is_removed_after_context(tiny_model, tokenizer):
    ids = torch.tensor([template_ids(tokenizer, "Hi")])
    with torch.no_grad():
        before = tiny_model(input_ids=ids).logits
        with attached(tiny_model, LAYER, random_vectors(1, tiny_model.config.hidden_size)) as hook:
            hook.rows, hook.mask = torch.tensor([0]), torch.ones_like(ids, dtype=torch.bool)
            during = tiny_model(input_ids=ids).logits
        after = tiny_model(input_ids=ids).logits
    assert not torch.allclose(before, during)
    assert torch.equal(before, after)


@pytest.mark.parametrize("method", ["sv", "loreft"])
def test_rows_of_different_concepts_match_each_row_alone(tiny_model, tokenizer, method):
    hidden = tiny_model.config.hidden_size
    if method == "sv":
        module = random_vectors(3, hidden)
    else:
        module = LoReFT(3, hidden, rank=2, seed=0)
        with torch.no_grad():
            for k in range(3):
                module.W[k].bias.fill_(5.0 * (k + 1))  # a visible edit
    rows = [2, 0, 1, -1]
    prompts = PROMPTS + ["Tell me a joke."]
    together = generate(tiny_model, tokenizer, prompts, Steering(module, LAYER, "p2+s2", rows=rows), max_new_tokens=8)
    for i, p in enumerate(prompts):
        alone = generate(tiny_model, tokenizer, [p], Steering(module, LAYER, "p2+s2", rows=[rows[i]]), max_new_tokens=8)
        assert together[i].token_ids == alone[0].token_ids
    assert len({tuple(t.token_ids) for t in together[:3]}) > 1


def test_left_padded_prefill_matches_unpadded_logits(tiny_model, tokenizer):
    module = random_vectors(2, tiny_model.config.hidden_size)
    seqs = [template_ids(tokenizer, p) for p in PROMPTS]
    from prosv.positions import left_padded_mask

    ids, attn = left_pad(seqs, tokenizer.pad_token_id, "cpu")
    with torch.no_grad(), attached(tiny_model, LAYER, module) as hook:
        hook.rows = torch.tensor([0, 1, 0])
        hook.mask = left_padded_mask("p2+s2", attn)
        batched = tiny_model(
            input_ids=ids, attention_mask=attn, position_ids=(attn.cumsum(-1) - 1).clamp(min=0)
        ).logits[:, -1]
        for b, s in enumerate(seqs):
            hook.rows = torch.tensor([[0, 1, 0][b]])
            mask = torch.zeros(1, len(s), dtype=torch.bool)
            mask[0, parse_positions("p2+s2").prompt_indices(len(s))] = True
            hook.mask = mask
            alone = tiny_model(input_ids=torch.tensor([s])).logits[0, -1]
            torch.testing.assert_close(batched[b], alone, atol=1e-4, rtol=1e-4)


def test_sampling_is_seeded_and_batch_invariant(tiny_model, tokenizer):
    a = generate(tiny_model, tokenizer, PROMPTS, max_new_tokens=8, temperature=1.0, seed=3)
    b = generate(tiny_model, tokenizer, PROMPTS, max_new_tokens=8, temperature=1.0, seed=3, batch_size=1)
    c = generate(tiny_model, tokenizer, PROMPTS, max_new_tokens=8, temperature=1.0, seed=4)
    assert [x.token_ids for x in a] == [x.token_ids for x in b]
    assert [x.token_ids for x in a] != [x.token_ids for x in c]


def test_drawn_tokens_follow_the_probabilities_row_by_row():
    """Inverse-CDF draws: each row's token frequencies match its probabilities (a chi-square bound
    over 20,000 draws), a zero-probability token is never drawn, and a row drawn in a batch gets what
    it gets alone from the same generator."""
    from prosv.generation import _row_generators, draw_tokens

    probs = torch.tensor([[0.5, 0.0, 0.2, 0.3], [0.05, 0.05, 0.0, 0.9]])
    gens = _row_generators(7, [0, 1])
    counts = torch.zeros_like(probs)
    n = 20_000
    for _ in range(n):
        tokens = draw_tokens(probs, gens)
        counts[torch.arange(2), tokens] += 1
    assert counts[0, 1] == 0 and counts[1, 2] == 0
    for row in range(2):
        support = probs[row] > 0
        expected = n * probs[row][support]
        chi2 = float(((counts[row][support] - expected) ** 2 / expected).sum())
        assert chi2 < 16.3, (row, counts[row], chi2)  # 99.9th percentile of chi-square, 2 degrees of freedom
    batched = draw_tokens(probs, _row_generators(3, [0, 1]))
    alone = [int(draw_tokens(probs[i : i + 1], _row_generators(3, [i]))[0]) for i in range(2)]
    assert batched.tolist() == alone


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sampling_on_cuda_stays_on_the_device_seeded_and_batch_invariant(tokenizer):
    """On a GPU each row draws from its own generator on the device (a host draw over a large
    vocabulary costs far more than the decode step): seeded, batch-invariant, tokens on the device."""
    from prosv.generation import _next_tokens, _row_generators

    model = make_tiny_model(tokenizer).to("cuda")
    a = generate(model, tokenizer, PROMPTS, max_new_tokens=8, temperature=1.0, seed=3)
    b = generate(model, tokenizer, PROMPTS, max_new_tokens=8, temperature=1.0, seed=3, batch_size=1)
    c = generate(model, tokenizer, PROMPTS, max_new_tokens=8, temperature=1.0, seed=4)
    assert [x.token_ids for x in a] == [x.token_ids for x in b]
    assert [x.token_ids for x in a] != [x.token_ids for x in c]
    logits = torch.randn(3, 1000, device="cuda")
    assert _next_tokens(logits, 1.0, _row_generators(0, [0, 1, 2], "cuda")).device.type == "cuda"


def test_factor_scales_the_edit(tiny_model, tokenizer):
    module = random_vectors(1, tiny_model.config.hidden_size, scale=10.0)
    ids = torch.tensor([template_ids(tokenizer, "Hi there")])
    doubled = SteeringVectors(torch.tensor([20.0]), torch.stack(list(module.v)))
    outs = []
    with torch.no_grad():
        for mod, factor in [(module, 2.0), (doubled, 1.0)]:
            with attached(tiny_model, LAYER, mod) as hook:
                hook.rows, hook.mask, hook.factor = torch.tensor([0]), torch.ones_like(ids, dtype=torch.bool), factor
                outs.append(tiny_model(input_ids=ids).logits)
    torch.testing.assert_close(outs[0], outs[1])


def test_layer_out_of_range_is_a_clear_error(tiny_model):
    module = random_vectors(1, tiny_model.config.hidden_size)
    with pytest.raises(ValueError, match="layer 9 is out of range"), attached(tiny_model, 9, module):
        pass
