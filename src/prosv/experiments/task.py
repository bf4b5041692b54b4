"""Task steering (the first author's BoolQ side experiment): can a steering vector teach a yes/no
reading task, or only its answer format?

Arms: the unsteered model, FSSV and PrOSV at one layer and at every layer, and a rank-8 LoRA, all
trained on the same items with the same epochs, batch size and seed (the `task_steering` config
section). Each arm answers every test item greedily; an answer is correct, wrong, or a format failure
(no leading yes/no, :func:`prosv.data.reading.parse_answer`), so a vector that only fixes the format
shows as fewer format failures rather than more correct answers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from ..data.reading import ReadingItem, answer_text, embedded_reading, load_boolq, parse_answer, reading_prompt
from ..generation import Steering, generate
from ..models import Layers, resolve_layers
from ..report.task import ARMS, LORA, UNSTEERED
from ..training import Example, TrainConfig
from ..training.lora import LoraSettings, load_lora
from ..vectors import load_vectors

ARM_KINDS = {name: kind for name, (kind, _) in ARMS.items()}  # arm -> what it trains, in table order
SHARED_BUDGET = ("epochs", "batch_size", "seed", "micro_batch_size", "max_response_tokens")


@dataclass(frozen=True)
class TaskArm:
    name: str
    kind: str  # "none", "sv" or "lora"
    positions: str | None = None  # sv arms
    layers: str | int | list | None = None  # sv arms: a layer, a list, "all" or "one" (the section's layer)
    settings: dict = field(default_factory=dict)  # TrainConfig keys (sv) or LoraSettings keys (lora)

    def layer_set(self, section: dict, depth: int) -> Layers:
        """Where an sv arm acts: the section's `layer` for "one", else its own layer option."""
        spec = section["layer"] if self.layers == "one" else self.layers
        return resolve_layers(spec, depth, f"config key 'task_steering.arms.{self.name}.layers'")


def task_section(config: dict) -> dict:
    """The config's `task_steering` section with the run's seed ({} when there is none): the seed
    fixes every arm's init, shuffles and LoRA's adapters, as it does the rest of the study."""
    section = config.get("task_steering") or {}
    return {**section, "seed": config.get("seed", TrainConfig.seed)} if section else {}


def task_arms(section: dict) -> list[TaskArm]:
    """The arms of a `task_steering` section, in table order; unknown arms or keys are named."""
    arms = section.get("arms") or {}
    unknown = sorted(set(arms) - set(ARM_KINDS))
    if unknown:
        raise ValueError(f"config key 'task_steering.arms': unknown arm(s) {unknown}; known: {list(ARM_KINDS)}")
    out = []
    for name, kind in ARM_KINDS.items():
        if name not in arms and name != UNSTEERED:
            continue
        entry = dict(arms.get(name) or {})
        positions, layers = entry.pop("positions", None), entry.pop("layers", None)
        if kind == "sv" and (positions is None or layers is None):
            raise ValueError(f"config key 'task_steering.arms.{name}': needs 'positions' and 'layers'")
        out.append(TaskArm(name, kind, positions, layers, entry))
    return out


def arm_train_config(section: dict, arm: TaskArm, recommended: dict | None = None) -> TrainConfig:
    """An sv arm's TrainConfig: the model's recommended rates for its positions, then the arm's own
    keys, then the section's shared budget. The budget (epochs, batch size, seed, ...) is the
    section's or TrainConfig's for every arm, never a recommendation's, so the vectors and LoRA
    (:func:`shared_train_config`) train for the same steps on the same shuffles."""
    rates = {k: v for k, v in (recommended or {}).items() if k not in SHARED_BUDGET}
    values = {**rates, **arm.settings, "positions": arm.positions, "loss": "lang"}
    values.update({k: section[k] for k in SHARED_BUDGET if k in section})
    return TrainConfig.from_mapping(values, where=f"config key 'task_steering.arms.{arm.name}'")


def load_task_items(section: dict, data_dir=None) -> pd.DataFrame:
    """The section's training and test items (one row each, `split` says which), capped by
    max_train / max_test: the embedded task, or BoolQ from a file, folder or hub id."""
    source = section.get("source", "embedded")
    frames = []
    for role, cap in (("train", section.get("max_train")), ("test", section.get("max_test"))):
        split = section.get(f"{role}_split", role)
        items = embedded_reading(split, data_dir) if source == "embedded" else load_boolq(source, split)
        if not items:
            raise ValueError(f"config key 'task_steering.{role}_split': {source} has no items in split {split!r}")
        chosen = items[:cap] if cap else items
        frames.append(pd.DataFrame([asdict(item) for item in chosen]).assign(split=role))
    return pd.concat(frames, ignore_index=True)


def items_of(frame: pd.DataFrame, role: str) -> list[ReadingItem]:
    """The items of one role ("train" or "test") of a table written by :func:`load_task_items`."""
    rows = frame[frame.split == role]
    return [ReadingItem(str(r.id), r.passage, r.question, bool(r.answer), role) for r in rows.itertuples()]


def task_examples(items: list[ReadingItem], instruction: bool = False) -> list[Example]:
    """Training pairs: the reading prompt, and the one-word answer as the response."""
    return [Example(reading_prompt(item, instruction), answer_text(item.answer)) for item in items]


def score_answers(items: list[ReadingItem], responses: list[str], arm: str) -> pd.DataFrame:
    """One row per item: the response, its parsed answer, and whether it is correct or a format failure."""
    if len(items) != len(responses):
        raise ValueError(f"{len(responses)} responses for {len(items)} items")
    rows = []
    for item, text in zip(items, responses):
        parsed = parse_answer(text)
        rows.append(
            {
                "arm": arm,
                "item_id": item.id,
                "answer": item.answer,
                "response": text,
                "parsed": parsed,
                "format_ok": parsed is not None,
                "correct": parsed is not None and parsed == item.answer,
            }
        )
    return pd.DataFrame.from_records(rows).astype({"parsed": "boolean"})


def shared_train_config(section: dict) -> TrainConfig:
    """The budget every arm shares (epochs, batch size, seed, ...), for the LoRA arm's schedule."""
    values = {k: section[k] for k in SHARED_BUDGET if k in section}
    return TrainConfig.from_mapping(values, where="config key 'task_steering'")


def lora_settings(section: dict) -> LoraSettings:
    arms = section.get("arms") or {}
    return LoraSettings.from_mapping(dict(arms.get(LORA) or {}), where="config key 'task_steering.arms.lora'")


def answer_arm(
    model,
    tokenizer,
    arm: str,
    items: list[ReadingItem],
    trained: list[str],
    *,
    max_new_tokens: int = 4,
    batch_size: int = 16,
    instruction: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """An arm's greedy answers to `items`, scored (:func:`score_answers`). `trained` holds the arm's
    vector file, or its LoRA adapter folder, or nothing for the unsteered model."""
    prompts = [reading_prompt(item, instruction) for item in items]
    steering, answering = None, model
    if arm == LORA:
        answering = load_lora(model, trained[0]).get_base_model()
    elif trained:
        vec = load_vectors(trained[0], model)
        steering = Steering(vec.module, vec.layer, vec.positions, rows=[0] * len(prompts))
    generations = generate(
        answering,
        tokenizer,
        prompts,
        steering,
        max_new_tokens=max_new_tokens,
        temperature=0.0,
        batch_size=batch_size,
        progress=progress,
        desc=f"answer {arm}",
    )
    return score_answers(items, [g.text for g in generations], arm)
