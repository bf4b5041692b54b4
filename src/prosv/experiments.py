"""The side experiments of spec sections 2, 5 and 6: the scaling study, utility, robustness, LoReFT.

Plain functions over models, vector files and DataFrames; the workflow scripts (utility.py,
robustness.py, compare_loreft.py) only read the `snakemake` object and call these.

Utility (spec 6): accuracy on general tasks under each steering condition.

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

Robustness (spec 6): the factor-free prompts under the suppression attack, generated with each
method's vector; the judge rates them against the original instruction.

Scaling study (spec 2): the factor init x factor learning rate grid (Adam, raw rates), alpha fixed
at 1 (direction only), SGD instead of Adam, and raw vs width-scaled transfer of reference rates;
every cell is trained on the same development data from one prefix cache, then all cells generate
in one batch stream (each cell is one "concept" row of a stacked module) for the judge.

LoReFT comparison (spec 5): PrOSV and rank-1 LoReFT trained at the same layer, positions and
learning rate; their loss curves, the cosine between LoReFT's R row and PrOSV's v, and the spread
of the unsteered hidden states across prompts at the intervened positions vs content tokens.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import evaluation as E
from .generation import Steering, generate
from .interventions import SteeringVectors, optional_hook
from .models import check_layer, decoder_layers, hidden_size
from .positions import as_spec, template_ids
from .training import Example, PrefixCache, TrainConfig, sequence_logprobs, train

CHOICE_LETTERS = "ABCD"

# --------------------------------------------------------------------------------------------
# utility: tasks, prompts, parsers


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
GSM8K_TEMPLATE = ("{question}\nWork it out step by step, then write the final answer on its own line as "
                  "'#### <number>'.")
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
_NUMBER_PATTERNS = (re.compile(r"####\s*\$?\s*" + _NUM), re.compile(r"answer is:?\s*\$?\s*" + _NUM, re.I),
                    re.compile(r"=\s*\$?\s*" + _NUM))


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
    re.M)


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


def load_utility_tasks(source: str, data_dir: str | None = None, questions_per_task: int | None = None
                       ) -> list[tuple[UtilityTask, pd.DataFrame]]:
    """The tasks of a source with their first ``questions_per_task`` questions."""
    from pathlib import Path

    from . import data as D

    if source not in UTILITY_TASKS:
        raise ValueError(f"unknown utility source {source!r}; use one of {sorted(UTILITY_TASKS)}")
    if source == "embedded":
        root = Path(data_dir) if data_dir is not None else D.default_data_dir()
        frames = [D.read_arithmetic(root / "utility" / "arithmetic.jsonl"),
                  D.read_multiple_choice(root / "utility" / "multiple_choice.jsonl")]
    else:
        frames = [D.load_tiny_gsm8k(), D.load_tiny_mmlu()]
    out = []
    for task, df in zip(UTILITY_TASKS[source], frames):
        df = df.head(questions_per_task) if questions_per_task else df
        out.append((task, df.reset_index(drop=True)))
    return out


# --------------------------------------------------------------------------------------------
# utility: conditions and scoring


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


def utility_conditions(vectors: dict, concepts: pd.DataFrame, concept_ids: Sequence[int],
                       fssv_factors: Sequence[float] = (1.0, 0.8, 0.5), prompting: bool = True) -> list[Condition]:
    """unsteered, prompting (needs ``steering_instruction`` in ``concepts``), then each method
    (``vectors``: method name -> VectorFile) at its factors."""
    ids = [int(c) for c in concept_ids]
    out = [Condition("unsteered", 1.0, [-1])]
    if prompting:
        lookup = dict(zip(concepts.concept_id.astype(int), concepts.steering_instruction))
        missing = [c for c in ids if c not in lookup]
        if missing:
            raise KeyError(f"concepts {missing} have no steering_instruction in the concepts table")
        out.append(Condition("prompting", 1.0, ids, steering_instructions=[lookup[c] for c in ids]))
    for method, vec in vectors.items():
        module = vec.module
        rows = [vec.index_of(c) for c in ids]
        for factor in method_factors(vec.positions, fssv_factors):
            out.append(Condition(method, factor, ids, module, vec.layer, vec.positions, rows))
    return out


@torch.no_grad()
def choice_scores(model, tokenizer, user_turns: Sequence[str | list], choices: Sequence[Sequence[str]],
                  steering: Steering | None = None, micro_batch_size: int = 32, progress: bool = False,
                  desc: str = "cloze") -> np.ndarray:
    """[n_questions, n_options] sum of each option's token log-probs as the assistant's reply,
    under ``steering`` (its ``rows`` are per question)."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
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
            sums, _ = sequence_logprobs(model, hook, pad_id, seqs[s:s + micro_batch_size],
                                        rows[s:s + micro_batch_size], positions)
            scores.append(sums.float().cpu())

    with optional_hook(model, getattr(steering, "layer", None), getattr(steering, "module", None),
                       getattr(steering, "factor", 1.0)) as hook:
        run(hook)
    return torch.cat(scores).numpy().reshape(len(user_turns), shape[0] if shape else 0)


