"""Joint alpha/v training: the scaling rules, the optimizer groups, the losses, multi-concept equality."""

import math

import pytest
import torch

from prosv.training import Example, TrainConfig, encode, response_loss, sequence_logprobs, token_logprobs, train

LAYER = 1


def toy_examples(n: int, word: str) -> list[Example]:
    return [
        Example(
            f"Question number {i}: tell me something.",
            f"{word} {word} is the answer {i}, {word}.",
            rejected=f"The answer is {i}.",
        )
        for i in range(n)
    ]


def test_width_scaled_learning_rates():
    cfg = TrainConfig(eta_alpha=10 / 48, eta_v=0.04 * 48, lr_scaling="width")
    a, v = cfg.learning_rates(2304)  # Gemma-2-2B: sqrt(2304) = 48 reproduces the raw reference rates
    assert a == pytest.approx(10.0) and v == pytest.approx(0.04)
    assert TrainConfig(eta_alpha=3, eta_v=0.5).learning_rates(4096) == (3, 0.5)


@pytest.mark.parametrize(
    "field,value",
    [("loss", "dpo"), ("intervention", "lora"), ("epochs", 0), ("positions", "p0"), ("lr_scaling", "mup")],
)
def test_bad_config_is_rejected(field, value):
    with pytest.raises(ValueError, match=field if field != "positions" else "p0"):
        TrainConfig(**{field: value}).validate()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("softcap", [None, 3.0])
def test_chunked_token_logprobs_match_plain_cross_entropy(dtype, softcap):
    gen = torch.Generator().manual_seed(0)
    tokens, hidden, vocab = 37, 8, 100_000  # chunks of 20 rows at this vocabulary: the last one is partial
    head = torch.nn.Linear(hidden, vocab, bias=True, dtype=dtype)
    with torch.no_grad():
        head.weight.copy_(torch.randn(vocab, hidden, generator=gen))
        head.bias.copy_(torch.randn(vocab, generator=gen))
    targets = torch.randint(0, vocab, (tokens,), generator=gen)
    h0 = torch.randn(tokens, hidden, generator=gen).to(dtype)
    upstream = torch.rand(tokens, generator=gen)  # unequal weights per token, as the loss normalisers give

    def plain(h):
        logits = head(h).float()
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return -torch.nn.functional.cross_entropy(logits, targets, reduction="none")

    results = []
    for fn in (plain, lambda h: token_logprobs(h, head, targets, softcap)):
        head.zero_grad(set_to_none=True)
        h = h0.clone().requires_grad_(True)
        out = fn(h)
        (out * upstream).sum().backward()
        results.append((out.detach(), h.grad.float(), head.weight.grad.float(), head.bias.grad.float()))
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    for name, a, b in zip(("log-probs", "hidden grad", "weight grad", "bias grad"), *results):
        assert torch.allclose(a, b, atol=tol, rtol=tol), (name, (a - b).abs().max())
    assert results[1][0].dtype == torch.float32 and (results[1][0] < 0).all()


def test_init_follows_scaling_rule(tiny_model, tokenizer):
    cfg = TrainConfig(epochs=1, batch_size=4, c_alpha=4, c_v=8, eta_alpha=0.0)
    n = tiny_model.config.hidden_size
    from prosv.interventions import SteeringVectors

    sv = SteeringVectors.initialise(2, n, cfg.c_alpha, cfg.c_v, seed=42)
    assert float(sv.alpha[0]) == pytest.approx(4 * math.sqrt(n))
    assert sv.v[0].abs().max() <= 8 / math.sqrt(n)
    assert torch.equal(sv.v[0], sv.v[1])
    g = SteeringVectors.initialise(1, 10_000, 1.0, 2.0, v_init="gaussian", seed=0)
    assert float(g.v[0].var()) == pytest.approx(2.0 / 10_000, rel=0.1)


def test_lang_loss_matches_huggingface_masked_loss(tiny_model, tokenizer):
    """Our response-only CE (LM head on response positions only) equals HF's loss with prompt labels masked."""
    ex = toy_examples(3, "blue")
    enc = encode(tokenizer, ex, 128)
    sums, counts = sequence_logprobs(
        tiny_model, None, tokenizer.pad_token_id, [(e.prompt, e.response) for e in enc], [-1] * 3, "p2+s2"
    )
    for b, e in enumerate(enc):
        ids = torch.tensor([e.prompt + e.response])
        labels = ids.clone()
        labels[0, : len(e.prompt)] = -100
        with torch.no_grad():
            hf = tiny_model(input_ids=ids, labels=labels).loss
        assert float(-sums[b] / counts[b]) == pytest.approx(float(hf), rel=1e-4)
        assert int(counts[b]) == len(tokenizer(ex[b].response, add_special_tokens=False)["input_ids"])  # no EOS added


