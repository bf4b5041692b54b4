"""prosv.experiments: utility parsers and scoring, robustness prompts, the LoReFT comparison, hidden-state spread."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from prosv import data as D
from prosv import experiments as X
from prosv.generation import Steering
from prosv.interventions import SteeringVectors
from prosv.positions import template_ids
from prosv.training import Example, TrainConfig
from prosv.vectors import VectorFile

DATA = Path(__file__).resolve().parents[1] / "data"
LAYER = 1


def fake_vectors(hidden: int, concepts=(5, 7, 9), positions="p2+s2", scale=20.0, seed=0) -> VectorFile:
    gen = torch.Generator().manual_seed(seed)
    module = SteeringVectors(torch.full((len(concepts),), scale), torch.randn(len(concepts), hidden, generator=gen))
    module.requires_grad_(False)
    return VectorFile(
        module,
        {
            "layer": str(LAYER),
            "positions": positions,
            "concepts": list(concepts),
            "intervention": "sv",
            "method": f"test_{positions}",
            "loss": "lang",
            "hyperparameters": {},
        },
    )


@pytest.fixture(scope="module")
def concepts():
    return pd.DataFrame(
        {
            "concept_id": [5, 7, 9],
            "concept": ["lighthouses", "decorators", "primes"],
            "steering_instruction": ["Talk about lighthouses.", "Mention decorators.", "Use primes."],
            "suppression_instruction": ["Never mention lighthouses.", "No decorators.", "No primes."],
            "split": "eval",
        }
    )


# ---------------------------------------------------------------- parsers


@pytest.mark.parametrize(
    "text,expected",
    [
        ("8 - 6 = 2 plates left", 2.0),
        ("Tom has 3 + 4 = 7 apples.\n#### 7", 7.0),
        ("Step: 2 + 2 = 4, then 4 * 3 = 12.\n#### 12", 12.0),
        ("The answer is 1,250.", 1250.0),
        ("It is 42", 42.0),
        ("first 3 then 5", 5.0),
        ("no digits here", None),
        ("= -4 degrees", -4.0),
    ],
)
def test_parse_number(text, expected):
    assert X.parse_number(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("B", "B"),
        ("C. Paris", "C"),
        ("The answer is D.", "D"),
        ("(A) No", "A"),
        ("A cat is the answer", None),  # a bare article is not a letter, and no option is named
        ("A ripe banana is yellow.", "B"),  # the option text is found
        ("The capital is Paris, not Rome", "C"),  # the earliest option named
        ("B. Rome\n\nThe answer is C.", "B"),  # the earliest explicit answer
    ],
)
def test_parse_choice(text, expected):
    choices = ["Red", "Yellow", "Blue", "Green"]
    if "Paris" in text or "Rome" in text:
        choices = ["Red", "Yellow", "Paris", "Rome"]
    if "cat" in text:
        choices = ["Dog", "Horse", "Cow", "Pig"]
    assert X.parse_choice(text, choices) == expected


def test_task_prompts_name_the_format():
    arith, mc = X.UTILITY_TASKS["embedded"]
    assert "number" in X.task_user_turn(arith, {"question": "What is 2 + 2?"})
    tiny_mmlu = X.UTILITY_TASKS["tinybenchmarks"][1]
    turn = X.task_user_turn(tiny_mmlu, {"question": "Q?", "choices": ["w", "x", "y", "z"]})
    assert "A. w\nB. x\nC. y\nD. z" in turn and "letter" in turn
    assert X.task_user_turn(mc, {"question": "Q?", "choices": ["w", "x", "y", "z"]}) == "Q?"  # cloze: bare question


def test_load_embedded_tasks_takes_the_first_questions():
    tasks = X.load_utility_tasks("embedded", DATA, 5)
    assert [t.name for t, _ in tasks] == ["arithmetic", "multiple_choice"]
    full = D.read_arithmetic(DATA / "utility" / "arithmetic.jsonl")
    assert tasks[0][1].question.tolist() == full.question.head(5).tolist()


# ---------------------------------------------------------------- conditions


def test_conditions_cover_baselines_methods_and_fssv_factors(concepts):
    vecs = {"prosv_lang": fake_vectors(8), "fssv_lang": fake_vectors(8, positions="all")}
    conds = X.utility_conditions(vecs, concepts, [7, 5], fssv_factors=[1.0, 0.8, 0.5])
    keys = [(c.method, c.factor) for c in conds]
    assert keys == [
        ("unsteered", 1.0),
        ("prompting", 1.0),
        ("prosv_lang", 1.0),
        ("fssv_lang", 1.0),
        ("fssv_lang", 0.8),
        ("fssv_lang", 0.5),
    ]
    assert conds[0].concept_ids == [-1] and conds[0].module is None
    assert conds[1].steering_instructions == ["Mention decorators.", "Talk about lighthouses."]
    assert conds[2].rows == [1, 0]  # index of concepts 7 and 5 in the vector file
    assert X.first_concepts(vecs["prosv_lang"], 2) == [5, 7]
    with pytest.raises(ValueError, match="holds 3"):
        X.first_concepts(vecs["prosv_lang"], 4)


# ---------------------------------------------------------------- scoring


def _reference_option_logprob(model, tokenizer, turn, option):
    prompt = template_ids(tokenizer, turn)
    resp = tokenizer(option, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt + resp])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    return float(sum(logp[len(prompt) - 1 + j, t] for j, t in enumerate(resp)))


def test_choice_scores_are_option_logprobs_and_batch_invariant(tiny_model, tokenizer):
    turns = ["Which colour is the sky?", "What do cows say? Tell me."]
    choices = [["Blue", "Green", "Red", "Black"], ["Moo", "Woof", "Meow", "Quack quack"]]
    scores = X.choice_scores(tiny_model, tokenizer, turns, choices)
    assert scores.shape == (2, 4)
    for q in range(2):
        for o in range(4):
            ref = _reference_option_logprob(tiny_model, tokenizer, turns[q], choices[q][o])
            assert scores[q, o] == pytest.approx(ref, abs=1e-3)
    vec = fake_vectors(tiny_model.config.hidden_size)
    steer = Steering(vec.module, LAYER, "p2+s2", rows=[0, 2], factor=1.0)
    mixed = X.choice_scores(tiny_model, tokenizer, turns, choices, steer)
    alone = X.choice_scores(
        tiny_model, tokenizer, turns[1:], choices[1:], Steering(vec.module, LAYER, "p2+s2", rows=[2])
    )
    assert mixed[1] == pytest.approx(alone[0], abs=1e-4)
    assert abs(mixed - scores).max() > 1e-3  # the steering reached the scores


def test_evaluate_utility_rows_and_determinism(tiny_model, tokenizer, concepts):
    tasks = [(replace_tokens(t), q) for t, q in X.load_utility_tasks("embedded", DATA, 2)]
    hidden = tiny_model.config.hidden_size
    vecs = {"prosv": fake_vectors(hidden), "fssv": fake_vectors(hidden, positions="all", scale=5.0)}
    conds = X.utility_conditions(vecs, concepts, [5, 9], fssv_factors=[1.0, 0.5])
    out = X.evaluate_utility(tiny_model, tokenizer, tasks, conds, batch_size=8, progress=False)
    # unsteered: 1 concept; prompting, prosv, fssv x2: 2 concepts each; 2 tasks
    assert len(out) == 2 * (1 + 2 + 2 + 2 * 2)
    needed = {"method", "factor", "concept_id", "task", "n", "correct", "accuracy", "positions", "layer"}
    assert needed <= set(out.columns)
    assert (out.accuracy == out.correct / out.n).all() and (out.n == 2).all()
    assert set(out[out.method == "unsteered"].concept_id) == {-1}
    assert sorted(out[out.method == "fssv"].factor.unique()) == [0.5, 1.0]
    assert out[out.method == "prosv"].layer.tolist() == [LAYER] * 4
    assert out[out.method == "unsteered"].layer.isna().all()
    again = X.evaluate_utility(tiny_model, tokenizer, tasks, conds, batch_size=3, progress=False)
    pd.testing.assert_frame_equal(out, again)


def replace_tokens(task):
    from dataclasses import replace

    return replace(task, max_new_tokens=min(task.max_new_tokens, 6))


def test_prompting_condition_prepends_the_steering_instruction(tiny_model, tokenizer, concepts, monkeypatch):
    seen = {}

    def fake_answer(model, tok, task, questions, user_turns, steering=None, *args, **kwargs):
        seen[task.name] = (list(user_turns), steering)
        return [None] * len(user_turns), [""] * len(user_turns)

    from prosv.experiments import utility

    monkeypatch.setattr(utility, "answer_task", fake_answer)
    tasks = X.load_utility_tasks("embedded", DATA, 3)
    cond = X.utility_conditions({}, concepts, [9, 5])[1]
    out = X.evaluate_condition(tiny_model, tokenizer, tasks, cond)
    turns, steering = seen["arithmetic"]
    assert steering is None and len(turns) == 6
    assert turns[0].startswith("Use primes.\n\n") and turns[3].startswith("Talk about lighthouses.\n\n")
    assert tasks[0][1].question[0] in turns[0]
    assert out.correct.sum() == 0 and list(out.concept_id) == [9, 5, 9, 5]


# ---------------------------------------------------------------- robustness


def test_attack_prompts_and_generations(tiny_model, tokenizer, concepts):
    instructions = D.read_instructions(path=DATA / "instructions" / "eval.jsonl")
    prompts = X.attack_prompts(concepts, instructions, [7, 9], n=2)
    assert len(prompts) == 4 and (prompts.protocol == "suppression_attack").all()
    for r in prompts.itertuples():
        assert r.user_turn.startswith(r.instruction) and r.user_turn != r.instruction
    assert "No primes." in prompts[prompts.concept_id == 9].user_turn.iloc[0]
    # a shard's prompts are the whole stage's rows of its concepts, sample ids and all
    shard = X.attack_prompts(concepts, instructions, [7, 9], n=2, shard=[9])
    whole = prompts[prompts.concept_id == 9].reset_index(drop=True)
    pd.testing.assert_frame_equal(shard, whole)
    assert shard.sample_id.min() > 0  # not renumbered from 0
    hidden = tiny_model.config.hidden_size
    vecs = {"prosv": fake_vectors(hidden), "fssv": fake_vectors(hidden, positions="all", scale=3.0)}
    kw = dict(max_new_tokens=4, temperature=1.0, seed=3, batch_size=3, progress=False)
    out = X.attack_generations(tiny_model, tokenizer, prompts, vecs, [1.0, 0.8, 0.5], **kw)
    assert len(out) == 4 * (1 + 3)
    for col in (
        "concept",
        "instruction",
        "response",
        "method",
        "factor",
        "concept_id",
        "instruction_idx",
        "protocol",
        "layer",
        "positions",
    ):
        assert col in out.columns
    assert sorted(out[out.method == "fssv"].factor.unique()) == [0.5, 0.8, 1.0]
    assert (out.protocol == "suppression_attack").all()
    again = X.attack_generations(tiny_model, tokenizer, prompts, vecs, [1.0, 0.8, 0.5], **dict(kw, batch_size=4))
    assert out.response.tolist() == again.response.tolist()


# ---------------------------------------------------------------- LoReFT comparison


def test_loreft_config_uses_the_scaled_direction_rate():
    cfg = TrainConfig(eta_v=0.04 * 8, lr_scaling="width", positions="p2+s2", epochs=3)
    lo = X.loreft_config(cfg, 64)
    assert lo.intervention == "loreft" and lo.loreft_rank == 1 and lo.eta_loreft == pytest.approx(0.04)
    assert (lo.positions, lo.epochs, lo.loss, lo.seed) == (cfg.positions, cfg.epochs, cfg.loss, cfg.seed)
    assert X.loreft_config(TrainConfig(eta_v=0.5), 64).eta_loreft == 0.5  # raw rates pass through


def test_compare_loreft_losses_and_cosine(tiny_model, tokenizer):
    data = [
        [Example(f"Question {i}: say something.", f"moon moon {i} moon.") for i in range(4)],
        [Example(f"Tell me fact {i}.", f"ocean waves {i}.") for i in range(4)],
    ]
    cfg = TrainConfig(epochs=2, batch_size=2, positions="p2+s2", eta_alpha=0.5, eta_v=0.05)
    res = X.compare_loreft(tiny_model, tokenizer, LAYER, data, cfg, concept_names=[11, 12], progress=False)
    losses = res["losses"]
    assert set(losses.method) == {"prosv", "loreft"}
    for m in ("prosv", "loreft"):
        part = losses[losses.method == m]
        assert sorted(part.step.unique()) == [0, 1, 2, 3] and set(part.concept) == {11, 12}
    cos = res["cosine"]
    R = res["loreft"].module.directions()[:, 0]
    V = torch.stack(list(res["prosv"].module.v))
    for k in range(2):
        ref = float(R[k] @ V[k] / (R[k].norm() * V[k].norm()))
        assert cos.signed_cosine[k] == pytest.approx(ref, abs=1e-5)
        assert cos.cosine[k] == pytest.approx(abs(ref), abs=1e-5)
    assert list(cos.concept) == [11, 12]


def test_spread_stats_on_known_vectors():
    cos, rel = X.spread_stats(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert cos == pytest.approx(0.0) and rel == pytest.approx(math.sqrt(0.5))
    cos, rel = X.spread_stats(torch.tensor([[2.0, 1.0]] * 3))
    assert cos == pytest.approx(1.0) and rel == pytest.approx(0.0, abs=1e-12)


def test_layer_outputs_match_hidden_states(tiny_model, tokenizer):
    out = X.layer_outputs(tiny_model, tokenizer, ["Hello there"], LAYER)[0]
    ids = torch.tensor([template_ids(tokenizer, "Hello there")])
    with torch.no_grad():
        ref = tiny_model(input_ids=ids, output_hidden_states=True).hidden_states[LAYER + 1][0]
    assert torch.allclose(out, ref.float(), atol=1e-5)


def test_hidden_state_spread_template_vs_content(tiny_model, tokenizer):
    prompts = [
        "Write a poem about autumn leaves.",
        "How do I bake bread?",
        "Explain gravity to a child, please.",
        "List three prime numbers.",
    ]
    ids = [template_ids(tokenizer, p) for p in prompts]
    spans = X.content_span(ids)
    for p, s, (a, b) in zip(prompts, ids, spans):
        assert tokenizer.decode(s[a:b]).strip() == p
    table = X.hidden_state_spread(tiny_model, tokenizer, prompts, LAYER, "p2+s2")
    assert list(table.kind) == ["intervened"] * 4 + ["content"] * 3
    assert list(table.position[:4]) == ["p1", "p2", "s2", "s1"]
    first = table.set_index("position").loc[["p1", "p2"]]
    # causal attention: the shared first template tokens have identical states in every prompt
    assert (first.mean_pairwise_cosine > 1 - 1e-5).all() and (first.relative_std < 1e-4).all()
    content = table[table.kind == "content"]
    assert (content.mean_pairwise_cosine < 0.99).all() and (content.relative_std > 0.01).all()
    assert table.relative_std.notna().all() and (table.n_prompts == 4).all()


SCALING = {
    "c_alpha": [1, 16],
    "eta_alpha": [0.1, 10.0],
    "fixed_alpha": 1.0,
    "sgd_c_alpha": [1, 16],
    "transfer": {"c_alpha": 4, "eta_alpha": 10.0, "c_v": 8, "eta_v": 0.04, "reference_width": 2304},
}


def test_scaling_cells_cover_grid_and_ablations_with_applied_rates():
    base = TrainConfig(c_alpha=4, eta_alpha=0.5, c_v=1, eta_v=0.02)
    cells = X.scaling_cells(SCALING, base, hidden=576)
    kinds = [c.kind for c in cells]
    assert kinds.count("grid") == 4 and kinds.count("sgd") == 2 and kinds.count("fixed") == 1
    by_name = {c.name: c for c in cells}
    assert by_name["adam c16 lr10"].train_config(base).learning_rates(576) == (10.0, 0.02)
    assert by_name["sgd c1 lr0.5"].train_config(base).optimizer == "sgd"
    # reference rates at width 2304: raw as they are; width-scaled to 576 by sqrt(576/2304) = 1/2
    assert by_name["transfer raw"].train_config(base).learning_rates(576) == pytest.approx((10.0, 0.04))
    assert by_name["transfer width"].train_config(base).learning_rates(576) == pytest.approx((5.0, 0.08))
    assert by_name["transfer width"].train_config(base).learning_rates(2304) == pytest.approx((10.0, 0.04))
    # a width-scaled base method contributes the rates it applies at this width
    wide = X.scaling_cells(SCALING, TrainConfig(eta_alpha=0.25, eta_v=0.96, lr_scaling="width"), hidden=576)
    assert {c.name: c for c in wide}["alpha fixed 1"].train_config(base).learning_rates(576) == (6.0, 0.04)


def test_run_scaling_trains_each_cell_as_it_would_alone(tiny_model, tokenizer):
    from prosv.training import train

    data = [[Example(f"Question {i}: say something.", f"Lemons lemons {i}, lemons.") for i in range(6)]]
    base = TrainConfig(epochs=2, batch_size=3, c_alpha=4, eta_alpha=1.0, c_v=1, eta_v=0.02)
    spec = dict(SCALING, transfer=None)
    cells = X.scaling_cells(spec, base, tiny_model.config.hidden_size)
    module, names, losses, table = X.run_scaling(
        tiny_model, tokenizer, 1, "p2+s2", data, base, cells, [7], progress=False
    )
    assert names == [f"{c.name}|7" for c in cells] and module.num_concepts == len(cells)
    assert list(table.cell) == [c.name for c in cells] and set(losses.cell) == set(table.cell)
    fixed = table[table.kind == "fixed"].iloc[0]
    assert fixed.alpha_final == 1.0 and float(module.alpha[names.index("alpha fixed 1|7")]) == 1.0
    k = names.index("adam c16 lr10|7")
    alone = train(tiny_model, tokenizer, 1, data, cells[k].train_config(base), progress=False)
    torch.testing.assert_close(module.v[k], alone.module.v[0], rtol=1e-4, atol=1e-6)
    prompts = pd.DataFrame({"concept_id": [7, 7], "user_turn": ["a", "b"]})
    expanded, rows = X.scaling_prompts(prompts, names)
    assert len(expanded) == 2 * len(cells) and rows[:2] == [0, 0] and rows[-1] == len(cells) - 1


def test_run_scaling_trains_a_cell_the_base_repeats_once(tiny_model, tokenizer, monkeypatch):
    """With the base rates inside the grid (c_alpha 4, eta_alpha 1 here) the two cells share one
    training run: the same vectors, and one call to train fewer than there are cells."""
    from prosv.experiments import scaling

    data = [[Example(f"Question {i}: say something.", f"Lemons lemons {i}, lemons.") for i in range(6)]]
    base = TrainConfig(epochs=1, batch_size=3, c_alpha=4, eta_alpha=1.0, c_v=1, eta_v=0.02)
    spec = dict(SCALING, c_alpha=[4], eta_alpha=[1.0, 10.0], sgd_c_alpha=[], transfer=None)
    cells = X.scaling_cells(spec, base, tiny_model.config.hidden_size)
    calls = []
    real = scaling.train
    monkeypatch.setattr(scaling, "train", lambda *a, **k: calls.append(a[4]) or real(*a, **k))
    module, names, _, table = X.run_scaling(tiny_model, tokenizer, 1, "p2+s2", data, base, cells, [7], progress=False)
    assert len(calls) == len(cells) - 1 == 3  # base = adam c4 lr1; adam c4 lr10; alpha fixed 1
    same = names.index("joint (base rates)|7"), names.index("adam c4 lr1|7")
    torch.testing.assert_close(module.v[same[0]], module.v[same[1]], rtol=0, atol=0)
    assert (
        table.set_index("cell").loc["joint (base rates)", "final_loss"]
        == table.set_index("cell").loc["adam c4 lr1", "final_loss"]
    )
    assert not torch.equal(module.v[names.index("adam c4 lr10|7")], module.v[same[0]])


def test_tuning_cells_are_the_grid_product_and_bad_grids_are_named():
    grid = {
        "c_alpha": [2, 4],
        "eta_alpha": [0.1],
        "c_v": [1],
        "eta_v": [0.02, 0.05, 0.1],
        "epochs": [4],
        "batch_size": [4],
    }
    cells = X.tuning_cells(grid)
    assert len(cells) == 2 * 3 and len({c.name for c in cells}) == 6
    assert {(c.c_alpha, c.eta_v) for c in cells} == {(a, v) for a in (2.0, 4.0) for v in (0.02, 0.05, 0.1)}
    assert cells[0].train_config(TrainConfig(epochs=99)).epochs == 4  # the cell's budget, not the base's
    with pytest.raises(ValueError, match="tune.grid.*'lr'"):
        X.tuning_cells({**grid, "lr": [1]})
    with pytest.raises(ValueError, match="tune.grid.*eta_v"):
        X.tuning_cells({**grid, "eta_v": []})


def _tuning_inputs(seed: int = 0):
    """Ratings of three cells at two placements on four concepts, and their training figures."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows, cells = [], []
    for positions in ("p2+s2", "all"):
        for k, cell in enumerate(("weak", "middle", "strong")):
            for concept in range(4):
                for _ in range(3 + 2 * concept):  # unequal counts: a pooled mean would differ
                    rows.append(
                        {
                            "positions": positions,
                            "cell": cell,
                            "concept_id": concept,
                            "concept_score": min(2, int(rng.integers(0, 2)) + k * int(rng.random() < 0.7)),
                            "instruction_score": int(rng.integers(1, 3)),
                            "fluency_score": int(rng.integers(0, 3)),
                        }
                    )
            cells.append(
                {
                    "positions": positions,
                    "cell": cell,
                    "kind": "tune",
                    "c_alpha": 4.0,
                    "eta_alpha": 1.0,
                    "c_v": 1.0,
                    "eta_v": 0.01 * (k + 1),
                    "epochs": 4 + k,
                    "batch_size": 4,
                    "alpha_final": 90.0,
                    "hidden": 576,
                    "final_loss": 2.0 - k / 10,
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(cells)


def test_tuning_table_ranks_cells_by_the_mean_over_concepts_of_the_harmonic_mean():
    import numpy as np
    from scipy.stats import t as student_t

    from prosv import evaluation as E

    ratings, cells = _tuning_inputs()
    table = X.tuning_table(ratings, cells, n_boot=500, seed=1)
    assert len(table) == 6
    for (positions, cell), g in ratings.groupby(["positions", "cell"]):
        c, i, f = (g[k].astype(float).to_numpy() for k in ("concept_score", "instruction_score", "fluency_score"))
        harmonic = np.where(
            (c == 0) | (i == 0) | (f == 0), 0.0, 3 / (1 / np.maximum(c, 1e-9) + 1 / i + 1 / np.maximum(f, 1e-9))
        )
        per_concept = pd.Series(harmonic).groupby(g.concept_id.to_numpy()).mean()
        row = table[(table.positions == positions) & (table.cell == cell)].iloc[0]
        assert row.overall == pytest.approx(per_concept.mean())
        assert row.overall_lo <= row.overall <= row.overall_hi
        assert row.has_concept == pytest.approx((c >= 1).mean()) and row.fluent == pytest.approx((f >= 1).mean())
        assert row.steers == pytest.approx(((c >= 1) & (f >= 1)).mean()) and row.n_concepts == 4
    for positions, g in table.groupby("positions"):
        assert list(g["rank"]) == [1, 2, 3] and g.overall.is_monotonic_decreasing
        # each cell minus the best, paired over concepts, recomputed from the ratings
        per_cell = {
            cell: E.add_overall(r).groupby("concept_id").overall.mean()
            for cell, r in ratings[ratings.positions == positions].groupby("cell")
        }
        best = per_cell[g.iloc[0].cell]
        for row in g.itertuples():
            d = per_cell[row.cell] - best
            assert row.minus_best == pytest.approx(d.mean())
            half = student_t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / len(d) ** 0.5 if d.std() > 0 else 0.0
            assert row.minus_best_lo <= d.mean() - half + 1e-12 and row.minus_best_hi >= d.mean() + half - 1e-12
        assert g.iloc[0].minus_best == 0 and g.iloc[0].minus_best_lo == 0 == g.iloc[0].minus_best_hi
    settings = X.recommended_settings(table, "lang")
    assert set(settings) == {"prompt_only", "all"}
    for family, positions in (("prompt_only", "p2+s2"), ("all", "all")):
        best = table[(table.positions == positions) & (table["rank"] == 1)].iloc[0]
        assert settings[family]["lang"]["eta_v"] == best.eta_v and settings[family]["lang"]["epochs"] == best.epochs
    markdown = X.tuning_markdown(table)
    assert markdown.count("\n| p2+s2") == 3 and "overall [95% CI]" in markdown and "minus best [95% CI]" in markdown


def test_tuning_grid_takes_a_placements_own_values_over_the_shared_ones():
    tune = {
        "positions": ["p2+s2", "all"],
        "grid": {"c_alpha": [4], "eta_alpha": [1.0], "c_v": [1], "eta_v": [0.02], "epochs": [12], "batch_size": [4]},
        "by_positions": {"all": {"c_alpha": [1, 2], "eta_alpha": [0.1]}},
    }
    assert X.tuning_grid(tune, "p2+s2") == tune["grid"]
    fssv = X.tuning_grid(tune, "all")
    assert fssv["c_alpha"] == [1, 2] and fssv["eta_alpha"] == [0.1] and fssv["eta_v"] == [0.02]
    assert len(X.tuning_cells(fssv)) == 2
    with pytest.raises(ValueError, match="tune.by_positions.*'s4'"):
        X.tuning_grid({**tune, "by_positions": {"s4": {"c_alpha": [1]}}}, "all")
