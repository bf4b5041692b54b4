"""Train every location variant of one layer on the development concepts, in one model load.

The variants share the block-L prefix cache (prosv.experiments.location.train_variants); prompt-only
variants use locate.method's hyper-parameters, `all` uses locate.fssv_method's.
"""

import pandas as pd

from prosv import experiments as X
from prosv.files import write_parquet
from prosv.jobs import concept_examples, concept_names, load_configured_model, save_training, start_job, train_config

start_job(snakemake)
layer = int(snakemake.wildcards.layer)
concepts = list(snakemake.params.concepts)
methods = dict(snakemake.params.methods)
pairs = pd.read_parquet(snakemake.input.pairs)
datasets = concept_examples(pairs, concepts, snakemake.params.max_examples)
model, tokenizer = load_configured_model(snakemake.config)
configs = {positions: train_config(snakemake.config, method, positions) for positions, method in methods.items()}
results = X.train_variants(model, tokenizer, layer, datasets, configs, concepts)
logs = []
for (positions, (result, seconds)), path in zip(results.items(), snakemake.output.vectors):
    assert path.endswith(f"/{positions}.safetensors"), (path, positions)
    log_path = path.replace(".safetensors", ".losses.parquet")
    save_training(
        result,
        model,
        method=methods[positions],
        split="dev",
        vectors=path,
        losses=log_path,
        hyperparameters=snakemake.params.hp[positions],
        seconds=seconds,
        concepts=concepts,
        names=concept_names(pairs, concepts),
    )
    logs.append(pd.read_parquet(log_path))
write_parquet(snakemake.output.losses, pd.concat(logs, ignore_index=True))
