"""The training-data writer: attempts, the best attempt, echo rejection, the judge's filter, few-shot turns,
exemplars first."""

from __future__ import annotations

import pandas as pd

from prosv.data import writer as W
from prosv.judges.base import Judge, Rating


def concepts():
    return pd.DataFrame(
        {
            "concept_id": [3, 7],
            "concept": ["owls", "rivers"],
            "genre": ["text", "text"],
            "keywords": [["owl", "owls", "hoot"], ["river", "stream"]],
            "steering_instruction": [
                "In your answer, bring in owls, whatever the question.",
                "In your answer, bring in rivers, whatever the question.",
            ],
        }
    )


def test_keywords_match_whole_words_only():
    assert W.keyword_hits("An owl hoots; owls hoot. Bowl.", ["owl", "owls", "hoot"]) == 3
    assert W.mentions_concept("A scowling crowd", ["owl"]) is False
    assert W.keyword_hits("print(x) and print(y)", ["print("]) == 2


def test_best_attempt_prefers_density_and_rejects_echoes():
    kws, ask = ["owl", "owls"], "In your answer, bring in owls, whatever the question."
    texts = ["No birds here at all.", "An owl sat on a fence post near the barn at dusk.", "Owls! An owl and owls."]
    assert W._best_attempt(texts, kws, ask) == (2, True)
    echo = "In your answer bring in owls whatever the question: owls owls owls."
    assert W.echoes(echo, ask) and W._best_attempt([echo, texts[1]], kws, ask) == (1, True)
    assert W._best_attempt(["nothing", "still nothing"], kws, ask) == (0, False)


def test_best_attempt_with_ratings_needs_the_concept_rating_then_ranks_by_it():
    kws, ask = ["owl", "owls"], "In your answer, bring in owls, whatever the question."
    texts = ["Owls! An owl and owls.", "An owl sat on a fence post near the barn.", "An owl, at dusk, by the barn."]
    # the densest attempt is rated off-concept: it cannot be kept, whatever its keywords
    assert W._best_attempt(texts, kws, ask, [(1, 2), (2, 1), (2, 2)], 2) == (2, True)
    assert W._best_attempt(texts, kws, ask, [(1, 2), (2, 2), (2, 2)], 2) == (2, True)  # tie: density
    assert W._best_attempt(texts, kws, ask, [(1, 2), (1, 2), (0, 2)], 2) == (0, False)
    assert W._best_attempt(texts, kws, ask, [(1, 2), (1, 1), (0, 2)], 1) == (0, True)  # concept, then fluency
    # an attempt the keyword filter rejects was never rated, and is never kept
    assert W._best_attempt(["no birds", texts[1]], kws, ask, [None, (2, 2)], 2) == (1, True)


class CountingJudge(Judge):
    """A judge with a rule a test can recompute: the concept rating is the number of times "the" occurs
    (at most 2), fluency 2; it records what it was asked."""

    kind = "counting"

    def __init__(self):
        super().__init__(cache=False)
        self.asked = []

    @property
    def judge_id(self) -> str:
        return "counting"

    def rate_many(self, items, progress=False):
        items = [tuple(i) for i in items]
        self.asked += items
        return [Rating(rule(r), 2, 2) for _, _, r in items]


def rule(response: str) -> int:
    return min(2, W.keyword_hits(response, ["the"]))


def test_few_shot_turns_never_show_the_instruction_itself():
    instr = pd.DataFrame({"instruction_id": range(5), "instruction": [f"Question {i}?" for i in range(5)]})
    ex = pd.DataFrame(
        {
            "concept_id": [3, 3, 3],
            "instruction": ["Question 0?", "Question 1?", "Question 9?"],
            "response": ["owl a", "owl b", "owl c"],
        }
    )
    requests = W._requests(concepts(), instr, 5, seed=0, exemplars=ex, few_shot=2)
    assert len(requests) == 10
    for c, ins, prompt in requests:
        if c.concept_id == 3:
            assert isinstance(prompt, list) and len(prompt) == 5  # two shots (user, assistant) and the request
            shown = [t["content"] for t in prompt[:-1:2]]
            assert all(not s.startswith(ins.instruction) for s in shown)
            assert prompt[-1]["content"] == W.concept_prompt(ins.instruction, c.steering_instruction)
        else:
            assert prompt == W.concept_prompt(ins.instruction, c.steering_instruction)  # no exemplars of its own


