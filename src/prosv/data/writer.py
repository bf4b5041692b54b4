"""Writing training data for a concept with a generator model.

Concept-laden responses (AxBench's positives): the generator answers a general instruction while
weaving the concept in, asked to do so in the user turn (optionally after a few of the concept's
exemplars as earlier turns), several attempts per instruction, the best one kept; the hand-written
exemplars of each concept are added as positives too. Neutral responses (for the simpo loss): the
generator's plain answer to the same instruction. Responses that never mention the concept, or that
only repeat the request, are filtered out, and every response is cut to a token budget.

With a judge, every attempt that passes those filters is also rated, and only attempts whose concept
rating reaches ``min_concept_rating`` can be kept: a keyword can be dropped in passing, while the
judge asks whether the response is about the concept, which is what a steering vector should learn.
Each row then carries the judge's ``concept_rating`` (NaN where no judge rated it).
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
    "concept_rating",
]


def concept_prompt(instruction: str, steering_instruction: str) -> str:
    """The user turn that asks for a concept-laden answer.

    Small chat models follow a request in the user turn far better than a system message or
    few-shot demonstrations (measured on SmolLM2-135M: about half of the answers mention the
    concept this way, almost none with a system message).
    """
    return f"{instruction}\n\n{steering_instruction}"


def _keyword_pattern(keyword: str) -> str:
    kw = keyword.strip().lower()
    return (r"(?<!\w)" if kw[0].isalnum() else "") + re.escape(kw) + (r"(?!\w)" if kw[-1].isalnum() else "")


def keyword_hits(text: str, keywords: list[str]) -> int:
    """Whole-word, case-insensitive occurrences of the keywords (so 'rail' does not match 'trail')."""
    low = text.lower()
    return sum(len(re.findall(_keyword_pattern(kw), low)) for kw in keywords if kw.strip())


def mentions_concept(text: str, keywords: list[str]) -> bool:
    return keyword_hits(text, keywords) > 0


def echoes(text: str, steering_instruction: str) -> bool:
    """The response repeats the request to bring the concept in (a common failure of small models)."""
    probe = " ".join(re.findall(r"\w+", steering_instruction.lower())[:6])
    return bool(probe) and probe in " ".join(re.findall(r"\w+", text.lower()))


def cut_to_tokens(tokenizer, text: str, max_tokens: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens])


def _requests(concepts, instructions, per_concept: int, seed: int, exemplars, few_shot: int) -> list[tuple]:
    """(concept row, instruction row, prompt) per drawn instruction. With `few_shot`, the concept's
    exemplars (never the instruction's own) come first as earlier turns, rotated across instructions."""
    out = []
    for c in concepts.itertuples():
        drawn = instructions.sample(min(per_concept, len(instructions)), random_state=seed + int(c.concept_id))
        own = exemplars[exemplars.concept_id == c.concept_id] if exemplars is not None and few_shot else None
        shots_all = [] if own is None else list(zip(own.instruction, own.response))
        for j, ins in enumerate(drawn.itertuples()):
            pool = [shot for shot in shots_all if shot[0] != ins.instruction]
            shots = [pool[(j + t) % len(pool)] for t in range(min(few_shot, len(pool)))] if pool else []
            turns = []
            for shot_instruction, shot_response in shots:
                turns += [
                    {"role": "user", "content": concept_prompt(shot_instruction, c.steering_instruction)},
                    {"role": "assistant", "content": shot_response},
                ]
            ask = concept_prompt(ins.instruction, c.steering_instruction)
            out.append((c, ins, turns + [{"role": "user", "content": ask}] if turns else ask))
    return out


def attempt_sample_id(concept_id: int, instruction_id: int, attempt: int, attempts: int, instructions: int) -> int:
    """The sample id of one attempt at (concept, instruction), out of ``instructions`` instruction ids
    (0 .. instructions - 1): fixed by the three, so a concept's written responses draw the same random
    numbers whichever concepts are written beside it (one data job per split, or all at once). Dense,
    so that for data/ (48 concepts, 110 instructions) the ids stay below SAMPLE_ID_SPAN and never
    draw a neighbouring seed's numbers."""
    return (concept_id * instructions + instruction_id) * attempts + attempt


def _acceptable(text: str, keywords: list[str], steering_instruction: str) -> bool:
    return bool(text) and mentions_concept(text, keywords) and not echoes(text, steering_instruction)


def _best_attempt(
    texts: list[str],
    keywords: list[str],
    steering_instruction: str,
    ratings: list[tuple[int, int] | None] | None = None,
    min_concept_rating: int = 0,
) -> tuple[int, bool]:
    """Index of the attempt to keep, and whether it is kept.

    Without ratings: the attempt with the most keyword hits per word among those that mention the
    concept and do not echo the request (ties: the earliest). With the judge's (concept, fluency)
    rating of each acceptable attempt, only those rated at least ``min_concept_rating`` on the concept
    count, ranked by concept rating, then fluency, then keyword density. No candidate: the first
    attempt, not kept."""
    candidates = [i for i, t in enumerate(texts) if _acceptable(t, keywords, steering_instruction)]
    if ratings is not None:
        candidates = [i for i in candidates if ratings[i] is not None and ratings[i][0] >= min_concept_rating]
    if not candidates:
        return 0, False

    def rank(i: int) -> tuple:
        density = keyword_hits(texts[i], keywords) / max(1, len(texts[i].split()))
        return (*(ratings[i] if ratings is not None else ()), density, -i)

    return max(candidates, key=rank), True


def _rate_attempts(judge, requests, texts: list[list[str]], progress: bool) -> list[list[tuple[int, int] | None]]:
    """The judge's (concept, fluency) rating of every acceptable attempt, in one batch; None elsewhere.
    The judge sees the plain instruction, as the trained vector will."""
    todo = [
        (k, j)
        for k, (c, _, _) in enumerate(requests)
        for j, text in enumerate(texts[k])
        if _acceptable(text, list(c.keywords), c.steering_instruction)
    ]
    asked = [(requests[k][0].concept, requests[k][1].instruction, texts[k][j]) for k, j in todo]
    rated = judge.rate_many(asked, progress=progress)
    out: list[list[tuple[int, int] | None]] = [[None] * len(t) for t in texts]
    for (k, j), rating in zip(todo, rated):
        out[k][j] = (rating.concept, rating.fluency)
    return out


def write_concept_responses(
    model,
    tokenizer,
    concepts: pd.DataFrame,
    instructions: pd.DataFrame,
    per_concept: int,
    max_new_tokens: int = 128,
    temperature: float = 0.7,
    seed: int = 0,
    batch_size: int = 64,  # decoding dominates, and a wide batch costs less per row
    progress: bool = True,
    exemplars: pd.DataFrame | None = None,
    attempts: int = 1,
    few_shot: int = 0,
    judge=None,
    min_concept_rating: int = 2,
    neutral: bool = True,
) -> pd.DataFrame:
    """One row per (concept, instruction): concept response, neutral response, filter verdict.

    Instructions are drawn per concept with a seeded sample; each is asked `attempts` times (its own
    random draws each) and the best attempt is kept (:func:`_best_attempt`). The neutral answers are
    generated once per instruction and shared by every concept that drew it. Hand-written
    ``exemplars`` (concept_id, instruction, response) come first, as kept positives whose neutral
    response is the model's own answer; with ``few_shot`` they also show the generator what is asked.
    With a ``judge`` (:class:`prosv.judges.Judge`), a written response is kept only if the judge rates
    its concept at least ``min_concept_rating``; exemplars are rated too, and kept whatever they get.
    With ``neutral`` false no neutral response is written (None): only the simpo loss reads them.
    A response's random draws depend only on its concept, instruction and attempt, not on which other
    concepts share the call (:func:`attempt_sample_id`).
    """
    requests = _requests(concepts, instructions, per_concept, seed, exemplars, few_shot)
    span = int(instructions.instruction_id.max()) + 1  # the same for every split: one instruction table
    gen = dict(max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size, progress=progress)
    texts = _attempt_texts(model, tokenizer, requests, attempts, span, temperature, **gen)
    needed = sorted({ins.instruction_id for _, ins, _ in requests})
    neutral_by_id = (
        _neutral_answers(model, tokenizer, instructions, needed, **gen) if neutral else dict.fromkeys(needed)
    )
    ratings = _rate_attempts(judge, requests, texts, progress) if judge is not None else [None] * len(requests)
    rows = [
        _written_row(c, ins, texts[k], ratings[k], neutral_by_id[ins.instruction_id], min_concept_rating)
        for k, (c, ins, _) in enumerate(requests)
    ]
    written = pd.DataFrame(rows)
    if exemplars is None or exemplars.empty:
        return written
    shots = _exemplar_rows(
        model, tokenizer, concepts, exemplars, max_new_tokens, seed, batch_size, progress, judge, neutral
    )
    return pd.concat([shots, written], ignore_index=True)


def _attempt_texts(model, tokenizer, requests, attempts: int, span: int, temperature: float, **gen) -> list[list[str]]:
    """Each request's attempts, sampled with their own keyed draws and cut to the token budget before
    judging, so that the judge rates exactly what is kept."""
    outs = generate(
        model,
        tokenizer,
        [prompt for _, _, prompt in requests for _ in range(attempts)],
        temperature=temperature,
        desc="concept responses",
        sample_ids=[
            attempt_sample_id(int(c.concept_id), int(ins.instruction_id), a, attempts, span)
            for c, ins, _ in requests
            for a in range(attempts)
        ],
        **gen,
    )
    budget = gen["max_new_tokens"]
    return [
        [cut_to_tokens(tokenizer, o.text.strip(), budget) for o in outs[k * attempts : (k + 1) * attempts]]
        for k in range(len(requests))
    ]


def _written_row(c, ins, texts: list[str], ratings, neutral: str | None, min_concept_rating: int) -> dict:
    """The pair one instruction gives: its best attempt (:func:`_best_attempt`), whether it is kept, and
    the judge's concept rating of it."""
    best, keep = _best_attempt(texts, list(c.keywords), c.steering_instruction, ratings, min_concept_rating)
    rating = ratings[best] if ratings is not None else None
    return {
        **_concept_fields(c),
        "instruction_id": int(ins.instruction_id),
        "instruction": ins.instruction,
        "response": texts[best],
        "neutral_response": neutral,
        "source": "generated",
        "keep": keep,
        "concept_rating": float("nan") if rating is None else float(rating[0]),
    }


def _concept_fields(c) -> dict:
    return {"concept_id": int(c.concept_id), "concept": c.concept, "genre": c.genre}


def _greedy_answers(model, tokenizer, prompts: list[str], max_new_tokens, seed, batch_size, progress, desc) -> list:
    """The model's own greedy answers, cut to the token budget: the rejected (concept-neutral) side of a pair."""
    outs = generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        temperature=0.0,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
        desc=desc,
    )
    return [cut_to_tokens(tokenizer, g.text.strip(), max_new_tokens) for g in outs]


