"""Task steering: arms from the config, scoring, the table and claim 7, and the LoRA baseline."""

import numpy as np
import pandas as pd
import pytest

from prosv.data.reading import ReadingItem
from prosv.experiments.task import arm_train_config, score_answers, shared_train_config, task_arms, task_section
from prosv.report import claims as C
from prosv.report.task import per_item, task_markdown, task_table
from prosv.stats import wilson_interval
from prosv.training import Example, TrainConfig, response_loss
from prosv.training.lora import LoraSettings, load_lora, train_lora

SECTION = {
    "layer": 2,
    "epochs": 3,
    "batch_size": 4,
    "seed": 7,
    "arms": {
        "prosv_layers": {"positions": "p2+s2", "layers": "all", "c_alpha": 0.5},
        "fssv_layer": {"positions": "all", "layers": "one"},
        "lora": {"rank": 4},
    },
}


def items(n: int) -> list[ReadingItem]:
    return [ReadingItem(f"i{k}", f"Passage {k}.", f"Is {k} even?", k % 2 == 0, "test") for k in range(n)]


def answers_frame(accuracy: dict[str, float], n: int = 80, seed: int = 0) -> pd.DataFrame:
    """Constructed answers: per arm, item i is correct when u_i < accuracy (one u per item, shared by
    every arm, so the arms' errors are nested and their pairing matters)."""
    u = np.random.default_rng(seed).random(n)
    frames = []
    for arm, acc in accuracy.items():
        its = items(n)
        texts = ["Yes" if (u[i] < acc) == it.answer else "No" for i, it in enumerate(its)]
        frames.append(score_answers(its, texts, arm))
    return pd.concat(frames, ignore_index=True)


def test_arms_come_in_table_order_with_the_shared_budget():
    arms = task_arms(SECTION)
    assert [a.name for a in arms] == ["unsteered", "fssv_layer", "prosv_layers", "lora"]
    prosv = next(a for a in arms if a.name == "prosv_layers")
    cfg = arm_train_config(SECTION, prosv, {"c_alpha": 4.0, "eta_v": 0.02})
    assert (cfg.c_alpha, cfg.eta_v, cfg.epochs, cfg.batch_size, cfg.seed) == (0.5, 0.02, 3, 4, 7)
    assert prosv.layer_set(SECTION, 5) == (0, 1, 2, 3, 4)
    assert next(a for a in arms if a.name == "fssv_layer").layer_set(SECTION, 5) == 2
    # without a budget in the section, vectors and LoRA share TrainConfig's, not a recommendation's
    bare = {k: v for k, v in SECTION.items() if k not in ("epochs", "batch_size")}
    sv = arm_train_config(bare, prosv, {"epochs": 24, "batch_size": 2, "eta_v": 0.02})
    lora = shared_train_config(bare)
    assert (sv.epochs, sv.batch_size, sv.seed) == (lora.epochs, lora.batch_size, lora.seed) == (
        TrainConfig.epochs, TrainConfig.batch_size, 7
    )  # fmt: skip


def test_the_runs_seed_reaches_every_arm():
    section = task_section({"seed": 44, "task_steering": SECTION})
    prosv = next(a for a in task_arms(section) if a.name == "prosv_layers")
    assert arm_train_config(section, prosv).seed == shared_train_config(section).seed == 44
    assert task_section({"seed": 44}) == {}


@pytest.mark.parametrize(
    "arms, needle",
    [
        ({"prosv_everywhere": {"positions": "p2+s2", "layers": "all"}}, "unknown arm(s) ['prosv_everywhere']"),
        ({"prosv_layer": {"layers": "one"}}, "task_steering.arms.prosv_layer': needs 'positions'"),
        ({"prosv_layer": {"positions": "p2+s2", "layers": "one", "eta_w": 1}}, "unknown key(s) ['eta_w']"),
    ],
)
def test_bad_arms_name_the_key(arms, needle):
    with pytest.raises(ValueError) as err:
        for arm in task_arms({**SECTION, "arms": arms}):
            if arm.kind == "sv":
                arm_train_config(SECTION, arm)
    assert needle in str(err.value)


def test_scoring_counts_format_failures_apart_from_wrong_answers():
    its = items(4)  # answers: yes, no, yes, no
    scored = score_answers(its, ["Yes.", "yes", "The answer is yes", " **No**"], "x")
    assert scored.correct.tolist() == [True, False, False, True]
    assert scored.format_ok.tolist() == [True, True, False, True]
    row = task_table(scored).iloc[0]
    assert (row.accuracy, row.wrong, row.format_failures) == (0.5, 0.25, 0.25)
    assert row.accuracy_when_formed == pytest.approx(2 / 3) and row.yes_share == pytest.approx(2 / 3)