def test_first_adam_step_moves_each_group_by_its_own_rate(tiny_model, tokenizer):
    """Adam's first step is lr * sign(grad): alpha moves by eta_alpha, every v entry by eta_v; no clip on alpha."""
    cfg = TrainConfig(epochs=1, batch_size=8, eta_alpha=0.5, eta_v=0.001, c_alpha=2, c_v=1)
    from prosv.interventions import SteeringVectors

    init = SteeringVectors.initialise(1, tiny_model.config.hidden_size, cfg.c_alpha, cfg.c_v, seed=cfg.seed)
    res = train(tiny_model, tokenizer, LAYER, [toy_examples(8, "red")], cfg, progress=False)
    assert len(res.losses) == 1
    assert abs(float(res.module.alpha[0] - init.alpha[0])) == pytest.approx(0.5, rel=1e-3)
    dv = (res.module.v[0] - init.v[0]).abs()
    torch.testing.assert_close(dv, torch.full_like(dv, 0.001), rtol=1e-2, atol=1e-6)


def test_fixed_alpha_stays_fixed_and_training_lowers_loss(tiny_model, tokenizer):
    data = toy_examples(8, "green")
    cfg = TrainConfig(epochs=6, batch_size=4, fixed_alpha=1.0, eta_v=0.05)
    res = train(tiny_model, tokenizer, LAYER, [data], cfg, progress=False)
    assert float(res.module.alpha[0]) == 1.0
    assert set(res.losses.alpha) == {1.0}
    joint = train(
        tiny_model,
        tokenizer,
        LAYER,
        [data],
        TrainConfig(epochs=6, batch_size=4, c_alpha=4, eta_alpha=2, eta_v=0.05),
        progress=False,
    )
    before = response_loss(tiny_model, tokenizer, data)
    after = response_loss(tiny_model, tokenizer, data, LAYER, joint.module, 0, "p2+s2")
    assert after < before - 0.5
    assert joint.losses.loss.iloc[-1] < joint.losses.loss.iloc[0]


def test_lr_decays_linearly_to_zero(tiny_model, tokenizer):
    res = train(
        tiny_model, tokenizer, LAYER, [toy_examples(6, "x")], TrainConfig(epochs=2, batch_size=2), progress=False
    )
    assert res.losses.lr_scale.tolist() == pytest.approx([1 - s / 6 for s in range(6)])


@pytest.mark.parametrize("intervention,loss", [("sv", "lang"), ("sv", "simpo"), ("loreft", "lang")])
def test_multi_concept_training_equals_single_concept_runs(tiny_model, tokenizer, intervention, loss):
    datasets = [toy_examples(6, "cat"), toy_examples(9, "dog"), toy_examples(4, "owl")]
    cfg = TrainConfig(
        intervention=intervention, loss=loss, epochs=2, batch_size=4, micro_batch_size=5, eta_alpha=1.0, eta_v=0.01
    )
    together = train(tiny_model, tokenizer, LAYER, datasets, cfg, progress=False)
    for k, d in enumerate(datasets):
        alone = train(tiny_model, tokenizer, LAYER, [d], cfg, progress=False)
        for name, tensor in alone.module.state_tensors().items():
            torch.testing.assert_close(together.module.state_tensors()[name][k], tensor[0], rtol=1e-4, atol=1e-5)
        mine = together.losses[together.losses.concept_index == k].loss.to_numpy()
        assert mine == pytest.approx(alone.losses.loss.to_numpy(), rel=1e-4)


def test_training_is_deterministic(tiny_model, tokenizer):
    cfg = TrainConfig(epochs=2, batch_size=3, eta_alpha=1.0)
    a = train(tiny_model, tokenizer, LAYER, [toy_examples(7, "sun")], cfg, progress=False)
    b = train(tiny_model, tokenizer, LAYER, [toy_examples(7, "sun")], cfg, progress=False)
    c = train(
        tiny_model,
        tokenizer,
        LAYER,
        [toy_examples(7, "sun")],
        TrainConfig(epochs=2, batch_size=3, eta_alpha=1.0, seed=7),
        progress=False,
    )
    assert all(torch.equal(a.module.state_tensors()[k], b.module.state_tensors()[k]) for k in ("alpha", "v"))
    assert not torch.equal(a.module.state_tensors()["v"], c.module.state_tensors()["v"])


