"""Steering vectors at several layers (LayeredSteering): application, training, files, layer options."""

import pytest
import torch

from prosv.generation import Steering, generate, left_pad
from prosv.interventions import LayeredSteering, SteeringVectors, attached
from prosv.models import resolve_layers
from prosv.positions import template_ids
from prosv.training import Example, TrainConfig, response_loss, train
from prosv.vectors import VectorModelMismatch, load_vectors, save_vectors

PROMPTS = ["Say hello.", "Describe a quiet morning by a lake in some detail.", "Why?"]


def vectors(k: int, hidden: int, scale: float, seed: int) -> SteeringVectors:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(k, hidden, generator=g)
    return SteeringVectors(torch.full((k,), scale), v / v.norm(dim=1, keepdim=True))


def logits(model, tokenizer, layer, module, spec_mask="all"):
    ids, attn = left_pad([template_ids(tokenizer, p) for p in PROMPTS], tokenizer.pad_token_id, "cpu")
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad(), attached(model, layer, module) as hook:
        hook.rows = torch.tensor([0, 1, -1])
        hook.mask = attn.bool() if spec_mask == "all" else torch.zeros_like(attn, dtype=torch.bool)
        return model(input_ids=ids, attention_mask=attn, position_ids=pos).logits


def examples(n: int, word: str) -> list[Example]:
    return [Example(f"Question {i}: tell me something.", f"{word} {word} is answer {i}, {word}.") for i in range(n)]


def test_layers_at_alpha_zero_leave_one_layers_vector(tiny_model, tokenizer):
    """All layers but one at alpha 0: the same logits and generations as that layer's vector alone."""
    n = tiny_model.config.hidden_size
    single = vectors(2, n, 25.0, seed=1)
    off = [SteeringVectors(torch.zeros(2), vectors(2, n, 1.0, seed=s).state_tensors()["v"]) for s in (2, 3)]
    layered = LayeredSteering((0, 1, 3), [off[0], single, off[1]])
    assert torch.equal(logits(tiny_model, tokenizer, (0, 1, 3), layered), logits(tiny_model, tokenizer, 1, single))
    for spec in ("p2+s2", "all"):
        kw = {"max_new_tokens": 6, "temperature": 1.0, "seed": 5}
        a = generate(tiny_model, tokenizer, PROMPTS, Steering(single, 1, spec, rows=[0, 1, -1]), **kw)
        b = generate(tiny_model, tokenizer, PROMPTS, Steering(layered, (0, 1, 3), spec, rows=[0, 1, -1]), **kw)
        assert [g.token_ids for g in a] == [g.token_ids for g in b]


def test_layered_equals_one_hook_per_layer(tiny_model, tokenizer):
    """Reference: each layer's vector attached by its own hook, nested; same logits, and they differ
    from the unsteered ones (so the edit at every layer is applied)."""
    n = tiny_model.config.hidden_size
    per = [vectors(2, n, 10.0, seed=s) for s in (4, 5)]
    layered = LayeredSteering((0, 2), per)
    ids, attn = left_pad([template_ids(tokenizer, p) for p in PROMPTS], tokenizer.pad_token_id, "cpu")
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad(), attached(tiny_model, 0, per[0]) as h0, attached(tiny_model, 2, per[1]) as h2:
        for h in (h0, h2):
            h.rows, h.mask = torch.tensor([0, 1, -1]), attn.bool()
        reference = tiny_model(input_ids=ids, attention_mask=attn, position_ids=pos).logits
    assert torch.equal(logits(tiny_model, tokenizer, (0, 2), layered), reference)
    unsteered = logits(tiny_model, tokenizer, (0, 2), layered, spec_mask="none")
    assert not torch.allclose(reference[:2], unsteered[:2])
    assert torch.equal(reference[2], unsteered[2])  # row -1 untouched at every layer


def test_attach_checks_the_layers(tiny_model):
    n = tiny_model.config.hidden_size
    layered = LayeredSteering((0, 2), [vectors(1, n, 1.0, 0), vectors(1, n, 1.0, 1)])
    with pytest.raises(ValueError, match="acts at layers 0,2, not at 0-1"), attached(tiny_model, (0, 1), layered):
        pass
    with pytest.raises(ValueError, match="acts at one layer"), attached(tiny_model, (0, 1), vectors(1, n, 1.0, 0)):
        pass
    with pytest.raises(ValueError, match="distinct and increasing"):
        LayeredSteering((2, 0), [vectors(1, n, 1.0, 0), vectors(1, n, 1.0, 1)])


