"""Train the vectors of every concept in a split, in one model load and shared forward passes."""

import time

import pandas as pd

from prosv.jobs import concept_examples, load_configured_model, log, start_job, train_config, write_parquet
from prosv.training import train
from prosv.vectors import save_vectors

start_job(snakemake)
w = snakemake.wildcards
cfg = train_config(snakemake.config, w.method, w.positions)
concepts = list(snakemake.params.concepts)
pairs = pd.read_parquet(snakemake.input.pairs)
datasets = concept_examples(pairs, concepts, snakemake.params.hp.get("max_examples"))
model, tokenizer = load_configured_model(snakemake.config)
log.info("training %s at layer %s, positions %s, on %d concepts (%s pairs)", w.method, w.layer, w.positions,
         len(concepts), [len(d) for d in datasets])
t0 = time.time()
result = train(model, tokenizer, int(w.layer), datasets, cfg, concept_names=concepts)
log.info("trained in %.1f s; lr_alpha=%.4g lr_v=%.4g", time.time() - t0, result.lr_alpha, result.lr_v)
losses = result.losses.assign(method=w.method, layer=int(w.layer), positions=w.positions, split=w.split)
write_parquet(snakemake.output.losses, losses)
save_vectors(snakemake.output.vectors, result.module, model=model.prosv_ref.source_id, model_revision=None,
             layer=int(w.layer), positions=w.positions, loss=cfg.loss, hyperparameters=snakemake.params.hp,
             concepts=concepts, extra={"method_name": w.method, "train_seconds": round(time.time() - t0, 1)})
