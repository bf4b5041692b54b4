"""Train one location variant (layer, positions) on the development concepts.

Prompt-only variants use locate.method's hyper-parameters, `all` uses locate.fssv_method's.
"""

import pandas as pd

from prosv import experiments as X
from prosv.jobs import concept_examples, concept_names, load_configured_model, save_training, start_job, train_config

start_job(snakemake)
layer, positions = int(snakemake.wildcards.layer), snakemake.wildcards.positions
concepts = list(snakemake.params.concepts)
method = snakemake.params.method
pairs = pd.read_parquet(snakemake.input.pairs)
datasets = concept_examples(pairs, concepts, snakemake.params.max_examples)
model, tokenizer = load_configured_model(snakemake.config)
cfg = train_config(snakemake.config, method, positions)
result, seconds = X.train_variant(model, tokenizer, layer, datasets, cfg, concepts)
save_training(
    result,
    model,
    method=method,
    split="dev",
    vectors=snakemake.output.vectors,
    losses=snakemake.output.losses,
    hyperparameters=snakemake.params.hp,
    seconds=seconds,
    concepts=concepts,
    names=concept_names(pairs, concepts),
)
