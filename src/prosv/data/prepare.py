"""The study's data step: training pairs, the concept table and the evaluation instructions.

Two sources, chosen by the config's ``data.source``:

- ``embedded``: our concepts from ``data/``; concept-laden responses written by the configured model
  (:mod:`.writer`) plus our hand-written exemplars as positives; the model's own plain answers as the
  concept-neutral responses of the ``simpo`` loss; our evaluation instructions.
- ``axbench``: AxBench Concept500 positives (a local folder, or a hub copy such as
  ``pyvene/axbench-concept16k``), the contrastive pairs' concept-neutral responses when
  ``data.contrastive_path`` is given (``colored-dye/concept500-contrastive`` layout), AlpacaEval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..files import write_parquet
from .alpaca import load_alpaca_eval
from .axbench import concept_positives, load_axbench_concept500, load_axbench_hub, load_contrastive_pairs
from .embedded import load_embedded
from .writer import PAIR_COLUMNS, write_concept_responses

log = logging.getLogger(__name__)


# our wording for hub concepts, which come without steering or suppression instructions
STEERING_TEMPLATE = "In your answer, bring in {concept}."
SUPPRESSION_TEMPLATE = "Do not mention {concept} at all."


@dataclass
class StudyData:
    pairs: pd.DataFrame  # PAIR_COLUMNS + split ('train')
    concepts: pd.DataFrame  # concept_id, concept, genre, steering_instruction, suppression_instruction, split
    eval_instructions: pd.DataFrame  # instruction (+ instruction_id), in file order


def prepare_study_data(
    data_cfg: dict,
    concept_ids: list[int],
    dev_ids: list[int],
    load_model: Callable,
    seed: int = 42,
    judge_config: dict | None = None,
    neutral: bool = True,
) -> StudyData:
    """Build the whole data of a study in one call (:func:`prepare_concepts` and :func:`prepare_pairs`);
    the workflow makes them one split per job, which gives each concept the same rows (the joined
    table lists the splits one after the other)."""
    concepts, instructions = prepare_concepts(data_cfg, concept_ids, dev_ids)
    pairs = prepare_pairs(data_cfg, concept_ids, load_model, seed, judge_config, neutral)
    return StudyData(pairs, concepts, instructions)


def prepare_concepts(data_cfg: dict, concept_ids: list[int], dev_ids: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The concept table (with each concept's split, 'dev' or 'eval') and the evaluation instructions;
    no model is needed."""
    if data_cfg["source"] == "embedded":
        embedded = load_embedded(data_cfg.get("data_dir"))
        concepts = _embedded_concepts(embedded, data_cfg, concept_ids).drop(columns=["split"])
        instructions = embedded["instructions_eval"]
    else:
        concepts = _axbench_concepts(_axbench_table(data_cfg), concept_ids)
        instructions = load_alpaca_eval(data_cfg.get("alpaca_eval_path"))
    concepts = concepts.assign(split=["dev" if c in set(dev_ids) else "eval" for c in concepts.concept_id])
    return concepts.reset_index(drop=True), instructions.reset_index(drop=True)


def prepare_pairs(
    data_cfg: dict,
    concept_ids: list[int],
    load_model: Callable,
    seed: int = 42,
    judge_config: dict | None = None,
    neutral: bool = True,
) -> pd.DataFrame:
    """The training pairs of ``concept_ids``; ``load_model()`` is called only when a model must write
    responses.

    The embedded source's writer takes ``data_cfg['writer']`` (attempts, few_shot,
    min_concept_rating); with ``min_concept_rating`` set, the judge of ``judge_config`` rates what
    the model wrote and only responses about the concept are kept. ``neutral`` false skips the
    model's concept-neutral answers, which only the simpo loss reads. A concept's random draws do not
    depend on which other concepts are prepared in the same call (the shape of a decoding batch can
    still, rarely, move a sampled token)."""
    if data_cfg["source"] == "embedded":
        pairs = _embedded_pairs(data_cfg, concept_ids, load_model, seed, judge_config, neutral)
    else:
        pairs = _axbench_pairs(data_cfg, _axbench_table(data_cfg), concept_ids)
    pairs = pairs.assign(split="train")
    for cid, n in pairs[pairs.keep].groupby("concept_id").size().items():
        log.info("concept %s: %d training pairs kept", cid, n)
    empty = sorted(set(concept_ids) - set(pairs[pairs.keep].concept_id))
    if empty:
        raise ValueError(f"no training pairs kept for concepts {empty}")
    return pairs.reset_index(drop=True)


def join_pairs(paths: list, out: str | Path) -> Path:
    """One pairs table from the splits' tables, rows in the order of ``paths``."""
    if not paths:
        raise ValueError(f"{out}: no training pairs to join")
    return write_parquet(out, pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True))


def _embedded_concepts(embedded: dict, data_cfg: dict, concept_ids: list[int]) -> pd.DataFrame:
    concepts = embedded["concepts"]
    missing = sorted(set(concept_ids) - set(concepts.concept_id))
    if missing:
        where = Path(data_cfg.get("data_dir") or "data") / "concepts.jsonl"
        raise ValueError(
            f"config keys data.dev_concepts/data.eval_concepts: concepts {missing} are not in {where} "
            f"(ids {concepts.concept_id.min()}..{concepts.concept_id.max()})"
        )
    return concepts[concepts.concept_id.isin(concept_ids)]


