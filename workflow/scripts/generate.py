"""Responses for the evaluation prompts: steered with the learned factor, over a factor grid, or a baseline."""

import pandas as pd

from prosv import evaluation as E
from prosv import experiments as X
from prosv.files import file_digests, write_parquet
from prosv.jobs import concepts_in_parts, load_configured_model, log, remove_parts, start_job
from prosv.vectors import load_vectors

start_job(snakemake)
ev, mode = snakemake.params.evaluate, snakemake.params.mode
split = snakemake.params.get("split") or snakemake.wildcards.split
concepts = pd.read_parquet(snakemake.input.concepts)
concepts = concepts[concepts.split == split]
prompts = E.steering_prompts(concepts, pd.read_parquet(snakemake.input.instructions), n=ev["instructions_per_concept"])
if snakemake.params.get("concepts") is not None:
    # one shard: its concepts' rows of the split's table, so each keeps its split-wide sample id
    prompts = prompts[prompts.concept_id.isin(snakemake.params.concepts)]
model, tokenizer = load_configured_model(snakemake.config)
gen = dict(
    max_new_tokens=ev["max_new_tokens"],
    temperature=ev["temperature"],
    seed=int(snakemake.config["seed"]),
    batch_size=ev["batch_size"],
    progress=True,
)
files = snakemake.input.get("vectors", [])
files = [files] if isinstance(files, str) else list(files)  # a method's run, or every placement of a layer
vectors = [load_vectors(path, model) for path in files]
factors = ev["factor_grid"] if mode == "grid" else None


def respond(part):
    if mode in X.BASELINES:
        return X.baseline_responses(model, tokenizer, part, concepts, mode, **gen)
    return X.vector_responses(model, tokenizer, part, vectors, factors, **gen)


# written part by part, so a killed job keeps the concepts it finished
fingerprint = dict(mode=mode, gen=gen, factors=factors, model=snakemake.config["model"], vectors=file_digests(files))
result = concepts_in_parts(
    prompts, respond, snakemake.output[0], rows_per_part=ev["batch_size"], fingerprint=fingerprint
)
log.info("%d responses written", len(result))
write_parquet(snakemake.output[0], result.assign(split=split))
remove_parts(snakemake.output[0])