def test_loreft_keeps_R_orthonormal_through_training(tiny_model, tokenizer):
    cfg = TrainConfig(intervention="loreft", loreft_rank=3, epochs=4, batch_size=4, eta_loreft=0.05)
    from prosv.interventions import LoReFT

    start = LoReFT(1, tiny_model.config.hidden_size, 3, seed=cfg.seed).directions()[0]
    res = train(tiny_model, tokenizer, LAYER, [toy_examples(8, "moon")], cfg, progress=False)
    R = res.module.directions()[0]
    torch.testing.assert_close(R @ R.T, torch.eye(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(start @ start.T, torch.eye(3), atol=1e-5, rtol=0)
    assert (R - start).abs().max() > 1e-3, "R must have moved"
    assert res.losses.loss.iloc[-1] < res.losses.loss.iloc[0]


def test_empty_inputs_are_named_errors(tiny_model, tokenizer):
    with pytest.raises(ValueError, match="no training examples"):
        train(
            tiny_model,
            tokenizer,
            LAYER,
            [toy_examples(2, "a"), []],
            TrainConfig(),
            progress=False,
            concept_names=["a", "b"],
        )
    with pytest.raises(ValueError, match="rejected"):
        train(tiny_model, tokenizer, LAYER, [[Example("q", "a")]], TrainConfig(loss="simpo"), progress=False)
    with pytest.raises(ValueError, match="empty response"):
        train(tiny_model, tokenizer, LAYER, [[Example("q", "")]], TrainConfig(), progress=False)
    with pytest.raises(ValueError, match="out of range"):
        train(tiny_model, tokenizer, 40, [toy_examples(2, "a")], TrainConfig(), progress=False)


def _tiny_gemma2(tokenizer):
    """A 4-layer Gemma-2 with a sliding window shorter than the sequences and both softcaps."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(1)
    cfg = Gemma2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        sliding_window=8,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = Gemma2ForCausalLM(cfg).eval()
    model.requires_grad_(False)
    return model


@pytest.mark.parametrize("arch", ["llama", "gemma2"])
@pytest.mark.parametrize("intervention,loss", [("sv", "lang"), ("sv", "simpo"), ("loreft", "lang")])
def test_prefix_cache_gives_the_uncached_trajectory(tiny_model, tokenizer, arch, intervention, loss):
    """Replaying cached block-L outputs and running blocks L+1..N equals the full forward pass, step by step."""
    model = tiny_model if arch == "llama" else _tiny_gemma2(tokenizer)
    datasets = [toy_examples(6, "cat"), toy_examples(5, "dog")]
    kwargs = dict(
        intervention=intervention,
        loss=loss,
        epochs=3,
        batch_size=4,
        micro_batch_size=5,
        eta_alpha=1.0,
        eta_v=0.01,
        positions="all" if intervention == "sv" and loss == "lang" else "p2+s2",
    )
    cached = train(model, tokenizer, LAYER, datasets, TrainConfig(**kwargs), progress=False)
    plain = train(model, tokenizer, LAYER, datasets, TrainConfig(prefix_cache=False, **kwargs), progress=False)
    assert cached.losses.loss.to_numpy() == pytest.approx(plain.losses.loss.to_numpy(), rel=1e-4, abs=1e-5)
    for name, tensor in plain.module.state_tensors().items():
        torch.testing.assert_close(cached.module.state_tensors()[name], tensor, rtol=1e-4, atol=1e-5)
    from prosv.models import decoder_layers

    assert all(type(b).__name__.endswith("DecoderLayer") for b in decoder_layers(model)), "blocks must be restored"


def test_one_prefix_cache_serves_several_trainings(tiny_model, tokenizer):
    """Locations, losses and methods at one layer share the cache: the prefix is computed once per sequence."""
    from prosv.training import PrefixCache

    data = [toy_examples(6, "cat")]
    cache = PrefixCache(LAYER)
    first = train(
        tiny_model,
        tokenizer,
        LAYER,
        data,
        TrainConfig(epochs=2, batch_size=3, positions="p2+s2"),
        progress=False,
        cache=cache,
    )
    computed = cache.computed_tokens
    assert len(cache) == 6 and computed == sum(len(e.prompt) + len(e.response) for e in encode(tokenizer, data[0], 128))
    second = train(
        tiny_model,
        tokenizer,
        LAYER,
        data,
        TrainConfig(epochs=2, batch_size=3, positions="all"),
        progress=False,
        cache=cache,
    )
    assert cache.computed_tokens == computed, "the second training must not recompute the prefix"
    assert not torch.equal(first.module.v[0], second.module.v[0])
    with pytest.raises(ValueError, match="layer 1"):
        train(tiny_model, tokenizer, 2, data, TrainConfig(epochs=1), progress=False, cache=cache)


def test_training_attention_is_switched_for_the_run_and_restored(tiny_model, tokenizer):
    """CPU training runs eager attention (cheaper backward than SDPA) and gives the same trajectory."""
    from prosv.training import training_attention

    before = tiny_model.config._attn_implementation
    with training_attention(tiny_model, "auto"):
        assert tiny_model.config._attn_implementation == "eager"
    assert tiny_model.config._attn_implementation == before
    data = [toy_examples(6, "fern")]
    kwargs = dict(epochs=2, batch_size=3, eta_alpha=1.0, eta_v=0.01)
    eager = train(tiny_model, tokenizer, LAYER, data, TrainConfig(**kwargs), progress=False)
    sdpa = train(tiny_model, tokenizer, LAYER, data, TrainConfig(attention="sdpa", **kwargs), progress=False)
    assert eager.losses.loss.to_numpy() == pytest.approx(sdpa.losses.loss.to_numpy(), rel=1e-4)
    assert tiny_model.config._attn_implementation == before
