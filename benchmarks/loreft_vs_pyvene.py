"""prosv's LoReFT versus pyreft's LoreftIntervention run through pyvene, same init and same steps.

Both train a rank-1 LoReFT at block L = N/3 on the p2+s2 prompt positions of the same 8 examples,
one step per epoch, Adam (betas 0.9/0.999, eps 1e-8) at prosv's learning rate with prosv's linear
decay, and the same loss: mean cross-entropy over response tokens (prompt and padding masked; pyvene
gets it from the model's `labels`). pyvene runs the way pyreft's trainer drives it: an
IntervenableModel with the intervention on `block_output` at unit "pos" and
`unit_locations={"sources->base": (None, [[positions]])}`. The pyvene intervention starts from a
copy of prosv's initial module (R with its orthogonal parametrization, W, b), so the loss curves
must agree. The two alternate step by step: a pyvene step runs (timed apart) right after each
optimizer step of prosv's train() run, while prosv's own hook sits idle on the block. Reported:
seconds per epoch after the first (prosv's one-off prefix computation is left out; target: prosv
at least 2x faster), and the largest per-step loss difference. The model is loaded in fp32 here,
for both, so that the curves can be compared exactly.
"""

from __future__ import annotations

import importlib.util
from importlib.metadata import version
from pathlib import Path

import torch
from common import LAYER, MODEL, Check, Result, StepClock, concept_datasets, median


