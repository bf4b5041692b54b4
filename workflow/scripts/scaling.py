"""Train every cell of the scaling study at the chosen location, then generate for all cells at once."""

import json
import time

import pandas as pd

from prosv import experiments as X
from prosv.files import write_parquet
from prosv.jobs import cell_generations, concept_examples, load_configured_model, log, start_job, train_config
from prosv.models import hidden_size, num_layers
from prosv.provenance import of_model
from prosv.vectors import save_vectors

start_job(snakemake)
with open(snakemake.input.choice) as f:
    choice = json.load(f)
layer, positions = int(choice["layer"]), str(choice["positions"])
base = train_config(snakemake.config, snakemake.params.method, positions)
concepts = [int(c) for c in snakemake.params.concepts]
datasets = concept_examples(pd.read_parquet(snakemake.input.pairs), concepts, snakemake.params.hp.get("max_examples"))
model, tokenizer = load_configured_model(snakemake.config)
cells = X.scaling_cells(snakemake.params.scaling, base, hidden_size(model))
log.info("scaling study at layer %d, positions %s: %d cells on concepts %s", layer, positions, len(cells), concepts)
t0 = time.time()
module, names, losses, table = X.run_scaling(model, tokenizer, layer, positions, datasets, base, cells, concepts)
log.info("trained %d cells in %.1f s:\n%s", len(cells), time.time() - t0, table.to_string())
write_parquet(snakemake.output.losses, losses.assign(method="scaling", layer=layer, positions=positions, split="dev"))
write_parquet(snakemake.output.cells, table)
save_vectors(
    snakemake.output.vectors,
    module,
    model=model.prosv_ref.source_id,
    layer=layer,
    positions=positions,
    loss=base.loss,
    hyperparameters={"base": snakemake.params.hp, "scaling": snakemake.params.scaling},
    method="scaling",
    concepts=names,
    provenance=of_model(model),
    hidden_size=hidden_size(model),
    num_layers=num_layers(model),
)

n = snakemake.params.evaluate["instructions_per_concept"]
result = cell_generations(snakemake, model, tokenizer, module, names, concepts, layer, positions, n)
log.info("%d responses for %d cells in %.1f s", len(result), len(cells), time.time() - t0)
write_parquet(snakemake.output.generations, result.assign(split="dev"))
