"""Utility: accuracy on general tasks, unsteered, with the prompting baseline and with each method's vectors."""

import pandas as pd

from prosv import experiments as X
from prosv.files import write_parquet
from prosv.jobs import load_configured_model, log, start_job
from prosv.vectors import load_vectors

start_job(snakemake)
cfg = snakemake.params.utility
methods = list(snakemake.params.methods)
vectors = {m: load_vectors(snakemake.input[m]) for m in methods}
# this job's shard of the first concepts (all of them without concepts_per_job)
shard = set(snakemake.params.concepts)
concept_ids = [c for c in X.first_concepts(vectors[methods[0]], cfg["concepts"]) if c in shard]
concepts = pd.read_parquet(snakemake.input.concepts)
tasks = X.load_utility_tasks(
    cfg["source"],
    snakemake.params.data_dir,
    cfg["questions_per_task"],
    cfg.get("tiny_gsm8k_path"),
    cfg.get("tiny_mmlu_path"),
)
conditions = X.utility_conditions(
    vectors, concepts, concept_ids, cfg["fssv_factors"], unsteered=snakemake.params.unsteered
)
model, tokenizer = load_configured_model(snakemake.config)
for vec in vectors.values():
    vec.check_compatible(model).module.to(next(model.parameters()).device)
log.info(
    "utility: %d conditions x %s on concepts %s",
    len(conditions),
    [f"{t.name}({len(q)}, {t.scoring})" for t, q in tasks],
    concept_ids,
)
batch = snakemake.config["evaluate"]["batch_size"]
result = X.evaluate_utility(model, tokenizer, tasks, conditions, batch_size=batch, progress=True)
summary = result.groupby(["method", "factor", "task"]).accuracy.agg(["mean", "std", "count"])
log.info("accuracy (mean over concepts):\n%s", summary.to_string())
write_parquet(snakemake.output[0], result)