def test_task_table_recomputes_wilson_intervals():
    answers = answers_frame({"unsteered": 0.4, "prosv_layers": 0.7}, n=50)
    table = task_table(answers).set_index("arm")
    for arm in ("unsteered", "prosv_layers"):
        correct = int(answers[answers.arm == arm].correct.sum())
        lo, hi = wilson_interval(correct, 50)
        assert (table.loc[arm, "ci_low"], table.loc[arm, "ci_high"]) == pytest.approx((lo, hi))
        assert table.loc[arm, "accuracy"] == correct / 50


def test_claim_7_verdicts_follow_the_paired_differences():
    def verdicts(acc):
        comp = C.comparisons({"task_items": answers_frame(acc, n=200)}, n_boot=2000)
        return dict(zip(comp.loc[comp.claim == 7, "b"], comp.loc[comp.claim == 7, "verdict"]))

    held = verdicts({"unsteered": 0.3, "fssv_layers": 0.5, "prosv_layers": 0.7, "lora": 0.9})
    assert held == {"fssv_layers": "held", "unsteered": "held", "prosv_layers": "held"}
    flipped = verdicts({"unsteered": 0.3, "fssv_layers": 0.8, "prosv_layers": 0.5, "lora": 0.5})
    assert flipped["fssv_layers"] == "contradicted" and flipped["prosv_layers"] == "inconclusive"
    missing = C.comparisons({}, n_boot=100)
    assert set(missing.loc[missing.claim == 7, "verdict"]) == {"not measured"}


def test_paired_interval_uses_items_as_units():
    """Nested errors: the per-item difference is 0/1, so its mean equals the accuracy difference."""
    answers = answers_frame({"prosv_layers": 0.7, "fssv_layers": 0.5}, n=100)
    d = per_item(answers, "prosv_layers") - per_item(answers, "fssv_layers")
    assert set(d.unique()) <= {0.0, 1.0}
    comp = C.comparisons({"task_items": answers}, n_boot=2000)
    row = comp[(comp.claim == 7) & (comp.b == "fssv_layers")].iloc[0]
    assert row.difference == pytest.approx(d.mean()) and row.n == 100
    md = task_markdown(task_table(answers), comp[comp.claim == 7])
    assert "PrOSV, every layer" in md and "63%" in md and "**held**" in md


def _examples(n: int) -> list[Example]:
    return [Example(f"Is {k} an even number? Answer yes or no.", "Yes" if k % 2 == 0 else "No") for k in range(n)]


def test_lora_lowers_the_loss_reproducibly_saves_and_unloads(tokenizer, tmp_path):
    from conftest import make_tiny_model

    cfg = TrainConfig(epochs=4, batch_size=4, seed=3)
    settings = LoraSettings(rank=4, learning_rate=1e-2)
    runs = []
    for _ in range(2):
        model = make_tiny_model(tokenizer)
        before = response_loss(model, tokenizer, _examples(8))
        result = train_lora(model, tokenizer, _examples(8), cfg, settings, progress=False)
        runs.append((before, response_loss(result.steered, tokenizer, _examples(8)), result))
    (before, after, first), (_, again, second) = runs
    assert after < before - 1.0 and after == again  # same seed, same adapters
    assert len(first.losses) == cfg.epochs * 2 and first.losses.loss.iloc[-1] < first.losses.loss.iloc[0]
    folder = first.save(tmp_path / "lora", {"model": "tiny"})
    fresh = make_tiny_model(tokenizer)
    reloaded = load_lora(fresh, folder).get_base_model()
    assert response_loss(reloaded, tokenizer, _examples(8)) == pytest.approx(after, rel=1e-6)
    clean = second.unload()
    assert response_loss(clean, tokenizer, _examples(8)) == pytest.approx(before, rel=1e-6)
    assert not any("lora" in name for name, _ in clean.named_modules())


def test_lora_settings_name_bad_keys():
    with pytest.raises(ValueError, match="unknown key"):
        LoraSettings.from_mapping({"rnak": 8})
    with pytest.raises(ValueError, match="rank=0"):
        LoraSettings.from_mapping({"rank": 0})
    assert LoraSettings.from_mapping({"targets": ["q_proj"]}).targets == ("q_proj",)
