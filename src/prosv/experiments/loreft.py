"""LoReFT comparison: PrOSV and rank-1 LoReFT trained at the same layer, positions and learning rate;
their loss curves, the cosine between LoReFT's R row and PrOSV's v, and the spread of the unsteered
hidden states across prompts at the intervened positions vs content tokens (docs/method.md, "LoReFT")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import pandas as pd
import torch

from ..models import check_layer, decoder_layers, hidden_size
from ..positions import as_spec, template_ids
from ..training import Example, PrefixCache, TrainConfig, train


def loreft_config(prosv_cfg: TrainConfig, hidden: int) -> TrainConfig:
    """Rank-1 LoReFT at the same positions, loss, schedule and seed as ``prosv_cfg``, with its one
    learning rate (for R and W alike) set to PrOSV's direction rate eta_v after width scaling: the
    rate of the parameter LoReFT's R row plays the role of (v). PrOSV's factor rate eta_alpha has
    no LoReFT counterpart (LoReFT's magnitude, W h + b - R h, is learned through W and b)."""
    _, lr_v = prosv_cfg.learning_rates(hidden)
    return replace(prosv_cfg, intervention="loreft", loreft_rank=1, eta_loreft=lr_v).validate()


def direction_cosines(sv_module, loreft_module, concept_names: Sequence | None = None) -> pd.DataFrame:
    """Per concept: signed and absolute cosine between LoReFT's (first) R row and PrOSV's v."""
    R = loreft_module.directions()[:, 0, :].float()
    V = torch.stack([v.detach().float() for v in sv_module.v]).to(R.device)
    cos = torch.nn.functional.cosine_similarity(R, V, dim=-1).cpu()
    names = list(concept_names) if concept_names is not None else list(range(len(cos)))
    return pd.DataFrame(
        {
            "concept": names,
            "cosine": cos.abs().tolist(),
            "signed_cosine": cos.tolist(),
            "alpha": [float(a) for a in sv_module.alpha],
            "v_norm": [float(v.norm()) for v in sv_module.v],
        }
    )


def compare_loreft(
    model,
    tokenizer,
    layer: int,
    datasets: list[list[Example]],
    prosv_cfg: TrainConfig,
    concept_names: Sequence | None = None,
    progress: bool = True,
) -> dict:
    """Train PrOSV (``prosv_cfg``) and rank-1 LoReFT (:func:`loreft_config`) on the same data.

    Returns {"losses": method, concept, step, loss, ... ; "cosine": per concept; "prosv"/"loreft":
    the TrainResults}."""
    loreft_cfg = loreft_config(prosv_cfg, hidden_size(model))
    results = {}
    cache = PrefixCache(layer)  # both methods edit the same block output: one prefix serves both
    for name, cfg in (("prosv", prosv_cfg), ("loreft", loreft_cfg)):
        results[name] = train(
            model, tokenizer, layer, datasets, cfg, progress=progress, concept_names=concept_names, cache=cache
        )
    losses = pd.concat(
        [
            results[m].losses.assign(
                method=m,
                layer=layer,
                positions=prosv_cfg.positions,
                lr=results[m].lr_v if m == "prosv" else loreft_cfg.eta_loreft,
            )
            for m in ("prosv", "loreft")
        ],
        ignore_index=True,
    )
    cols = ["method", "concept", "step", "loss"]
    losses = losses[cols + [c for c in losses.columns if c not in cols]]
    cosine = direction_cosines(results["prosv"].module, results["loreft"].module, concept_names)
    final = losses.sort_values("step").groupby(["method", "concept"]).loss.last().unstack("method")
    cosine["final_loss_prosv"] = cosine.concept.map(final["prosv"])
    cosine["final_loss_loreft"] = cosine.concept.map(final["loreft"])
    cosine = cosine.assign(layer=layer, positions=prosv_cfg.positions, lr=loreft_cfg.eta_loreft)
    return {"losses": losses, "cosine": cosine, "prosv": results["prosv"], "loreft": results["loreft"]}


@torch.no_grad()
def layer_outputs(model, tokenizer, prompts: Sequence[str | list], layer: int) -> list[torch.Tensor]:
    """Unsteered output of decoder block ``layer`` (the hidden state the interventions edit) for
    each chat-templated prompt, one [T, n] fp32 tensor per prompt (one forward pass each, no padding)."""
    check_layer(model, layer)
    device = next(model.parameters()).device
    captured = []

    def hook(block, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        captured.append(hidden[0].detach().float().cpu())

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    try:
        for p in prompts:
            ids = torch.tensor([template_ids(tokenizer, p)], device=device)
            model.get_decoder()(input_ids=ids)
    finally:
        handle.remove()
    return captured


def _common_prefix(seqs: list[list[int]]) -> int:
    n = 0
    while all(len(s) > n for s in seqs) and len({s[n] for s in seqs}) == 1:
        n += 1
    return n


def content_span(id_lists: list[list[int]]) -> list[tuple[int, int]]:
    """Per prompt, [start, end) of the tokens that differ between prompts (the instruction): the
    template before and after it is the longest prefix and suffix shared by every prompt."""
    if len(id_lists) < 2:
        raise ValueError("need at least two prompts to tell template from content")
    pre = _common_prefix(id_lists)
    suf = _common_prefix([s[::-1] for s in id_lists])
    spans = []
    for s in id_lists:
        end = max(len(s) - suf, pre + 1)
        spans.append((pre, min(end, len(s))))
    return spans


def spread_stats(x: torch.Tensor) -> tuple[float, float]:
    """For [P, n] vectors (one per prompt): the mean pairwise cosine similarity (i < j) and the
    relative std: sqrt(mean_i ||x_i - mean||^2) (std over prompts, all dimensions together)
    divided by the mean norm."""
    x = x.double()
    unit = torch.nn.functional.normalize(x, dim=-1)
    sim = unit @ unit.T
    p = x.shape[0]
    iu = torch.triu_indices(p, p, offset=1)
    mean_cos = float(sim[iu[0], iu[1]].mean())
    std = float(((x - x.mean(0)) ** 2).sum(-1).mean().sqrt())
    return mean_cos, std / float(x.norm(dim=-1).mean())


def hidden_state_spread(
    model,
    tokenizer,
    prompts: Sequence[str],
    layer: int,
    positions: str,
    content_quantiles: Sequence[float] = (0.25, 0.5, 0.75),
) -> pd.DataFrame:
    """The mechanism behind the LoReFT comparison: how much the unsteered hidden state at the output of ``layer``
    varies across ``prompts`` at each intervened position (kind "intervened", position ``p{i}``
    = i-th token, ``s{k}`` = k-th from the end) vs at instruction tokens (kind "content",
    position ``content@q``: the token at fraction q of each prompt's instruction span).

    Columns: kind, position, token, mean_pairwise_cosine, relative_std, n_prompts, layer."""
    if len(prompts) < 2:
        raise ValueError("need at least two prompts")
    spec = as_spec(positions)
    ids = [template_ids(tokenizer, p) for p in prompts]
    hidden = layer_outputs(model, tokenizer, prompts, layer)
    spans = content_span(ids)
    rows = []

    def add(kind, label, idx):
        x = torch.stack([h[i] for h, i in zip(hidden, idx)])
        cos, rel = spread_stats(x)
        toks = {tokenizer.convert_ids_to_tokens(s[i]) for s, i in zip(ids, idx)}
        rows.append(
            {
                "kind": kind,
                "position": label,
                "token": next(iter(toks)) if len(toks) == 1 else "(varies)",
                "mean_pairwise_cosine": cos,
                "relative_std": rel,
                "n_prompts": len(prompts),
                "layer": layer,
            }
        )

    lengths = [len(s) for s in ids]
    shortest = min(lengths)
    for i in spec.prompt_indices(shortest):
        if i < spec.prefix or spec.whole_prompt:
            add("intervened", f"p{i + 1}", [i] * len(ids))
        else:
            k = shortest - i
            add("intervened", f"s{k}", [n - k for n in lengths])
    for q in content_quantiles:
        idx = [min(end - 1, start + int(math.floor(q * (end - start)))) for start, end in spans]
        add("content", f"content@{q:g}", idx)
    return pd.DataFrame(rows)


def spread_prompts(pairs: pd.DataFrame, concept_ids: Sequence[int], n: int = 16) -> list[str]:
    """Up to ``n`` distinct training instructions of the compared concepts, in file order."""
    rows = pairs[pairs.concept_id.isin([int(c) for c in concept_ids])]
    if "keep" in rows.columns:
        rows = rows[rows.keep]
    out = list(dict.fromkeys(rows.instruction))[:n]
    if len(out) < 2:
        raise ValueError(f"concepts {list(concept_ids)} have fewer than two distinct instructions")
    return out