def answer_task(model, tokenizer, task: UtilityTask, questions: pd.DataFrame, user_turns: Sequence[str],
                steering: Steering | None = None, batch_size: int = 16, progress: bool = False,
                desc: str = "utility") -> tuple[list, list[str]]:
    """(predictions, raw outputs) for one task; ``user_turns`` align with ``questions`` (possibly
    repeated for several concepts, with ``steering.rows`` per turn)."""
    if task.scoring == "cloze":
        if task.kind != "choice":
            raise ValueError(f"task {task.name}: cloze scoring needs a choice task")
        reps = len(user_turns) // len(questions)
        choices = [list(c) for c in questions.choices] * reps
        scores = choice_scores(model, tokenizer, user_turns, choices, steering, micro_batch_size=2 * batch_size,
                               progress=progress, desc=desc)
        preds = [CHOICE_LETTERS[int(i)] for i in scores.argmax(axis=1)]
        return preds, [" ".join(f"{s:.3f}" for s in row) for row in scores]
    outs = generate(model, tokenizer, list(user_turns), steering, max_new_tokens=task.max_new_tokens,
                    temperature=0.0, batch_size=batch_size, progress=progress, desc=desc)
    texts = [o.text for o in outs]
    if task.kind == "number":
        return [parse_number(t) for t in texts], texts
    reps = len(user_turns) // len(questions)
    choices = [list(c) for c in questions.choices] * reps
    return [parse_choice(t, c) for t, c in zip(texts, choices)], texts


def evaluate_condition(model, tokenizer, tasks: list[tuple[UtilityTask, pd.DataFrame]], cond: Condition,
                       batch_size: int = 16, progress: bool = False, keep_outputs: bool = False) -> pd.DataFrame:
    """Accuracy rows (one per concept and task) of one condition; all its concepts share the calls."""
    rows = []
    for task, questions in tasks:
        base = [task_user_turn(task, r) for r in questions.to_dict("records")]
        turns, module_rows = [], []
        for k, cid in enumerate(cond.concept_ids):
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
            part = preds[k * n:(k + 1) * n]
            correct = int(sum(is_correct(task, p, a) for p, a in zip(part, questions.answer)))
            row = {"method": cond.method, "factor": float(cond.factor), "concept_id": int(cid), "task": task.name,
                   "n": n, "correct": correct, "accuracy": correct / n if n else float("nan"),
                   "positions": cond.positions, "layer": cond.layer, "scoring": task.scoring}
            if keep_outputs:
                row["outputs"] = raw[k * n:(k + 1) * n]
                row["predictions"] = [None if p is None else str(p) for p in part]
            rows.append(row)
    return pd.DataFrame(rows)


def evaluate_utility(model, tokenizer, tasks: list[tuple[UtilityTask, pd.DataFrame]], conditions: list[Condition],
                     batch_size: int = 16, progress: bool = True) -> pd.DataFrame:
    """The accuracy table: method, factor, concept_id, task, n, correct, accuracy, positions, layer, scoring."""
    frames = [evaluate_condition(model, tokenizer, tasks, c, batch_size, progress)
              for c in tqdm(conditions, desc="utility conditions", disable=not progress, unit="cond")]
    out = pd.concat(frames, ignore_index=True)
    out["layer"] = out["layer"].astype("Int64")
    return out


