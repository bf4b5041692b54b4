"""Responses for the evaluation prompts: steered with the learned factor, over a factor grid, or a baseline."""

import pandas as pd

from prosv import evaluation as E
from prosv import experiments as X
from prosv.files import write_parquet
from prosv.jobs import load_configured_model, log, start_job
from prosv.vectors import load_vectors

start_job(snakemake)
ev, mode = snakemake.params.evaluate, snakemake.params.mode
split = snakemake.params.get("split") or snakemake.wildcards.split
concepts = pd.read_parquet(snakemake.input.concepts)
concepts = concepts[concepts.split == split]
prompts = E.steering_prompts(concepts, pd.read_parquet(snakemake.input.instructions), n=ev["instructions_per_concept"])
model, tokenizer = load_configured_model(snakemake.config)
gen = dict(
    max_new_tokens=ev["max_new_tokens"],
    temperature=ev["temperature"],
    seed=int(snakemake.config["seed"]),
    batch_size=ev["batch_size"],
    progress=True,
)
if mode in X.BASELINES:
    result = X.baseline_responses(model, tokenizer, prompts, concepts, mode, **gen)
else:
    # one vector file (a method's run) or several (every location variant of a layer)
    files = snakemake.input.vectors
    vectors = [load_vectors(path, model) for path in ([files] if isinstance(files, str) else list(files))]
    result = X.vector_responses(
        model, tokenizer, prompts, vectors, ev["factor_grid"] if mode == "grid" else None, **gen
    )
log.info("%d responses written", len(result))
write_parquet(snakemake.output[0], result.assign(split=split))
