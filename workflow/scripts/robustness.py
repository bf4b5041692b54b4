"""Robustness: the factor-free prompts under the concept-suppression attack, generated with each method's vectors."""

import pandas as pd

from prosv import experiments as X
from prosv.jobs import load_configured_model, log, start_job, write_parquet
from prosv.vectors import load_vectors

start_job(snakemake)
rb, ev = snakemake.params.robustness, snakemake.params.evaluate
methods = list(snakemake.params.methods)
vectors = {m: load_vectors(snakemake.input[m]) for m in methods}
concept_ids = X.first_concepts(vectors[methods[0]], int(rb.get("concepts", 4)))
concepts = pd.read_parquet(snakemake.input.concepts)
instructions = pd.read_parquet(snakemake.input.instructions)
prompts = X.attack_prompts(concepts, instructions, concept_ids, int(ev.get("instructions_per_concept", 10)))
model, tokenizer = load_configured_model(snakemake.config)
for vec in vectors.values():
    vec.module.to(next(model.parameters()).device)
log.info("robustness: %d attacked prompts (concepts %s), methods %s", len(prompts), concept_ids, methods)
result = X.attack_generations(model, tokenizer, prompts, vectors, rb.get("fssv_factors", [1.0, 0.8, 0.5]),
                              max_new_tokens=int(ev.get("max_new_tokens", 128)),
                              temperature=float(ev.get("temperature", 1.0)), seed=int(snakemake.config["seed"]),
                              batch_size=int(ev.get("batch_size", 16)), progress=True)
result["split"] = "eval"
log.info("%d responses written", len(result))
write_parquet(snakemake.output[0], result)