def test_one_layer_list_trains_as_the_single_layer(tiny_model, tokenizer):
    """layers [1] follows layer 1's trajectory (same init, rates, clipping and schedule)."""
    cfg = TrainConfig(epochs=2, batch_size=3, eta_alpha=1.0, eta_v=0.01, clip_v=0.05, prefix_cache=False)
    one = train(tiny_model, tokenizer, 1, [examples(7, "sun")], cfg, progress=False)
    listed = train(tiny_model, tokenizer, [1], [examples(7, "sun")], cfg, progress=False)
    assert isinstance(listed.module, LayeredSteering) and listed.module.layers == (1,)
    for key, tensor in one.module.state_tensors().items():
        assert torch.equal(listed.module.state_tensors()[key][0], tensor)
    assert listed.losses.loss.tolist() == one.losses.loss.tolist()


def test_layers_train_jointly_by_the_single_layer_rules(tiny_model, tokenizer):
    """Adam's first step moves every layer's alpha by eta_alpha and every v entry by eta_v; more
    steps lower the loss, and the same config gives the same tensors."""
    n = tiny_model.config.hidden_size
    first = TrainConfig(epochs=1, batch_size=8, eta_alpha=0.5, eta_v=0.001, c_alpha=2, c_v=1)
    res = train(tiny_model, tokenizer, (0, 2, 3), [examples(8, "red")], first, progress=False)
    init = SteeringVectors.initialise(1, n, 2, 1, seed=first.seed).state_tensors()
    state = res.module.state_tensors()
    assert state["alpha"].shape == (3, 1) and state["v"].shape == (3, 1, n)
    torch.testing.assert_close((state["alpha"] - init["alpha"]).abs(), torch.full((3, 1), 0.5), rtol=1e-3, atol=0)
    dv = (state["v"] - init["v"]).abs()
    torch.testing.assert_close(dv, torch.full_like(dv, 0.001), rtol=1e-2, atol=1e-6)
    cfg = TrainConfig(epochs=6, batch_size=4, c_alpha=0.5, eta_alpha=0.5, eta_v=0.05)
    data = examples(8, "green")
    a = train(tiny_model, tokenizer, (0, 2), [data], cfg, progress=False)
    b = train(tiny_model, tokenizer, (0, 2), [data], cfg, progress=False)
    assert all(torch.equal(a.module.state_tensors()[k], b.module.state_tensors()[k]) for k in ("alpha", "v"))
    assert response_loss(tiny_model, tokenizer, data, (0, 2), a.module, 0, "p2+s2") < (
        response_loss(tiny_model, tokenizer, data) - 0.3
    )


def test_layered_file_round_trip(tiny_model, tokenizer, tmp_path):
    n = tiny_model.config.hidden_size
    layered = LayeredSteering((1, 3), [vectors(2, n, 6.0, 7), vectors(2, n, 3.0, 8)])
    kw = {"model": "tiny", "layer": (1, 3), "positions": "p2+s2", "loss": "lang", "hyperparameters": {"c_alpha": 1}}
    a = save_vectors(tmp_path / "a.safetensors", layered, **kw, num_layers=4, hidden_size=n)
    b = save_vectors(tmp_path / "b.safetensors", layered, **kw, num_layers=4, hidden_size=n)
    assert a.read_bytes() == b.read_bytes()
    vec = load_vectors(a)
    assert vec.layer == (1, 3) and vec.layers == (1, 3) and "layers 1,3" in vec.trained_for()
    assert isinstance(vec.module, LayeredSteering)
    for key, tensor in layered.state_tensors().items():
        assert torch.equal(vec.module.state_tensors()[key], tensor)
    steer = [Steering(m, (1, 3), "all", rows=[0, 1, -1]) for m in (layered, vec.module)]
    outs = [generate(tiny_model, tokenizer, PROMPTS, s, max_new_tokens=4) for s in steer]
    assert [g.token_ids for g in outs[0]] == [g.token_ids for g in outs[1]]
    deep = save_vectors(tmp_path / "deep.safetensors", layered, **{**kw, "layer": (1, 5)})
    with pytest.raises(VectorModelMismatch, match="no layer 5"):
        load_vectors(deep, tiny_model, allow_other_model=True)


@pytest.mark.parametrize(
    "spec, expected",
    [(7, 7), ("7", 7), ("all", tuple(range(10))), ("3,1,3", (1, 3)), ([2, 4], (2, 4)), ((5,), (5,))],
)
def test_layer_options(spec, expected):
    assert resolve_layers(spec, 10) == expected


@pytest.mark.parametrize("spec, needle", [(10, "out of range"), ("1,12", "out of range"), ("top", "a layer index")])
def test_bad_layer_options_name_the_value(spec, needle):
    with pytest.raises(ValueError, match=needle):
        resolve_layers(spec, 10, "--layer")
