"""Robustness: the factor-free prompts under the concept-suppression attack, generated with each
method's vector; the judge rates them against the original instruction (docs/method.md, "Robustness")."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .. import evaluation as E
from ..generation import Steering, generate
from .steering import vector_labels
from .utility import method_factors


def attack_prompts(
    concepts: pd.DataFrame,
    instructions: pd.DataFrame,
    concept_ids: Sequence[int],
    n: int,
    shard: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Factor-free prompts of ``concept_ids`` rewritten by the suppression attack: ``user_turn`` is
    what the model sees, ``instruction`` stays the original (the judge rates against it).

    With ``shard``, only those concepts' rows of the whole stage's table: each keeps the sample id
    (and so the random draws) it has when the stage runs as one job."""
    prompts = E.steering_prompts(concepts, instructions, n=n, concept_ids=[int(c) for c in concept_ids])
    if shard is not None:
        prompts = prompts[prompts.concept_id.isin([int(c) for c in shard])].reset_index(drop=True)
    return E.suppression_attack_prompts(prompts, concepts)


def attack_generations(
    model, tokenizer, prompts: pd.DataFrame, vectors: dict, fssv_factors: Sequence[float], **gen
) -> pd.DataFrame:
    """Every prompt generated with each method's vector (``vectors``: name -> VectorFile) at factor
    1.0, FSSV methods also at the other ``fssv_factors``; each prompt with its own random draws
    (``sample_id``) under every method and factor."""
    parts = []
    for name, vec in vectors.items():
        rows = [vec.index_of(c) for c in prompts.concept_id]
        for factor in method_factors(vec.positions, fssv_factors):
            steering = Steering(vec.module, vec.layer, vec.positions, rows=rows, factor=factor)
            outs = generate(
                model,
                tokenizer,
                list(prompts.user_turn),
                steering,
                sample_ids=[int(i) for i in prompts.sample_id],
                desc=f"attack {name} x{factor:g}",
                **gen,
            )
            parts.append(
                prompts.assign(
                    **{**vector_labels(vec, rows), "method": name},
                    factor=float(factor),
                    response=[o.text for o in outs],
                )
            )
    out = pd.concat(parts, ignore_index=True)
    out["protocol"] = E.PROTOCOL_SUPPRESSION
    return out