# --------------------------------------------------------------------------------------------
# robustness


def attack_prompts(concepts: pd.DataFrame, instructions: pd.DataFrame, concept_ids: Sequence[int],
                   n: int) -> pd.DataFrame:
    """Factor-free prompts of ``concept_ids`` rewritten by the suppression attack: ``user_turn`` is
    what the model sees, ``instruction`` stays the original (the judge rates against it)."""
    prompts = E.steering_prompts(concepts, instructions, n=n, concept_ids=[int(c) for c in concept_ids])
    return E.suppression_attack_prompts(prompts, concepts)


def attack_generations(model, tokenizer, prompts: pd.DataFrame, vectors: dict, fssv_factors: Sequence[float],
                       max_new_tokens: int = 128, temperature: float = 1.0, seed: int = 42, batch_size: int = 16,
                       progress: bool = True) -> pd.DataFrame:
    """Every prompt generated with each method's vector (``vectors``: name -> VectorFile) at factor
    1.0, FSSV methods also at the other ``fssv_factors``. The same seed for every method and factor,
    so row i samples from the same generator everywhere."""
    parts = []
    for method, vec in vectors.items():
        rows = [vec.index_of(c) for c in prompts.concept_id]
        for factor in method_factors(vec.positions, fssv_factors):
            steering = Steering(vec.module, vec.layer, vec.positions, rows=rows, factor=factor)
            outs = generate(model, tokenizer, list(prompts.user_turn), steering, max_new_tokens=max_new_tokens,
                            temperature=temperature, seed=seed, batch_size=batch_size, progress=progress,
                            desc=f"attack {method} x{factor:g}")
            alphas = getattr(vec.module, "alpha", None)
            parts.append(prompts.assign(method=method, factor=float(factor), layer=vec.layer,
                                        positions=vec.positions, response=[o.text for o in outs],
                                        learned_alpha=[float(alphas[r]) if alphas is not None else None
                                                       for r in rows]))
    out = pd.concat(parts, ignore_index=True)
    out["protocol"] = E.PROTOCOL_SUPPRESSION
    return out


# --------------------------------------------------------------------------------------------
# LoReFT comparison


def loreft_config(prosv_cfg: TrainConfig, hidden: int) -> TrainConfig:
    """Rank-1 LoReFT at the same positions, loss, schedule and seed as ``prosv_cfg``, with its one
    learning rate (for R and W alike) set to PrOSV's direction rate eta_v after width scaling: the
    rate of the parameter LoReFT's R row plays the role of (v). PrOSV's factor rate eta_alpha has
    no LoReFT counterpart (LoReFT's magnitude, W h + b - R h, is learned through W and b)."""
    _, lr_v = prosv_cfg.learning_rates(hidden)
    return replace(prosv_cfg, method="loreft", loreft_rank=1, eta_loreft=lr_v).validate()


def direction_cosines(sv_module, loreft_module, concept_names: Sequence | None = None) -> pd.DataFrame:
    """Per concept: signed and absolute cosine between LoReFT's (first) R row and PrOSV's v."""
    R = loreft_module.directions()[:, 0, :].float()
    V = torch.stack([v.detach().float() for v in sv_module.v]).to(R.device)
    cos = torch.nn.functional.cosine_similarity(R, V, dim=-1).cpu()
    names = list(concept_names) if concept_names is not None else list(range(len(cos)))
    return pd.DataFrame({"concept": names, "cosine": cos.abs().tolist(), "signed_cosine": cos.tolist(),
                         "alpha": [float(a) for a in sv_module.alpha],
                         "v_norm": [float(v.norm()) for v in sv_module.v]})


