"""Train every cell of the tuning grid at one layer and placement, then generate for all cells at once."""

import pandas as pd

from prosv import experiments as X
from prosv.files import write_parquet
from prosv.jobs import cell_generations, concept_examples, load_configured_model, log, start_job, train_config

start_job(snakemake)
tune, ev = snakemake.params.tune, snakemake.params.evaluate
layer, positions = int(tune["layer"]), snakemake.wildcards.positions
base = train_config(snakemake.config, snakemake.params.method, positions)
concepts = [int(c) for c in snakemake.params.concepts]
datasets = concept_examples(pd.read_parquet(snakemake.input.pairs), concepts, snakemake.params.hp.get("max_examples"))
model, tokenizer = load_configured_model(snakemake.config)
cells = X.tuning_cells(X.tuning_grid(tune, positions))
log.info("tuning %d cells at layer %d, %s, on concepts %s", len(cells), layer, positions, concepts)
module, names, losses, table = X.run_scaling(model, tokenizer, layer, positions, datasets, base, cells, concepts)
log.info("cells:\n%s", table.to_string())
write_parquet(snakemake.output.losses, losses.assign(layer=layer, positions=positions, split="dev"))
write_parquet(snakemake.output.cells, table)
n = tune.get("instructions_per_concept", ev["instructions_per_concept"])
result = cell_generations(snakemake, model, tokenizer, module, names, concepts, layer, positions, n)
write_parquet(snakemake.output.generations, result.assign(method="tune", split="dev"))