def _embedded_pairs(data_cfg, concept_ids, load_model, seed, judge_config, neutral):
    embedded = load_embedded(data_cfg.get("data_dir"))
    concepts = _embedded_concepts(embedded, data_cfg, concept_ids)
    exemplars = embedded["exemplars"][embedded["exemplars"].concept_id.isin(concept_ids)]
    model, tokenizer = load_model()
    return write_embedded_pairs(
        data_cfg, concepts, exemplars, embedded["instructions_train"], model, tokenizer, seed, judge_config, neutral
    )


def write_embedded_pairs(
    data_cfg: dict,
    concepts: pd.DataFrame,
    exemplars: pd.DataFrame,
    instructions: pd.DataFrame,
    model,
    tokenizer,
    seed: int,
    judge_config: dict | None = None,
    neutral: bool = True,
) -> pd.DataFrame:
    """Training pairs for ``concepts`` written by ``model`` as the data step writes them: the settings
    of ``data_cfg`` (instructions per concept, response length, temperature, ``writer``), the judge of
    ``judge_config`` when ``writer.min_concept_rating`` is set, ``exemplars`` kept as positives, the
    model's neutral answers when ``neutral``."""
    writer = dict(data_cfg.get("writer") or {})
    judge = None
    if writer.get("min_concept_rating") is not None:
        from ..judges import make_judge  # the offline judge's models load only when they are used

        judge = make_judge(judge_config or {"kind": "offline"})
    else:
        writer.pop("min_concept_rating", None)
    pairs = write_concept_responses(
        model,
        tokenizer,
        concepts,
        instructions,
        per_concept=data_cfg["instructions_per_concept"],
        max_new_tokens=data_cfg["response_tokens"],
        temperature=data_cfg["generator_temperature"],
        seed=seed,
        exemplars=exemplars,
        judge=judge,
        neutral=neutral,
        **writer,
    )
    if judge is not None:
        _log_concept_ratings(pairs)
        judge.close()
    return pairs[PAIR_COLUMNS]


def _log_concept_ratings(pairs: pd.DataFrame) -> None:
    kept = pairs[pairs.keep]
    for source, rows in kept.groupby("source"):
        log.info(
            "%s responses kept: %d, rated concept = 2 by the judge: %.0f%%",
            source,
            len(rows),
            100 * (rows.concept_rating == 2).mean(),
        )
    written = pairs[pairs.source == "generated"]
    log.info("written responses kept by the judge: %d of %d", int(written.keep.sum()), len(written))


def _axbench_table(data_cfg) -> pd.DataFrame:
    source = data_cfg["axbench_path"]
    subset = data_cfg.get("axbench_subset")
    if Path(source).exists():
        return load_axbench_concept500(source, subset=subset)
    # a hub copy: subset '2b_l10' is the file 2b/l10/train/data.parquet
    model, layer = (subset or "2b_l10").split("_l")
    return load_axbench_hub(source, model=model, layer=int(layer))


def _axbench_concepts(table: pd.DataFrame, concept_ids) -> pd.DataFrame:
    concepts = (
        table[table.concept_id.isin(concept_ids)][["concept_id", "concept", "genre"]]
        .drop_duplicates("concept_id")
        .reset_index(drop=True)
    )
    return concepts.assign(
        steering_instruction=[STEERING_TEMPLATE.format(concept=c) for c in concepts.concept],
        suppression_instruction=[SUPPRESSION_TEMPLATE.format(concept=c) for c in concepts.concept],
    )


def _axbench_pairs(data_cfg, table: pd.DataFrame, concept_ids) -> pd.DataFrame:
    pos = pd.concat([concept_positives(table, c) for c in concept_ids], ignore_index=True)
    pairs = pos.assign(
        instruction_id=-1, neutral_response=None, source="axbench", keep=True, concept_rating=float("nan")
    )
    contrastive = data_cfg.get("contrastive_path")
    if contrastive:
        local = Path(contrastive).exists()
        subset = data_cfg.get("axbench_subset")
        pairs = _with_neutral_responses(
            pairs,
            load_contrastive_pairs(
                contrastive if local else None, subset=subset, **({} if local else {"repo_id": contrastive})
            ),
        )
    return pairs[PAIR_COLUMNS]


def _with_neutral_responses(pairs: pd.DataFrame, contrastive: pd.DataFrame) -> pd.DataFrame:
    """Use the contrastive set's (instruction, chosen, rejected) as pairs where it covers a concept:
    its chosen response is the concept response, its rejected one the concept-neutral response."""
    covered = set(contrastive.concept_id)
    kept = pairs[~pairs.concept_id.isin(covered)]
    extra = contrastive[contrastive.concept_id.isin(set(pairs.concept_id))]
    meta = pairs.drop_duplicates("concept_id").set_index("concept_id")
    extra = pd.DataFrame(
        {
            "concept_id": extra.concept_id,
            "concept": extra.concept_id.map(meta.concept),
            "genre": extra.concept_id.map(meta.genre),
            "instruction_id": -1,
            "instruction": extra.instruction,
            "response": extra.chosen,
            "neutral_response": extra.rejected,
            "source": "contrastive",
            "keep": True,
            "concept_rating": float("nan"),
        }
    )
    return pd.concat([kept, extra], ignore_index=True)
