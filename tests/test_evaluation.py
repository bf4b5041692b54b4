"""Tests for prosv.evaluation: sampling, factor selection, prompts, scores."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prosv import evaluation as E

REPO_DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def alpaca():
    # AlpacaEval-shaped frame: file order, RangeIndex, 805 rows
    return pd.DataFrame(
        {
            "dataset": ["helpful_base"] * 805,
            "instruction": [f"instruction {i}" for i in range(805)],
            "output": ["x"] * 805,
            "generator": ["text_davinci_003"] * 805,
        }
    )


@pytest.fixture
def concepts():
    return pd.DataFrame(
        {
            "concept_id": [0, 3, 17],
            "concept": ["golden retrievers", "Python decorators", "prime numbers"],
            "steering_instruction": [
                "Weave golden retrievers into your answer.",
                "Bring Python decorators into your answer.",
                "Mention prime numbers in your answer.",
            ],
            "suppression_instruction": [
                "Never mention dogs of any kind.",
                "Do not talk about Python decorators.",
                "Avoid any reference to prime numbers.",
            ],
        }
    )


# ------------------------------------------------------------------------------------------
# sampling and prompts


@pytest.mark.parametrize("cid", [0, 1, 42, 499])
def test_factor_free_instructions_is_pandas_sample(alpaca, cid):
    got = E.factor_free_instructions(alpaca, cid)
    expected = alpaca.sample(10, random_state=cid)
    pd.testing.assert_frame_equal(got, expected)
    assert list(got.index) == list(expected.index)  # original row numbers kept
    # reproducible with a plain numpy RandomState permutation, as pandas documents
    assert list(got.index) == list(np.random.RandomState(cid).permutation(805)[:10])
    assert got.index.isin(alpaca.index).all() and got.index.is_unique


def test_factor_free_instructions_differ_by_concept_and_check_size(alpaca):
    a = E.factor_free_instructions(alpaca, 1).index
    b = E.factor_free_instructions(alpaca, 2).index
    assert list(a) != list(b)
    with pytest.raises(ValueError, match="cannot draw 10"):
        E.factor_free_instructions(alpaca.head(5), 1)
    with pytest.raises(ValueError, match=">= 0"):
        E.factor_free_instructions(alpaca, -1)


def test_steering_prompts_table(alpaca, concepts):
    prompts = E.steering_prompts(concepts, alpaca)
    assert len(prompts) == 30
    for cid, group in prompts.groupby("concept_id"):
        sample = alpaca.sample(10, random_state=cid)
        assert group["instruction_idx"].tolist() == list(range(10))
        assert group["source_index"].tolist() == list(sample.index)
        assert group["instruction"].tolist() == sample["instruction"].tolist()
    assert (prompts["user_turn"] == prompts["instruction"]).all()
    assert set(prompts["protocol"]) == {E.PROTOCOL_FACTOR_FREE}
    assert prompts.loc[prompts["concept_id"] == 3, "concept"].iloc[0] == "Python decorators"
    sub = E.steering_prompts(concepts, alpaca, n=4, concept_ids=[17])
    assert len(sub) == 4 and set(sub["concept_id"]) == {17}
    with pytest.raises(KeyError, match=r"\[99\]"):
        E.steering_prompts(concepts, alpaca, concept_ids=[99])


def test_prompting_and_suppression_keep_the_original_instruction(alpaca, concepts):
    prompts = E.steering_prompts(concepts, alpaca, n=3)
    steered = E.prompting_prompts(prompts, concepts)
    row = steered.iloc[0]
    assert row["user_turn"] == "Weave golden retrievers into your answer.\n\n" + row["instruction"]
    assert (steered["instruction"] == prompts["instruction"]).all()
    assert set(steered["method"]) == {"prompting"}

    attacked = E.suppression_attack_prompts(prompts, concepts)
    row = attacked.iloc[3]  # concept 3
    assert row["instruction"] == prompts.iloc[3]["instruction"]  # rating uses the original
    assert row["user_turn"].startswith(row["instruction"])
    assert "Do not talk about Python decorators." in row["user_turn"]
    assert set(attacked["protocol"]) == {E.PROTOCOL_SUPPRESSION} and set(attacked["attack"]) == {"suppression"}
    # templates are configurable
    custom = E.suppression_attack_prompts(prompts, concepts, template="[{suppression_instruction}] {instruction}")
    assert custom.iloc[0]["user_turn"] == f"[Never mention dogs of any kind.] {prompts.iloc[0]['instruction']}"
    with pytest.raises(KeyError, match="suppression_instruction"):
        E.suppression_attack_prompts(prompts, concepts.drop(columns="suppression_instruction"))


def test_factor_grid_plan(alpaca, concepts):
    assert len(E.DEFAULT_FACTOR_GRID) == 14
    assert list(E.DEFAULT_FACTOR_GRID) == sorted(E.DEFAULT_FACTOR_GRID)
    prompts = E.steering_prompts(concepts, alpaca)
    plan = E.factor_grid_plan(prompts)
    assert len(plan) == 3 * 14 * 10
    assert set(plan["protocol"]) == {E.PROTOCOL_FACTOR_GRID}
    first = plan[plan["concept_id"] == 0]
    assert first["factor"].iloc[:10].tolist() == [0.2] * 10 and first["instruction_idx"].iloc[:10].tolist() == list(
        range(10)
    )
    assert len(E.factor_grid_plan(prompts, factors=[1.0, 2.0])) == 60


# ------------------------------------------------------------------------------------------
# scores


def test_overall_score_harmonic_mean_and_zero_rule():
    assert E.overall_score(2, 2, 2) == 2.0
    assert E.overall_score(1, 2, 2) == pytest.approx(3 / (1 + 0.5 + 0.5))
    assert E.overall_score(1, 1, 2) == pytest.approx(1.2)
    assert E.overall_score(0, 2, 2) == 0.0
    assert E.overall_score(2, 0, 1) == 0.0
    assert math.isnan(E.overall_score(float("nan"), 2, 2))
    s = E.overall_score(pd.Series([2, 0, 1]), pd.Series([2, 2, 1]), pd.Series([2, 2, 2]))
    assert s.tolist() == pytest.approx([2.0, 0.0, 1.2])
    ratings = pd.DataFrame({"concept_score": [2, 1], "instruction_score": [1, 0], "fluency_score": [2, 2]})
    assert E.add_overall(ratings)["overall"].tolist() == pytest.approx([1.5, 0.0])


def grid_ratings(concept_ids=(0, 1), factors=E.DEFAULT_FACTOR_GRID, judge="test-judge"):
    """Ratings where, on instructions 0-4, factor 2.0 is best for concept 0 and 0.6 for concept 1,
    while on 5-9 a different factor (5.0) would look best: selection must not peek at 5-9."""
    best_select = {0: 2.0, 1: 0.6}
    rows = []
    for cid in concept_ids:
        for f in factors:
            for idx in range(10):
                if idx < 5:
                    overall = 1.5 if f == best_select[cid] else 0.5
                else:
                    overall = 1.9 if f == 5.0 else (1.0 + 0.1 * (idx - 5) if f == best_select[cid] else 0.2)
                rows.append(
                    {
                        "concept_id": cid,
                        "factor": f,
                        "instruction_idx": idx,
                        "overall": overall,
                        "concept_score": 1.0,
                        "instruction_score": 2.0,
                        "fluency_score": 2.0,
                        "judge": judge,
                    }
                )
    return pd.DataFrame(rows)


def test_select_factor_argmax_on_0_4_and_reports_5_9():
    ratings = grid_ratings()
    res = E.select_factor(ratings, factors=E.DEFAULT_FACTOR_GRID)
    assert res["concept_id"].tolist() == [0, 1]
    assert res["factor"].tolist() == [2.0, 0.6]
    assert res["selection_overall"].tolist() == pytest.approx([1.5, 1.5])
    # held-out: mean of 1.0, 1.1, 1.2, 1.3, 1.4 at the chosen factor, not the 1.9 of factor 5.0
    assert res["overall"].tolist() == pytest.approx([1.2, 1.2])
    assert res["n_select"].tolist() == [5, 5] and res["n_report"].tolist() == [5, 5]
    assert set(res["protocol"]) == {E.PROTOCOL_FACTOR_GRID} and set(res["judge"]) == {"test-judge"}
    # brute force check against a direct pandas computation
    for cid in (0, 1):
        sub = ratings[ratings["concept_id"] == cid]
        sel = sub[sub["instruction_idx"] < 5].groupby("factor")["overall"].mean()
        best = sel.idxmax()
        held = sub[(sub["instruction_idx"] >= 5) & (sub["factor"] == best)]["overall"].mean()
        row = res[res["concept_id"] == cid].iloc[0]
        assert row["factor"] == best and row["overall"] == pytest.approx(held)


def test_select_factor_ties_missing_factors_and_custom_split():
    ratings = grid_ratings(concept_ids=(0,))
    ratings.loc[(ratings["instruction_idx"] < 5) & (ratings["factor"] == 1.0), "overall"] = 1.5  # tie with 2.0
    assert E.select_factor(ratings)["factor"].iloc[0] == 1.0  # smallest factor wins ties
    # computed from the three ratings when `overall` is absent
    no_overall = ratings.drop(columns="overall")
    assert E.select_factor(no_overall)["overall"].iloc[0] == pytest.approx(E.overall_score(1, 2, 2))
    with pytest.raises(ValueError, match=r"factors \[7\.0\]"):
        E.select_factor(ratings, factors=[*E.DEFAULT_FACTOR_GRID, 7.0])
    with pytest.raises(ValueError, match="overlap"):
        E.select_factor(ratings, select_idx=[0, 1], report_idx=[1, 2])
    swapped = E.select_factor(ratings, select_idx=[5, 6, 7, 8, 9], report_idx=[0, 1, 2, 3, 4])
    assert swapped["factor"].iloc[0] == 5.0
    with pytest.raises(ValueError, match="judge"):
        E.select_factor(ratings.drop(columns="judge"))
    assert set(E.select_factor(ratings.drop(columns="judge"), judge="j2")["judge"]) == {"j2"}
    with pytest.raises(ValueError, match="protocol"):
        E.select_factor(ratings.assign(protocol=E.PROTOCOL_FACTOR_FREE))


def test_select_factor_keeps_extra_keys_apart():
    a = grid_ratings(concept_ids=(0,)).assign(method="fssv")
    b = grid_ratings(concept_ids=(0,)).assign(method="other")
    b.loc[(b["instruction_idx"] < 5) & (b["factor"] == 4.0), "overall"] = 2.0
    res = E.select_factor(pd.concat([a, b]), by=["method"])
    assert dict(zip(res["method"], res["factor"])) == {"fssv": 2.0, "other": 4.0}


def factor_free_ratings(judge="offline"):
    rng = np.random.default_rng(0)
    rows = []
    for method, shift in (("prosv", 0), ("fssv", -1)):
        for cid in range(20):
            for idx in range(10):
                r = rng.integers(0, 3, size=3)
                rows.append(
                    {
                        "method": method,
                        "concept_id": cid,
                        "instruction_idx": idx,
                        "concept_score": max(0, int(r[0]) + shift),
                        "instruction_score": int(r[1]),
                        "fluency_score": int(r[2]),
                    }
                )
    return pd.DataFrame(rows)


def test_concept_means_are_labelled_and_consistent():
    ratings = E.add_overall(factor_free_ratings())
    concepts = E.concept_means(ratings, by=["method"], protocol=E.PROTOCOL_FACTOR_FREE, judge="offline-v1")
    assert set(concepts["protocol"]) == {E.PROTOCOL_FACTOR_FREE} and set(concepts["judge"]) == {"offline-v1"}
    assert ratings["overall"].tolist() == pytest.approx(
        E.overall_score(ratings["concept_score"], ratings["instruction_score"], ratings["fluency_score"]).tolist()
    )
    assert len(concepts) == 40 and (concepts["n_responses"] == 10).all()
    manual = ratings.groupby(["method", "concept_id"])["overall"].mean()
    assert concepts.set_index(["method", "concept_id"])["overall"].to_numpy() == pytest.approx(manual.to_numpy())


def test_labels_are_required_and_not_silently_overwritten():
    ratings = factor_free_ratings()
    with pytest.raises(ValueError, match="protocol"):
        E.concept_means(ratings, judge="j")
    with pytest.raises(ValueError, match="judge"):
        E.concept_means(ratings, protocol=E.PROTOCOL_FACTOR_FREE)
    labelled = ratings.assign(protocol=E.PROTOCOL_FACTOR_FREE, judge="j")
    assert set(E.concept_means(labelled)["judge"]) == {"j"}
    with pytest.raises(ValueError, match="already labelled"):
        E.concept_means(labelled, judge="other-judge")


def test_select_report_split_halves_the_instructions():
    assert [list(r) for r in E.select_report_split(10)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert [list(r) for r in E.select_report_split(5)] == [[0, 1], [2, 3, 4]]
    with pytest.raises(ValueError, match="at least 2"):
        E.select_report_split(1)
    # without explicit indices select_factor uses that split of the rated instructions
    explicit = E.select_factor(grid_ratings(), select_idx=range(5), report_idx=range(5, 10))
    pd.testing.assert_frame_equal(E.select_factor(grid_ratings()), explicit)


@pytest.mark.skipif(
    not (REPO_DATA / "concepts.jsonl").is_file(), reason="data/ not written yet (embedded data files missing)"
)
def test_protocol_on_real_embedded_data():
    from prosv import data as D

    embedded = D.load_embedded(REPO_DATA)
    concepts, instructions = embedded["concepts"], embedded["instructions_eval"]
    prompts = E.steering_prompts(concepts, instructions, n=min(10, len(instructions)))
    assert len(prompts) == len(concepts) * min(10, len(instructions))
    attacked = E.suppression_attack_prompts(prompts, concepts)
    steered = E.prompting_prompts(prompts, concepts)
    assert (attacked["instruction"] == prompts["instruction"]).all()
    assert (attacked["user_turn"] != prompts["user_turn"]).all() and (
        steered["user_turn"] != prompts["user_turn"]
    ).all()
