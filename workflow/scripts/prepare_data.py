"""Concepts, training pairs (concept-laden + neutral responses) and evaluation instructions."""

import pandas as pd

from prosv import data as D
from prosv.concept_data import write_concept_responses
from prosv.jobs import load_configured_model, log, start_job, write_parquet

start_job(snakemake)
cfg = snakemake.params.data
wanted = list(snakemake.params.concepts)

if cfg["source"] == "embedded":
    embedded = D.load_embedded(cfg.get("data_dir"))
    concepts = embedded["concepts"]
    missing = sorted(set(wanted) - set(concepts.concept_id))
    if missing:
        raise ValueError(f"config data.dev_concepts/eval_concepts name concepts {missing} that are not in "
                         f"{cfg.get('data_dir', 'data')}/concepts.jsonl (ids {concepts.concept_id.min()}..{concepts.concept_id.max()})")
    concepts = concepts[concepts.concept_id.isin(wanted)]
    model, tokenizer = load_configured_model(snakemake.config)
    pairs = write_concept_responses(model, tokenizer, concepts, embedded["instructions_train"],
                                    per_concept=cfg["instructions_per_concept"],
                                    max_new_tokens=cfg["response_tokens"],
                                    temperature=cfg["generator_temperature"], seed=snakemake.params.seed)
    # hand-written exemplars are positives too; their neutral answer is the model's own answer
    ex = embedded["exemplars"][embedded["exemplars"].concept_id.isin(wanted)].merge(
        concepts[["concept_id", "concept", "genre"]], on="concept_id")
    from prosv.generation import generate

    neutral = generate(model, tokenizer, list(ex.instruction), max_new_tokens=cfg["response_tokens"], progress=True,
                       desc="exemplar neutral responses")
    ex = ex.assign(instruction_id=-1, neutral_response=[g.text.strip() for g in neutral], source="exemplar",
                   keep=True)
    pairs = pd.concat([ex[pairs.columns], pairs], ignore_index=True)
    eval_instructions = embedded["instructions_eval"]
else:
    table = D.load_axbench_concept500(cfg["axbench_path"], subset=cfg.get("axbench_subset"))
    concepts = (table[table.concept_id.isin(wanted)][["concept_id", "concept", "genre"]]
                .drop_duplicates("concept_id").reset_index(drop=True))
    pos = table[(table.category == "positive") & table.concept_id.isin(wanted)]
    pairs = pos.assign(instruction_id=-1, neutral_response=None, source="axbench", keep=True)[
        ["concept_id", "concept", "genre", "instruction_id", "instruction", "response", "neutral_response", "source", "keep"]]
    eval_instructions = D.load_alpaca_eval(cfg.get("alpaca_eval_path"))
    concepts = concepts.assign(steering_instruction=[f"In your answer, bring in {c}." for c in concepts.concept],
                               suppression_instruction=[f"Do not mention {c} at all." for c in concepts.concept])

pairs = pairs.assign(split="train")
for cid, n in pairs[pairs.keep].groupby("concept_id").size().items():
    log.info("concept %s: %d training pairs kept", cid, n)
empty = sorted(set(wanted) - set(pairs[pairs.keep].concept_id))
if empty:
    raise ValueError(f"no training pairs kept for concepts {empty}")
split = {c: "dev" for c in snakemake.config["data"]["dev_concepts"]}
concepts = concepts.assign(split=concepts.concept_id.map(split).fillna("eval"))
write_parquet(snakemake.output.pairs, pairs)
write_parquet(snakemake.output.concepts, concepts)
write_parquet(snakemake.output.eval_instructions, eval_instructions.reset_index(drop=True))
