"""Robustness: the factor-free prompts under the concept-suppression attack, generated with each method's vectors."""

import pandas as pd

from prosv import experiments as X
from prosv.files import write_parquet
from prosv.jobs import load_configured_model, log, start_job
from prosv.vectors import load_vectors

start_job(snakemake)
rb, ev = snakemake.params.robustness, snakemake.params.evaluate
methods = list(snakemake.params.methods)
vectors = {m: load_vectors(snakemake.input[m]) for m in methods}
concepts = pd.read_parquet(snakemake.input.concepts)
instructions = pd.read_parquet(snakemake.input.instructions)
prompts = X.attack_prompts(
    concepts,
    instructions,
    X.first_concepts(vectors[methods[0]], rb["concepts"]),
    ev["instructions_per_concept"],
    shard=snakemake.params.concepts,
)
concept_ids = list(dict.fromkeys(prompts.concept_id))
model, tokenizer = load_configured_model(snakemake.config)
for vec in vectors.values():
    vec.check_compatible(model).module.to(next(model.parameters()).device)
log.info("robustness: %d attacked prompts (concepts %s), methods %s", len(prompts), concept_ids, methods)
result = X.attack_generations(
    model,
    tokenizer,
    prompts,
    vectors,
    rb["fssv_factors"],
    max_new_tokens=ev["max_new_tokens"],
    temperature=ev["temperature"],
    seed=int(snakemake.config["seed"]),
    batch_size=ev["batch_size"],
    progress=True,
)
result["split"] = "eval"
log.info("%d responses written", len(result))
write_parquet(snakemake.output[0], result)
