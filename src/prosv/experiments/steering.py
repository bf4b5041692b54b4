"""The main steering evaluation: responses of every method, baseline and factor-grid cell.

Every condition answers the same prompt table (:func:`prosv.evaluation.steering_prompts`), and each
prompt samples with the same random draws in every condition (its ``sample_id``), so methods and
baselines are compared on the same (concept, instruction, sample seed) triples. Each response row
carries what produced it, read from the vector file: method, intervention, loss, layer, positions,
fixed_alpha, the learned alpha, the factor and the protocol.
"""

from __future__ import annotations

import pandas as pd

from .. import evaluation as E
from ..generation import Steering, generate
from ..interventions import SteeringVectors
from ..vectors import VectorFile

BASELINES = ("unsteered", "prompting")


def _sample_ids(prompts: pd.DataFrame) -> list[int]:
    if "sample_id" not in prompts.columns:
        raise KeyError("the prompt table has no 'sample_id' column (use prosv.evaluation.steering_prompts)")
    return [int(i) for i in prompts.sample_id]


def baseline_responses(
    model, tokenizer, prompts: pd.DataFrame, concepts: pd.DataFrame, baseline: str, **gen
) -> pd.DataFrame:
    """`unsteered` (the prompts as they are) or `prompting` (the concept's steering instruction first)."""
    if baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; use one of {list(BASELINES)}")
    if baseline == "prompting":
        prompts = E.prompting_prompts(prompts, concepts)
    outs = generate(model, tokenizer, list(prompts.user_turn), desc=baseline, sample_ids=_sample_ids(prompts), **gen)
    return prompts.assign(method=baseline, factor=1.0, response=[o.text for o in outs])


def vector_labels(vec: VectorFile, rows: list[int]) -> dict:
    alphas = getattr(vec.module, "alpha", None)
    return {
        "method": vec.method,
        "intervention": vec.intervention,
        "loss": vec.metadata.get("loss"),
        "layer": vec.layer,
        "positions": vec.positions,
        "fixed_alpha": vec.hyperparameter("fixed_alpha"),
        "learned_alpha": [float(alphas[r]) if alphas is not None else None for r in rows],
    }


def vector_responses(
    model, tokenizer, prompts: pd.DataFrame, vectors: list[VectorFile], factors: list[float] | None = None, **gen
) -> pd.DataFrame:
    """Responses steered by each vector file's concepts: the learned factor as is (`factors` None, the
    factor-free protocol) or every factor of a grid (the factor-grid protocol, one row per factor)."""
    device = next(model.parameters()).device
    protocol = E.PROTOCOL_FACTOR_FREE if factors is None else E.PROTOCOL_FACTOR_GRID
    plan = prompts if factors is None else E.factor_grid_plan(prompts, factors)
    plan = plan.assign(factor=1.0) if factors is None else plan
    if factors is None and len(vectors) > 1 and _stackable(vectors):
        return _stacked_responses(model, tokenizer, plan, vectors, device, gen)
    parts = []
    for vec in vectors:
        module = vec.module.to(device)
        for factor, part in plan.groupby("factor", sort=True):
            rows = [vec.index_of(c) for c in part.concept_id]
            steering = Steering(module, vec.layer, vec.positions, rows=rows, factor=float(factor))
            outs = generate(
                model,
                tokenizer,
                list(part.user_turn),
                steering,
                sample_ids=_sample_ids(part),
                desc=f"{vec.method} L{vec.layer} {vec.positions} x{factor:g}",
                **gen,
            )
            parts.append(part.assign(**vector_labels(vec, rows), protocol=protocol, response=[o.text for o in outs]))
    return pd.concat(parts, ignore_index=True)


def _stackable(vectors: list[VectorFile]) -> bool:
    return all(isinstance(v.module, SteeringVectors) for v in vectors) and len({v.layer for v in vectors}) == 1


def _stacked_responses(model, tokenizer, plan, vectors, device, gen) -> pd.DataFrame:
    """Every placement of one layer in one batch stream: the vectors stacked into one module, one row
    per (file, concept), each prompt with its file's placement and its own random draws."""
    offsets = [sum(v.module.num_concepts for v in vectors[:i]) for i in range(len(vectors))]
    module = SteeringVectors.stack([v.module for v in vectors]).to(device)
    per_file = [[vec.index_of(c) for c in plan.concept_id] for vec in vectors]
    steering = Steering(
        module,
        vectors[0].layer,
        [v.positions for v in vectors for _ in range(len(plan))],
        rows=[off + r for off, rows in zip(offsets, per_file) for r in rows],
    )
    outs = generate(
        model,
        tokenizer,
        list(plan.user_turn) * len(vectors),
        steering,
        sample_ids=_sample_ids(plan) * len(vectors),
        desc=f"{len(vectors)} placements at L{vectors[0].layer}",
        **gen,
    )
    parts = [
        plan.assign(**vector_labels(vec, rows), protocol=E.PROTOCOL_FACTOR_FREE) for vec, rows in zip(vectors, per_file)
    ]
    return pd.concat(parts, ignore_index=True).assign(response=[o.text for o in outs])
