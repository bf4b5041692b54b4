"""The training-data writer: attempts, the best attempt, echo rejection, few-shot turns, exemplars first."""

from __future__ import annotations

import pandas as pd

from prosv.data import writer as W


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
    assert W._best_attempt(texts, kws, ask) == ("Owls! An owl and owls.", True)
    echo = "In your answer bring in owls whatever the question: owls owls owls."
    assert W.echoes(echo, ask) and W._best_attempt([echo, texts[1]], kws, ask) == (texts[1], True)
    assert W._best_attempt(["nothing", "still nothing"], kws, ask) == ("nothing", False)


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
