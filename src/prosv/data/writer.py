"""Writing training data for a concept with a generator model.

Concept-laden responses (AxBench's positives): the generator answers a general instruction while
weaving the concept in, asked to do so in the user turn; the hand-written exemplars of each concept
are added as positives too. Neutral
responses (for the simpo loss): the generator's plain answer to the same instruction. Responses
that never mention the concept are filtered out, and every response is cut to a token budget.
"""

from __future__ import annotations

import re

import pandas as pd

from ..generation import generate

# the columns of a training-pair table
PAIR_COLUMNS = [
    "concept_id",
    "concept",
    "genre",
    "instruction_id",
    "instruction",
    "response",
    "neutral_response",
    "source",
    "keep",
]


def concept_prompt(instruction: str, steering_instruction: str) -> str:
    """The user turn that asks for a concept-laden answer.

    Small chat models follow a request in the user turn far better than a system message or
    few-shot demonstrations (measured on SmolLM2-135M: about half of the answers mention the
    concept this way, almost none with a system message).
    """
    return f"{instruction}\n\n{steering_instruction}"


def mentions_concept(text: str, keywords: list[str]) -> bool:
    """Whole-word, case-insensitive match of any keyword (so 'rail' does not match 'trail')."""
    for kw in keywords:
        kw = kw.strip().lower()
        if not kw:
            continue
        pattern = (r"(?<!\w)" if kw[0].isalnum() else "") + re.escape(kw) + (r"(?!\w)" if kw[-1].isalnum() else "")
        if re.search(pattern, text.lower()):
            return True
    return False


def cut_to_tokens(tokenizer, text: str, max_tokens: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens])


def write_concept_responses(
    model,
    tokenizer,
    concepts: pd.DataFrame,
    instructions: pd.DataFrame,
    per_concept: int,
    max_new_tokens: int = 128,
    temperature: float = 0.7,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
    exemplars: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (concept, instruction): concept response, neutral response, filter verdict.

    Instructions are drawn per concept with a seeded sample; the neutral answers are generated
    once per instruction and shared by every concept that drew it. Hand-written ``exemplars``
    (concept_id, instruction, response) come first, as kept positives whose neutral response is
    the model's own answer.
    """
    prompts, meta = [], []
    for c in concepts.itertuples():
        drawn = instructions.sample(min(per_concept, len(instructions)), random_state=seed + int(c.concept_id))
        for ins in drawn.itertuples():
            prompts.append(concept_prompt(ins.instruction, c.steering_instruction))
            meta.append((c, ins))
    concept_out = generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
        desc="concept responses",
    )
    needed = sorted({ins.instruction_id for _, ins in meta})
    by_id = instructions.set_index("instruction_id").loc[needed, "instruction"]
    neutral_out = generate(
        model,
        tokenizer,
        list(by_id),
        max_new_tokens=max_new_tokens,
        temperature=0.0,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
        desc="neutral responses",
    )
    neutral = dict(zip(needed, (g.text.strip() for g in neutral_out)))
    rows = []
    for (c, ins), g in zip(meta, concept_out):
        text = g.text.strip()
        rows.append(
            {
                "concept_id": int(c.concept_id),
                "concept": c.concept,
                "genre": c.genre,
                "instruction_id": int(ins.instruction_id),
                "instruction": ins.instruction,
                "response": cut_to_tokens(tokenizer, text, max_new_tokens),
                "neutral_response": cut_to_tokens(tokenizer, neutral[ins.instruction_id], max_new_tokens),
                "source": "generated",
                "keep": bool(text) and mentions_concept(text, list(c.keywords)),
            }
        )
    written = pd.DataFrame(rows)
    if exemplars is None or exemplars.empty:
        return written
    return pd.concat(
        [_exemplar_rows(model, tokenizer, concepts, exemplars, max_new_tokens, seed, batch_size, progress), written],
        ignore_index=True,
    )


def _exemplar_rows(model, tokenizer, concepts, exemplars, max_new_tokens, seed, batch_size, progress) -> pd.DataFrame:
    ex = exemplars.merge(concepts[["concept_id", "concept", "genre"]], on="concept_id")
    neutral = generate(
        model,
        tokenizer,
        list(ex.instruction),
        max_new_tokens=max_new_tokens,
        temperature=0.0,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
        desc="exemplar neutral responses",
    )
    return ex.assign(
        instruction_id=-1,
        neutral_response=[cut_to_tokens(tokenizer, g.text.strip(), max_new_tokens) for g in neutral],
        source="exemplar",
        keep=True,
    )[PAIR_COLUMNS]