def compare_loreft(model, tokenizer, layer: int, datasets: list[list[Example]], prosv_cfg: TrainConfig,
                   concept_names: Sequence | None = None, progress: bool = True) -> dict:
    """Train PrOSV (``prosv_cfg``) and rank-1 LoReFT (:func:`loreft_config`) on the same data.

    Returns {"losses": method, concept, step, loss, ... ; "cosine": per concept; "prosv"/"loreft":
    the TrainResults}."""
    loreft_cfg = loreft_config(prosv_cfg, hidden_size(model))
    results = {}
    cache = PrefixCache(layer)  # both methods edit the same block output: one prefix serves both
    for name, cfg in (("prosv", prosv_cfg), ("loreft", loreft_cfg)):
        results[name] = train(model, tokenizer, layer, datasets, cfg, progress=progress, concept_names=concept_names,
                              cache=cache)
    losses = pd.concat([results[m].losses.assign(method=m, layer=layer, positions=prosv_cfg.positions,
                                                 lr=results[m].lr_v if m == "prosv" else loreft_cfg.eta_loreft)
                        for m in ("prosv", "loreft")], ignore_index=True)
    cols = ["method", "concept", "step", "loss"]
    losses = losses[cols + [c for c in losses.columns if c not in cols]]
    cosine = direction_cosines(results["prosv"].module, results["loreft"].module, concept_names)
    final = losses.sort_values("step").groupby(["method", "concept"]).loss.last().unstack("method")
    cosine["final_loss_prosv"] = cosine.concept.map(final["prosv"])
    cosine["final_loss_loreft"] = cosine.concept.map(final["loreft"])
    cosine = cosine.assign(layer=layer, positions=prosv_cfg.positions, lr=loreft_cfg.eta_loreft)
    return {"losses": losses, "cosine": cosine, "prosv": results["prosv"], "loreft": results["loreft"]}


