"""Train the vectors of one shard of a split, in one model load and shared forward passes; a killed
job resumes from its checkpoint beside the output. A location variant (rule train_locate) is the
same job with its method and split given as params instead of wildcards."""

import time
from pathlib import Path

import pandas as pd

from prosv.jobs import (
    concept_examples,
    concept_names,
    load_configured_model,
    log,
    save_training,
    start_job,
    train_config,
)
from prosv.training import train

start_job(snakemake)
w = snakemake.wildcards
method = snakemake.params.get("method") or w.method
split = snakemake.params.get("split") or w.split
cfg = train_config(snakemake.config, method, w.positions)
concepts = list(snakemake.params.concepts)
pairs = pd.read_parquet(snakemake.input.pairs)
datasets = concept_examples(pairs, concepts, snakemake.params.hp.get("max_examples"))
model, tokenizer = load_configured_model(snakemake.config)
log.info(
    "training %s at layer %s, positions %s, on %d concepts (%s pairs)",
    method,
    w.layer,
    w.positions,
    len(concepts),
    [len(d) for d in datasets],
)
t0 = time.time()
checkpoint = f"{snakemake.output.vectors}.checkpoint"
result = train(model, tokenizer, int(w.layer), datasets, cfg, concept_names=concepts, checkpoint=checkpoint)
save_training(
    result,
    model,
    method=method,
    split=split,
    vectors=snakemake.output.vectors,
    losses=snakemake.output.losses,
    hyperparameters=snakemake.params.hp,
    seconds=time.time() - t0,
    names=concept_names(pairs, concepts),
)
Path(checkpoint).unlink(missing_ok=True)
