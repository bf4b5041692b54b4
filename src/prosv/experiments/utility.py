"""Utility: accuracy on general tasks under each steering condition (docs/method.md, "Utility").

- Conditions: ``unsteered`` (once, concept_id -1), ``prompting`` (the concept's steering
  instruction prepended to the user turn), and every method's vector for each concept at factor
  1.0; FSSV methods (positions ``all``) also at each factor of ``fssv_factors``.
- Tasks (``UTILITY_TASKS``): open numeric answers are generated greedily and parsed
  (:func:`parse_number`); multiple choice is answered either by generation and parsing the letter
  (:func:`parse_choice`, the tinyMMLU reference protocol) or, for the embedded tasks, by "cloze"
  scoring: each option is scored as the assistant's reply to the bare question (sum of the
  option's token log-probs under the same steering; steered response tokens for FSSV) and the
  best-scoring option is the answer. The embedded 135M model cannot map letters to options (it
  answers "A" to almost everything, i.e. chance) while cloze scoring puts it well above chance,
  so only cloze scoring can show what steering costs it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import evaluation as E
from ..generation import Steering, generate
from ..interventions import optional_hook
from ..padding import padding_id
from ..positions import as_spec, template_ids
from ..training import sequence_logprobs

CHOICE_LETTERS = "ABCD"


@dataclass(frozen=True)
class UtilityTask:
    """How one utility task is asked and scored.

    kind: "number" (rows: question, answer int) or "choice" (rows: question, choices[4], answer A-D).
    scoring: "generate" (greedy generation, parsed) or "cloze" (choice tasks only: option log-probs).
    """

    name: str
    kind: str
    scoring: str
    max_new_tokens: int = 40
    template: str = ""


# Our wording. {question}; {options} is "A. ...\nB. ..." for letter-answer choice tasks.
ARITHMETIC_TEMPLATE = "{question}\nAnswer with a short calculation ending in = and the number."
GSM8K_TEMPLATE = "{question}\nWork it out step by step, then write the final answer on its own line as '#### <number>'."
LETTER_TEMPLATE = "{question}\n\n{options}\n\nAnswer with the letter (A, B, C or D) of the correct option."
CLOZE_TEMPLATE = "{question}"

UTILITY_TASKS: dict[str, tuple[UtilityTask, ...]] = {
    "embedded": (
        UtilityTask("arithmetic", "number", "generate", 40, ARITHMETIC_TEMPLATE),
        UtilityTask("multiple_choice", "choice", "cloze", 0, CLOZE_TEMPLATE),
    ),
    "tinybenchmarks": (
        UtilityTask("tiny_gsm8k", "number", "generate", 256, GSM8K_TEMPLATE),
        UtilityTask("tiny_mmlu", "choice", "generate", 12, LETTER_TEMPLATE),
    ),
}


def format_options(choices: Sequence[str]) -> str:
    return "\n".join(f"{letter}. {text}" for letter, text in zip(CHOICE_LETTERS, choices))


def task_user_turn(task: UtilityTask, row) -> str:
    """The user turn asking one question of a task (row: a mapping or itertuples row)."""
    question = row["question"] if isinstance(row, dict) else row.question
    options = ""
    if task.kind == "choice":
        choices = row["choices"] if isinstance(row, dict) else row.choices
        options = format_options(list(choices))
    return task.template.format(question=question, options=options)


_NUM = r"(-?\d[\d,]*(?:\.\d+)?)"
_NUMBER_PATTERNS = (
    re.compile(r"####\s*\$?\s*" + _NUM),
    re.compile(r"answer is:?\s*\$?\s*" + _NUM, re.I),
    re.compile(r"=\s*\$?\s*" + _NUM),
)


def parse_number(text: str) -> float | None:
    """The model's numeric answer: after '####', else after 'answer is', else after the first '=',
    else the last number in the text; None when there is no number. Thousands commas are dropped."""
    if not isinstance(text, str):
        return None
    match = None
    for pattern in _NUMBER_PATTERNS:
        match = pattern.search(text)
        if match:
            break
    raw = match.group(1) if match else (re.findall(_NUM, text) or [None])[-1]
    if raw is None:
        return None
    try:
        return float(raw.replace(",", ""))
    except ValueError:
        return None


_LETTER = re.compile(
    r"(?:answer(?: is)?|option)\s*:?\s*\(?([ABCD])\b"  # "answer is B", "Answer: (C)", "option D"
    r"|\(([ABCD])\)"  # "(B)"
    r"|(?<![\w'])([ABCD])[.):](?!\w)"  # "B." "B)" "B:" at a word start
    r"|^\s*([ABCD])\s*$",  # a lone letter on a line
    re.M,
)


def parse_choice(text: str, choices: Sequence[str] | None = None) -> str | None:
    """The chosen letter A-D: the earliest explicit letter (``answer is B``, ``(B)``, ``B.``, a lone
    ``B``) or, with ``choices``, the earliest verbatim mention of an option's text (word bounded,
    case-insensitive), whichever comes first (a letter wins a tie). None when neither is found.
    A bare article ("A cat ...") is not a letter."""
    if not isinstance(text, str):
        return None
    found = []
    m = _LETTER.search(text)
    if m:
        found.append((m.start(), 0, next(g for g in m.groups() if g).upper()))
    for letter, option in zip(CHOICE_LETTERS, choices or ()):
        option = str(option).strip()
        if not option:
            continue
        hit = re.search(r"(?<!\w)" + re.escape(option) + r"(?!\w)", text, re.I)
        if hit:
            found.append((hit.start(), 1, letter))
    return min(found)[2] if found else None


def is_correct(task: UtilityTask, prediction, answer) -> bool:
    if prediction is None:
        return False
    if task.kind == "number":
        return abs(float(prediction) - float(answer)) < 1e-6
    return str(prediction).upper() == str(answer).strip().upper()


def load_utility_tasks(
    source: str,
    data_dir: str | None = None,
    questions_per_task: int | None = None,
    tiny_gsm8k_path: str | None = None,
    tiny_mmlu_path: str | None = None,
) -> list[tuple[UtilityTask, pd.DataFrame]]:
    """The tasks of a source with their first ``questions_per_task`` questions. tinyBenchmarks come
    from local copies when their paths are given (a table file or a folder), else from the hub."""
    from pathlib import Path

    from .. import data as D

    if source not in UTILITY_TASKS:
        raise ValueError(f"unknown utility source {source!r}; use one of {sorted(UTILITY_TASKS)}")
    if source == "embedded":
        root = Path(data_dir) if data_dir is not None else D.default_data_dir()
        frames = [
            D.read_arithmetic(root / "utility" / "arithmetic.jsonl"),
            D.read_multiple_choice(root / "utility" / "multiple_choice.jsonl"),
        ]
    else:
        frames = [D.load_tiny_gsm8k(tiny_gsm8k_path), D.load_tiny_mmlu(tiny_mmlu_path)]
    out = []
    for task, df in zip(UTILITY_TASKS[source], frames):
        df = df.head(questions_per_task) if questions_per_task else df
        out.append((task, df.reset_index(drop=True)))
    return out


@dataclass
class Condition:
    """One way of (not) steering the model: per concept, a row of `module` or a steering instruction."""

    method: str
    factor: float = 1.0
    concept_ids: list[int] = field(default_factory=lambda: [-1])  # [-1]: the unsteered model
    module: torch.nn.Module | None = None
    layer: int | None = None
    positions: str | None = None
    rows: list[int] | None = None  # module row of each concept
    steering_instructions: list[str] | None = None  # prompting baseline: one per concept
    labels: dict = field(default_factory=dict)  # what the vector was trained as (intervention, loss, fixed_alpha)


def first_concepts(vector_file, n: int) -> list[int]:
    """The first ``n`` concepts of a vector file (its training order), as ints."""
    concepts = [int(c) for c in vector_file.concepts]
    if n > len(concepts):
        raise ValueError(f"asked for {n} concepts, the vector file holds {len(concepts)}")
    return concepts[:n]


def method_factors(positions: str, fssv_factors: Sequence[float]) -> list[float]:
    """1.0 for prompt-only placements; 1.0 then the other fssv factors for FSSV (positions ``all``)."""
    if not as_spec(positions).generation:
        return [1.0]
    return [1.0] + [float(f) for f in fssv_factors if float(f) != 1.0]


def utility_conditions(
    vectors: dict,
    concepts: pd.DataFrame,
    concept_ids: Sequence[int],
    fssv_factors: Sequence[float] = (1.0, 0.8, 0.5),
    prompting: bool = True,
    unsteered: bool = True,
) -> list[Condition]:
    """unsteered (unless ``unsteered`` is False: a later shard of the concepts), prompting (needs
    ``steering_instruction`` in ``concepts``), then each method (``vectors``: method name ->
    VectorFile) at its factors."""
    ids = [int(c) for c in concept_ids]
    out = [Condition("unsteered", 1.0, [-1])] if unsteered else []
    if prompting:
        lookup = dict(zip(concepts.concept_id.astype(int), concepts.steering_instruction))
        missing = [c for c in ids if c not in lookup]
        if missing:
            raise KeyError(f"concepts {missing} have no steering_instruction in the concepts table")
        out.append(Condition("prompting", 1.0, ids, steering_instructions=[lookup[c] for c in ids]))
    for method, vec in vectors.items():
        module = vec.module
        rows = [vec.index_of(c) for c in ids]
        labels = {
            "intervention": vec.intervention,
            "loss": vec.metadata.get("loss"),
            "fixed_alpha": vec.hyperparameter("fixed_alpha"),
        }
        for factor in method_factors(vec.positions, fssv_factors):
            out.append(Condition(method, factor, ids, module, vec.layer, vec.positions, rows, labels=labels))
    return out


@torch.no_grad()
def choice_scores(
    model,
    tokenizer,
    user_turns: Sequence[str | list],
    choices: Sequence[Sequence[str]],
    steering: Steering | None = None,
    micro_batch_size: int = 32,
    progress: bool = False,
    desc: str = "cloze",
) -> np.ndarray:
    """[n_questions, n_options] sum of each option's token log-probs as the assistant's reply,
    under ``steering`` (its ``rows`` are per question)."""
    pad_id = padding_id(tokenizer)
    seqs, rows, shape = [], [], []
    for q, (turn, opts) in enumerate(zip(user_turns, choices)):
        prompt = template_ids(tokenizer, turn)
        shape.append(len(opts))
        for option in opts:
            ids = tokenizer(str(option), add_special_tokens=False)["input_ids"]
            if not ids:
                raise ValueError(f"question {q}: empty option")
            seqs.append((prompt, ids))
            rows.append(steering.rows[q] if steering is not None else -1)
    if len(set(shape)) > 1:
        raise ValueError("every question needs the same number of options")
    scores = []

    def run(hook):
        positions = steering.positions if steering is not None else "prompt"
        for s in tqdm(range(0, len(seqs), micro_batch_size), desc=desc, disable=not progress, unit="batch"):
            sums, _ = sequence_logprobs(
                model, hook, pad_id, seqs[s : s + micro_batch_size], rows[s : s + micro_batch_size], positions
            )
            scores.append(sums.float().cpu())

    with optional_hook(
        model, getattr(steering, "layer", None), getattr(steering, "module", None), getattr(steering, "factor", 1.0)
    ) as hook:
        run(hook)
    return torch.cat(scores).numpy().reshape(len(user_turns), shape[0] if shape else 0)


def answer_task(
    model,
    tokenizer,
    task: UtilityTask,
    questions: pd.DataFrame,
    user_turns: Sequence[str],
    steering: Steering | None = None,
    batch_size: int = 16,
    progress: bool = False,
    desc: str = "utility",
) -> tuple[list, list[str]]:
    """(predictions, raw outputs) for one task; ``user_turns`` align with ``questions`` (possibly
    repeated for several concepts, with ``steering.rows`` per turn)."""
    if task.scoring == "cloze":
        if task.kind != "choice":
            raise ValueError(f"task {task.name}: cloze scoring needs a choice task")
        reps = len(user_turns) // len(questions)
        choices = [list(c) for c in questions.choices] * reps
        scores = choice_scores(
            model,
            tokenizer,
            user_turns,
            choices,
            steering,
            micro_batch_size=2 * batch_size,
            progress=progress,
            desc=desc,
        )
        preds = [CHOICE_LETTERS[int(i)] for i in scores.argmax(axis=1)]
        return preds, [" ".join(f"{s:.3f}" for s in row) for row in scores]
    outs = generate(
        model,
        tokenizer,
        list(user_turns),
        steering,
        max_new_tokens=task.max_new_tokens,
        temperature=0.0,
        batch_size=batch_size,
        progress=progress,
        desc=desc,
    )
    texts = [o.text for o in outs]
    if task.kind == "number":
        return [parse_number(t) for t in texts], texts
    reps = len(user_turns) // len(questions)
    choices = [list(c) for c in questions.choices] * reps
    return [parse_choice(t, c) for t, c in zip(texts, choices)], texts


def evaluate_condition(
    model,
    tokenizer,
    tasks: list[tuple[UtilityTask, pd.DataFrame]],
    cond: Condition,
    batch_size: int = 16,
    progress: bool = False,
    keep_outputs: bool = False,
) -> pd.DataFrame:
    """Accuracy rows (one per concept and task) of one condition; all its concepts share the calls."""
    rows = []
    for task, questions in tasks:
        base = [task_user_turn(task, r) for r in questions.to_dict("records")]
        turns, module_rows = [], []
        for k in range(len(cond.concept_ids)):
            if cond.steering_instructions is not None:
                turns += [E.prompting_user_turn(t, cond.steering_instructions[k]) for t in base]
            else:
                turns += base
            module_rows += [cond.rows[k] if cond.rows is not None else -1] * len(base)
        steering = None
        if cond.module is not None:
            steering = Steering(cond.module, cond.layer, cond.positions, rows=module_rows, factor=cond.factor)
        desc = f"{cond.method} x{cond.factor:g} {task.name}"
        preds, raw = answer_task(model, tokenizer, task, questions, turns, steering, batch_size, progress, desc)
        n = len(questions)
        for k, cid in enumerate(cond.concept_ids):
            part = preds[k * n : (k + 1) * n]
            correct = int(sum(is_correct(task, p, a) for p, a in zip(part, questions.answer)))
            row = {
                "method": cond.method,
                "factor": float(cond.factor),
                "concept_id": int(cid),
                "task": task.name,
                "n": n,
                "correct": correct,
                "accuracy": correct / n if n else float("nan"),
                "positions": cond.positions,
                "layer": cond.layer,
                "scoring": task.scoring,
                **cond.labels,
            }
            if keep_outputs:
                row["outputs"] = raw[k * n : (k + 1) * n]
                row["predictions"] = [None if p is None else str(p) for p in part]
            rows.append(row)
    return pd.DataFrame(rows)


def evaluate_utility(
    model,
    tokenizer,
    tasks: list[tuple[UtilityTask, pd.DataFrame]],
    conditions: list[Condition],
    batch_size: int = 16,
    progress: bool = True,
) -> pd.DataFrame:
    """The accuracy table: method, factor, concept_id, task, n, correct, accuracy, positions, layer, scoring."""
    frames = [
        evaluate_condition(model, tokenizer, tasks, c, batch_size, progress)
        for c in tqdm(conditions, desc="utility conditions", disable=not progress, unit="cond")
    ]
    out = pd.concat(frames, ignore_index=True)
    out["layer"] = out["layer"].astype("Int64")
    return out


def merge_utility(paths: list, out) -> None:
    """One accuracy table from the utility shards (config key ``concepts_per_job``), rows in the
    order one job writes them: condition, task, then concept."""
    from ..files import write_parquet

    table = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    # the first shard asks every (condition, task) in one job's order: a stable sort by first
    # appearance puts the later shards' concepts after its own
    first_seen, _ = pd.factorize(pd.MultiIndex.from_frame(table[["method", "factor", "task"]]))
    write_parquet(out, table.iloc[np.argsort(first_seen, kind="stable")].reset_index(drop=True))