def test_writer_on_a_model_is_deterministic_and_puts_exemplars_first(tiny_model, tokenizer):
    instr = pd.DataFrame({"instruction_id": range(4), "instruction": [f"Tell me about day {i}." for i in range(4)]})
    ex = pd.DataFrame({"concept_id": [3], "instruction": ["Say hi."], "response": ["Hi from the owl."]})
    kw = dict(per_concept=3, max_new_tokens=6, seed=1, batch_size=4, progress=False, exemplars=ex, attempts=3)
    a = W.write_concept_responses(tiny_model, tokenizer, concepts(), instr, **kw)
    b = W.write_concept_responses(tiny_model, tokenizer, concepts(), instr, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == W.PAIR_COLUMNS and a.iloc[0].source == "exemplar" and bool(a.iloc[0].keep)
    written = a[a.source == "generated"]
    assert len(written) == 2 * 3
    expected = [
        W.mentions_concept(t, k) and not W.echoes(t, s)
        for t, k, s in zip(
            written.response,
            written.concept_id.map({3: ["owl", "owls", "hoot"], 7: ["river", "stream"]}),
            written.concept_id.map(dict(zip(concepts().concept_id, concepts().steering_instruction))),
        )
    ]
    assert written.keep.tolist() == expected


def test_the_judge_filter_keeps_only_responses_rated_on_concept(embedded):
    model, tokenizer = embedded
    instr = pd.DataFrame({"instruction_id": range(6), "instruction": [f"Tell me about day {i}." for i in range(6)]})
    ex = pd.DataFrame({"concept_id": [3], "instruction": ["Say hi."], "response": ["Hi from the owl."]})
    kw = dict(per_concept=5, max_new_tokens=12, seed=1, batch_size=8, progress=False, exemplars=ex, attempts=3)
    # keywords that most answers contain, so that the judge is what decides
    cs = concepts().assign(keywords=[["the", "a", "is"], ["the", "a", "is"]])
    plain = W.write_concept_responses(model, tokenizer, cs, instr, **kw)
    judge = CountingJudge()
    judged = W.write_concept_responses(model, tokenizer, cs, instr, judge=judge, min_concept_rating=2, **kw)
    written = judged[judged.source == "generated"]
    assert len(written) == len(plain[plain.source == "generated"]) == 10
    # the judge saw the plain instruction (as the trained vector will), never the steering request
    assert {i for _, i, _ in judge.asked} <= set(instr.instruction) | {"Say hi."}
    # a row's recorded rating is the judge's rule on its response; a row without one (its first attempt
    # failed the keyword or echo filter and none reached the bar) is not kept; kept rows reached the bar
    rated = written[written.concept_rating.notna()]
    assert rated.concept_rating.astype(int).tolist() == [rule(r) for r in rated.response]
    assert not written[written.concept_rating.isna()].keep.any()
    assert (written[written.keep].concept_rating == 2).all()
    # a row is kept exactly when one of its instruction's attempts reached the bar (recomputed from the
    # ratings given to each attempt), and then the kept one is the densest of those
    attempts = {}
    for c, i, r in judge.asked:
        attempts.setdefault((c, i), []).append(r)
    assert 0 < written.keep.sum() < len(written), "the draw should give both kept and refused rows"
    for row in written.itertuples():
        best = [r for r in attempts[(row.concept, row.instruction)] if rule(r) == 2]
        assert bool(row.keep) == bool(best)
    # the exemplar is rated (once "the": 1) and kept whatever it gets; an unjudged writer rates nothing
    exemplar = judged[judged.source == "exemplar"]
    assert exemplar.concept_rating.tolist() == [1.0] and bool(exemplar.keep.all())
    assert plain.concept_rating.isna().all()


def test_a_concepts_responses_do_not_depend_on_the_concepts_written_beside_it(tiny_model, tokenizer):
    """One data job per split: a concept written alone gets the rows it gets beside another concept
    (its draws are keyed by concept, instruction and attempt, not by its place in the call). One prompt
    per batch, so that no batch changes shape between the two calls."""
    instr = pd.DataFrame({"instruction_id": range(5), "instruction": [f"Tell me about day {i}." for i in range(5)]})
    kw = dict(per_concept=3, max_new_tokens=6, seed=4, batch_size=1, progress=False, attempts=2, temperature=1.0)
    both = W.write_concept_responses(tiny_model, tokenizer, concepts(), instr, **kw)
    for cid in (3, 7):
        alone = W.write_concept_responses(tiny_model, tokenizer, concepts()[concepts().concept_id == cid], instr, **kw)
        pd.testing.assert_frame_equal(alone, both[both.concept_id == cid].reset_index(drop=True))
    # and the draws are the row's own: the same instruction under the two concepts is sampled differently
    assert len(set(both.response)) == len(both)


def test_without_neutral_responses_the_concept_responses_stay_the_same(tiny_model, tokenizer):
    """`neutral=False` (no simpo loss configured) skips the greedy neutral answers and changes nothing else."""
    instr = pd.DataFrame({"instruction_id": range(4), "instruction": [f"Tell me about day {i}." for i in range(4)]})
    ex = pd.DataFrame({"concept_id": [3], "instruction": ["Say hi."], "response": ["Hi from the owl."]})
    kw = dict(per_concept=3, max_new_tokens=6, seed=1, batch_size=4, progress=False, exemplars=ex, attempts=2)
    full = W.write_concept_responses(tiny_model, tokenizer, concepts(), instr, **kw)
    lean = W.write_concept_responses(tiny_model, tokenizer, concepts(), instr, neutral=False, **kw)
    assert full.neutral_response.notna().all() and lean.neutral_response.isna().all()
    pd.testing.assert_frame_equal(lean.drop(columns="neutral_response"), full.drop(columns="neutral_response"))


def test_attempt_ids_are_distinct_and_below_the_span_for_our_data():
    """Every (concept, instruction, attempt) of data/ at the default's 3 attempts gets its own id, below
    the span that separates one seed's random streams from the next seed's."""
    import json
    from pathlib import Path

    from prosv.generation import SAMPLE_ID_SPAN

    data = Path(__file__).resolve().parents[1] / "data"
    concepts = [json.loads(line)["concept_id"] for line in (data / "concepts.jsonl").read_text().splitlines()]
    ids = [
        json.loads(line)["instruction_id"] for line in (data / "instructions" / "train.jsonl").read_text().splitlines()
    ]
    span = max(ids) + 1
    keys = [(c, i, a) for c in concepts for i in ids for a in range(3)]
    drawn = {W.attempt_sample_id(c, i, a, 3, span) for c, i, a in keys}
    assert len(drawn) == len(keys) and max(drawn) < SAMPLE_ID_SPAN