def _neutral_answers(model, tokenizer, instructions, ids, max_new_tokens, seed, batch_size, progress) -> dict:
    """The greedy answer to each instruction id, shared by every pair that drew it."""
    by_id = instructions.set_index("instruction_id").loc[ids, "instruction"]
    texts = _greedy_answers(
        model, tokenizer, list(by_id), max_new_tokens, seed, batch_size, progress, "neutral responses"
    )
    return dict(zip(ids, texts))


def _exemplar_rows(
    model, tokenizer, concepts, exemplars, max_new_tokens, seed, batch_size, progress, judge=None, neutral=True
) -> pd.DataFrame:
    """The hand-written exemplars as kept pairs (the model's greedy answer as the neutral side, when
    ``neutral``), rated by the judge when there is one."""
    ex = exemplars.merge(concepts[["concept_id", "concept", "genre"]], on="concept_id")
    answers = (
        _greedy_answers(
            model,
            tokenizer,
            list(ex.instruction),
            max_new_tokens,
            seed,
            batch_size,
            progress,
            "exemplar neutral responses",
        )
        if neutral
        else [None] * len(ex)
    )
    rows = ex.assign(
        instruction_id=-1,
        neutral_response=answers,
        source="exemplar",
        keep=True,
        concept_rating=float("nan"),
    )[PAIR_COLUMNS]
    if judge is not None:
        rated = judge.rate_many(list(zip(rows.concept, rows.instruction, rows.response)))
        rows["concept_rating"] = [float(r.concept) for r in rated]
    return rows
