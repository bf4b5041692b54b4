"""LoReFT (rank 1) against PrOSV at the chosen layer and positions: losses, direction cosine, hidden-state spread.

LoReFT's learning rate is PrOSV's direction rate eta_v after width scaling (see
prosv.experiments.loreft_config); positions, loss, epochs, batch size, schedule and seed are PrOSV's.
"""

import json

import pandas as pd

from prosv import experiments as X
from prosv.files import write_parquet
from prosv.jobs import concept_examples, load_configured_model, log, start_job, train_config

start_job(snakemake)
with open(snakemake.input.choice) as f:
    choice = json.load(f)
layer, positions = int(choice["layer"]), str(choice["positions"])
method = snakemake.params.method
cfg = train_config(snakemake.config, method, positions=positions)
concepts = [int(c) for c in snakemake.params.concepts]
pairs = pd.read_parquet(snakemake.input.pairs)
datasets = concept_examples(pairs, concepts, snakemake.params.hp.get("max_examples"))
model, tokenizer = load_configured_model(snakemake.config)
log.info(
    "comparing PrOSV (%s) and LoReFT at layer %d, positions %s, concepts %s (%s pairs)",
    method,
    layer,
    positions,
    concepts,
    [len(d) for d in datasets],
)
result = X.compare_loreft(model, tokenizer, layer, datasets, cfg, concept_names=concepts, progress=True)
spread = X.hidden_state_spread(model, tokenizer, X.spread_prompts(pairs, concepts, 16), layer, positions)
log.info("cosine:\n%s\nspread:\n%s", result["cosine"].to_string(), spread.to_string())
write_parquet(snakemake.output.losses, result["losses"])
write_parquet(snakemake.output.cosine, result["cosine"])
write_parquet(snakemake.output.spread, spread)