def _load_pyvene():
    """(pyvene, LoreftIntervention). pyvene 0.1.8 ships no LoReFT: it is pyreft's.

    pyreft's package __init__ imports its trainer stack (datasets, ...); only its interventions
    module is needed, so that file is loaded on its own, unchanged.
    """
    import pyvene

    spec = importlib.util.find_spec("pyreft")
    if spec is None:
        raise ImportError("No module named 'pyreft'")
    path = Path(next(iter(spec.submodule_search_locations))) / "interventions.py"
    mod_spec = importlib.util.spec_from_file_location("pyreft_interventions", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return pyvene, mod.LoreftIntervention


def _copy_init(src, dst) -> None:
    """prosv LoReFT concept 0 -> pyreft LoreftIntervention: R (stored transposed), W, b.

    R's orthogonal parametrization is copied whole (its free parameter and its fixed base), so
    Adam moves both along the same path, not just from the same starting matrix.
    """
    ps, pd_ = src.R[0].parametrizations.weight, dst.rotate_layer.parametrizations.weight
    with torch.no_grad():
        pd_.original.copy_(ps.original.mT)
        if hasattr(ps[0], "base"):
            pd_[0].base.copy_(ps[0].base)
        dst.learned_source.weight.copy_(src.W[0].weight)
        dst.learned_source.bias.copy_(src.W[0].bias)
    assert torch.allclose(dst.rotate_layer.weight, src.R[0].weight.T, atol=1e-6)


def run(model, tokenizer, quick: bool) -> Result:
    res = Result("loreft_vs_pyvene", "prosv LoReFT vs pyvene (pyreft LoreftIntervention)", __doc__)
    try:
        pyvene, LoreftIntervention = _load_pyvene()
    except Exception as err:  # report, do not substitute
        res.blocked = f"pyvene/pyreft unavailable: {type(err).__name__}: {err}. See benchmarks/requirements.txt."
        return res
    from prosv.interventions import LoReFT
    from prosv.models import hidden_size, load_model
    from prosv.positions import as_spec
    from prosv.training import TrainConfig, encode, train

    epochs, rounds = (3, 1) if quick else (4, 2)
    model32, tok = load_model(MODEL, device=next(model.parameters()).device, dtype="float32")
    hidden = hidden_size(model32)
    examples = concept_datasets(1, 8)[0]
    cfg = TrainConfig(
        intervention="loreft",
        loreft_rank=1,
        positions="p2+s2",
        loss="lang",
        epochs=epochs,
        batch_size=8,
        micro_batch_size=16,
        max_response_tokens=64,
    )
    lr = cfg.eta_loreft if cfg.eta_loreft is not None else cfg.learning_rates(hidden)[1]
    enc = encode(tok, examples, cfg.max_response_tokens)
    spec = as_spec(cfg.positions)
    device = next(model32.parameters()).device
    curves: dict[str, list[list[float]]] = {"prosv": [], "pyvene": []}
    times: dict[str, list[float]] = {"prosv": [], "pyvene": []}

    def pyvene_trainer():
        """One pyvene training run, a step per call, from prosv's initial module."""
        intervention = LoreftIntervention(embed_dim=hidden, low_rank_dimension=1, dtype=torch.float32)
        _copy_init(LoReFT(1, hidden, cfg.loreft_rank, cfg.seed), intervention)  # train()'s own init
        config = pyvene.IntervenableConfig(
            representations=[
                {
                    "layer": LAYER,
                    "component": "block_output",
                    "unit": "pos",
                    "low_rank_dimension": 1,
                    "intervention": intervention,
                }
            ]
        )
        pv = pyvene.IntervenableModel(config, model32)
        pv.set_device(device)
        pv.disable_model_gradients()
        pv.eval()
        params = [p for p in intervention.parameters() if p.requires_grad]
        opt = torch.optim.Adam([{"params": params, "lr": lr}], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
        shuffle = torch.Generator().manual_seed(cfg.seed)  # prosv's per-concept example order
        losses: list[float] = []

        def step():
            batch = [enc[i] for i in torch.randperm(len(enc), generator=shuffle).tolist()]
            seqs = [e.prompt + e.response for e in batch]
            width = max(map(len, seqs))
            ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
            attn = torch.zeros_like(ids)
            labels = torch.full_like(ids, -100)
            for b, e in enumerate(batch):  # right padding, as prosv
                ids[b, : len(seqs[b])] = torch.tensor(seqs[b])
                attn[b, : len(seqs[b])] = 1
                labels[b, len(e.prompt) : len(seqs[b])] = torch.tensor(e.response)
            locations = [spec.prompt_indices(len(e.prompt)) for e in batch]
            opt.zero_grad(set_to_none=True)
            _, out = pv(
                {"input_ids": ids.to(device), "attention_mask": attn.to(device)},
                unit_locations={"sources->base": (None, [locations])},
                labels=labels.to(device),
            )
            out.loss.backward()
            for group in opt.param_groups:  # prosv: step s uses lr * (total - s) / total
                group["lr"] = lr * (epochs - len(losses)) / epochs
            opt.step()
            losses.append(float(out.loss.detach()))

        return step, losses

    for _ in range(rounds):
        pyvene_step, pyvene_losses = pyvene_trainer()
        with StepClock(between=pyvene_step) as clock:  # a pyvene step after every prosv step
            out = train(model32, tok, LAYER, [examples], cfg, progress=False)
        curves["prosv"].append(out.losses.loss.tolist())
        curves["pyvene"].append(pyvene_losses)
        times["prosv"] += clock.steps  # steps 2..E: the prefix computation is one-off
        times["pyvene"] += clock.between_times[1:]  # steps 2..E as well

    t_prosv, t_pyvene = median(times["prosv"]), median(times["pyvene"])
    res.headers = ["implementation", "median s per epoch (steady state)", "x prosv", "samples", "losses, round 1"]
    for name, key in (
        ("prosv train(intervention='loreft')", "prosv"),
        ("pyvene IntervenableModel + pyreft LoReFT", "pyvene"),
    ):
        t = median(times[key])
        res.rows.append([name, t, t / t_prosv, len(times[key]), ", ".join(f"{x:.4f}" for x in curves[key][0])])
    res.checks.append(
        Check("pyvene s per epoch / prosv s per epoch", t_pyvene / t_prosv, ">= 2", t_pyvene / t_prosv >= 2)
    )
    diff = max(abs(a - b) for ra, rb in zip(curves["prosv"], curves["pyvene"]) for a, b in zip(ra, rb))
    res.checks.append(Check("max |per-step loss difference| (same init)", diff, "<= 1e-3", diff <= 1e-3, "{:.2e}"))
    res.notes.append(
        f"pyvene {version('pyvene')}, pyreft {version('pyreft')} (LoreftIntervention); "
        f"{len(enc)} examples, {epochs} epochs of 1 step, lr {lr}, model fp32, {rounds} round(s)"
    )
    return res
