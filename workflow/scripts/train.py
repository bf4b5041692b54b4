"""Train the vectors of every concept in a split, in one model load and shared forward passes."""

import time

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
cfg = train_config(snakemake.config, w.method, w.positions)
concepts = list(snakemake.params.concepts)
pairs = pd.read_parquet(snakemake.input.pairs)
datasets = concept_examples(pairs, concepts, snakemake.params.hp.get("max_examples"))
model, tokenizer = load_configured_model(snakemake.config)
log.info(
    "training %s at layer %s, positions %s, on %d concepts (%s pairs)",
    w.method,
    w.layer,
    w.positions,
    len(concepts),
    [len(d) for d in datasets],
)
t0 = time.time()
result = train(model, tokenizer, int(w.layer), datasets, cfg, concept_names=concepts)
save_training(
    result,
    model,
    method=w.method,
    split=w.split,
    vectors=snakemake.output.vectors,
    losses=snakemake.output.losses,
    hyperparameters=snakemake.params.hp,
    seconds=time.time() - t0,
    names=concept_names(pairs, concepts),
)