@torch.no_grad()
def layer_outputs(model, tokenizer, prompts: Sequence[str | list], layer: int) -> list[torch.Tensor]:
    """Unsteered output of decoder block ``layer`` (the hidden state the interventions edit) for
    each chat-templated prompt, one [T, n] fp32 tensor per prompt (one forward pass each, no padding)."""
    check_layer(model, layer)
    device = next(model.parameters()).device
    captured = []

    def hook(block, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        captured.append(hidden[0].detach().float().cpu())

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    try:
        for p in prompts:
            ids = torch.tensor([template_ids(tokenizer, p)], device=device)
            model.get_decoder()(input_ids=ids)
    finally:
        handle.remove()
    return captured


def _common_prefix(seqs: list[list[int]]) -> int:
    n = 0
    while all(len(s) > n for s in seqs) and len({s[n] for s in seqs}) == 1:
        n += 1
    return n


def content_span(id_lists: list[list[int]]) -> list[tuple[int, int]]:
    """Per prompt, [start, end) of the tokens that differ between prompts (the instruction): the
    template before and after it is the longest prefix and suffix shared by every prompt."""
    if len(id_lists) < 2:
        raise ValueError("need at least two prompts to tell template from content")
    pre = _common_prefix(id_lists)
    suf = _common_prefix([s[::-1] for s in id_lists])
    spans = []
    for s in id_lists:
        end = max(len(s) - suf, pre + 1)
        spans.append((pre, min(end, len(s))))
    return spans


def spread_stats(x: torch.Tensor) -> tuple[float, float]:
    """For [P, n] vectors (one per prompt): the mean pairwise cosine similarity (i < j) and the
    relative std: sqrt(mean_i ||x_i - mean||^2) (std over prompts, all dimensions together)
    divided by the mean norm."""
    x = x.double()
    unit = torch.nn.functional.normalize(x, dim=-1)
    sim = unit @ unit.T
    p = x.shape[0]
    iu = torch.triu_indices(p, p, offset=1)
    mean_cos = float(sim[iu[0], iu[1]].mean())
    std = float(((x - x.mean(0)) ** 2).sum(-1).mean().sqrt())
    return mean_cos, std / float(x.norm(dim=-1).mean())


def hidden_state_spread(model, tokenizer, prompts: Sequence[str], layer: int, positions: str,
                        content_quantiles: Sequence[float] = (0.25, 0.5, 0.75)) -> pd.DataFrame:
    """The mechanism of spec 5: how much the unsteered hidden state at the output of ``layer``
    varies across ``prompts`` at each intervened position (kind "intervened", position ``p{i}``
    = i-th token, ``s{k}`` = k-th from the end) vs at instruction tokens (kind "content",
    position ``content@q``: the token at fraction q of each prompt's instruction span).

    Columns: kind, position, token, mean_pairwise_cosine, relative_std, n_prompts, layer."""
    if len(prompts) < 2:
        raise ValueError("need at least two prompts")
    spec = as_spec(positions)
    ids = [template_ids(tokenizer, p) for p in prompts]
    hidden = layer_outputs(model, tokenizer, prompts, layer)
    spans = content_span(ids)
    rows = []

    def add(kind, label, idx):
        x = torch.stack([h[i] for h, i in zip(hidden, idx)])
        cos, rel = spread_stats(x)
        toks = {tokenizer.convert_ids_to_tokens(s[i]) for s, i in zip(ids, idx)}
        rows.append({"kind": kind, "position": label, "token": next(iter(toks)) if len(toks) == 1 else "(varies)",
                     "mean_pairwise_cosine": cos, "relative_std": rel, "n_prompts": len(prompts), "layer": layer})

    lengths = [len(s) for s in ids]
    shortest = min(lengths)
    for i in spec.prompt_indices(shortest):
        if i < spec.prefix or spec.whole_prompt:
            add("intervened", f"p{i + 1}", [i] * len(ids))
        else:
            k = shortest - i
            add("intervened", f"s{k}", [n - k for n in lengths])
    for q in content_quantiles:
        idx = [min(end - 1, start + int(math.floor(q * (end - start)))) for start, end in spans]
        add("content", f"content@{q:g}", idx)
    return pd.DataFrame(rows)


def spread_prompts(pairs: pd.DataFrame, concept_ids: Sequence[int], n: int = 16) -> list[str]:
    """Up to ``n`` distinct training instructions of the compared concepts, in file order."""
    rows = pairs[pairs.concept_id.isin([int(c) for c in concept_ids])]
    if "keep" in rows.columns:
        rows = rows[rows.keep]
    out = list(dict.fromkeys(rows.instruction))[:n]
    if len(out) < 2:
        raise ValueError(f"concepts {list(concept_ids)} have fewer than two distinct instructions")
    return out


# --------------------------------------------------------------------------------------------
# scaling study (spec section 2)


@dataclass(frozen=True)
class ScalingCell:
    """One training setting of the scaling study; `kind` says which comparison it belongs to."""

    name: str
    kind: str  # "grid" (Adam, raw), "fixed" (alpha frozen), "sgd", "transfer"
    c_alpha: float
    eta_alpha: float
    optimizer: str = "adam"
    fixed_alpha: float | None = None
    lr_scaling: str = "raw"
    c_v: float | None = None  # None: the base method's
    eta_v: float | None = None

    def train_config(self, base: TrainConfig) -> TrainConfig:
        changes = dict(c_alpha=self.c_alpha, eta_alpha=self.eta_alpha, optimizer=self.optimizer,
                       fixed_alpha=self.fixed_alpha, lr_scaling=self.lr_scaling, method="sv")
        if self.c_v is not None:
            changes["c_v"] = self.c_v
        if self.eta_v is not None:
            changes["eta_v"] = self.eta_v
        return replace(base, **changes).validate()


def scaling_cells(spec: dict, base: TrainConfig, hidden: int) -> list[ScalingCell]:
    """The cells of the study from the config's `scaling` section and the base (PrOSV) method.

    Every rate is raw (as applied at width `hidden`); a width-scaled base method contributes the
    rates it applies at this width.

    - grid: every c_alpha x eta_alpha with Adam and raw rates (the base eta_v and c_v);
    - fixed: alpha frozen at `fixed_alpha` (direction only), the base v rate;
    - sgd: SGD instead of Adam at each c_alpha of `sgd_c_alpha` with the base rates;
    - transfer: reference rates tuned at `reference_width` used as they are ("raw") and scaled to
      this model's width by the rule eta_alpha * sqrt(n / n_ref), eta_v * sqrt(n_ref / n) ("width").
    """
    lr_alpha, lr_v = base.learning_rates(hidden)
    cells = [ScalingCell(f"adam c{_num(c)} lr{_num(e)}", "grid", float(c), float(e), eta_v=lr_v)
             for c in spec["c_alpha"] for e in spec["eta_alpha"]]
    if spec.get("fixed_alpha") is not None:
        cells.append(ScalingCell(f"alpha fixed {_num(spec['fixed_alpha'])}", "fixed", base.c_alpha, lr_alpha,
                                 fixed_alpha=float(spec["fixed_alpha"]), eta_v=lr_v))
    cells += [ScalingCell(f"sgd c{_num(c)} lr{_num(lr_alpha)}", "sgd", float(c), lr_alpha, "sgd", eta_v=lr_v)
              for c in spec.get("sgd_c_alpha", [])]
    ref = spec.get("transfer")
    if ref:
        root = math.sqrt(float(ref["reference_width"]))
        common = dict(c_alpha=float(ref["c_alpha"]), c_v=float(ref["c_v"]))
        cells.append(ScalingCell("transfer raw", "transfer", eta_alpha=float(ref["eta_alpha"]),
                                 eta_v=float(ref["eta_v"]), **common))
        # width-scaled base rates that reproduce the reference rates at the reference width
        cells.append(ScalingCell("transfer width", "transfer", eta_alpha=float(ref["eta_alpha"]) / root,
                                 eta_v=float(ref["eta_v"]) * root, lr_scaling="width", **common))
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise ValueError(f"the scaling study has duplicate cells: {names}")
    return cells


def _num(x) -> str:
    return f"{float(x):g}"


def run_scaling(model, tokenizer, layer: int, positions: str, datasets: list[list[Example]], base: TrainConfig,
                cells: Sequence[ScalingCell], concept_names: Sequence, progress: bool = True):
    """Train every cell on the same data (one prefix cache) and stack the results.

    Returns (module, names, losses, cells table): a SteeringVectors with one row per
    (cell, concept) named "<cell>|<concept>", the per-step losses with the cell's settings, and one
    row per cell with its learning rates as applied, its first- and last-epoch mean training loss
    (mean over concepts) and its final alpha.
    """
    hidden = hidden_size(model)
    cache = PrefixCache(layer)  # every cell edits the same block output: one prefix serves them all
    modules, names, frames, rows = [], [], [], []
    for cell in tqdm(cells, desc=f"scaling L{layer} {positions}", disable=not progress, unit="cell"):
        cfg = replace(cell.train_config(base), positions=positions)
        res = train(model, tokenizer, layer, datasets, cfg, progress=False, concept_names=list(concept_names),
                    cache=cache)
        modules.append(res.module)
        names += [f"{cell.name}|{c}" for c in concept_names]
        frames.append(res.losses.assign(cell=cell.name, kind=cell.kind))
        # epoch means, not single steps: every cell sees the same examples in the same order, so an
        # epoch's mean loss compares cells while one step's loss mostly reflects which batch it was
        last = res.losses[res.losses.epoch == res.losses.epoch.max()]
        final = res.losses.sort_values("step").groupby("concept").tail(1)
        rows.append({"cell": cell.name, "kind": cell.kind, "c_alpha": cell.c_alpha, "eta_alpha": cell.eta_alpha,
                     "optimizer": cell.optimizer, "fixed_alpha": cell.fixed_alpha, "lr_scaling": cell.lr_scaling,
                     "c_v": cfg.c_v, "eta_v": cfg.eta_v, "lr_alpha": res.lr_alpha, "lr_v": res.lr_v,
                     "alpha_final": float(final["alpha"].mean()),
                     "final_loss": float(last.groupby("concept").loss.mean().mean()),
                     "first_loss": float(res.losses[res.losses.epoch == 0].groupby("concept").loss.mean().mean()),
                     "layer": layer, "positions": positions, "hidden": hidden})
    module = SteeringVectors.stack(modules).requires_grad_(False)
    return module, names, pd.concat(frames, ignore_index=True), pd.DataFrame(rows)


def scaling_prompts(prompts: pd.DataFrame, names: Sequence[str]) -> tuple[pd.DataFrame, list[int]]:
    """Every factor-free prompt once per cell, with the stacked module's row for (cell, concept)."""
    index = {n: i for i, n in enumerate(names)}
    cells = list(dict.fromkeys(n.split("|", 1)[0] for n in names))
    parts, rows = [], []
    for cell in cells:
        parts.append(prompts.assign(cell=cell))
        rows += [index[f"{cell}|{c}"] for c in prompts.concept_id]
    return pd.concat(parts, ignore_index=True), rows
