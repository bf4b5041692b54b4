"""Train every cell of the scaling study at the chosen location, then generate for all cells at once."""

import json
import time

import pandas as pd

from prosv import evaluation as E
from prosv import experiments as X
from prosv.generation import Steering, generate
from prosv.models import hidden_size
from prosv.jobs import concept_examples, load_configured_model, log, start_job, train_config, write_parquet
from prosv.vectors import save_vectors

start_job(snakemake)
with open(snakemake.input.choice) as f:
    choice = json.load(f)
layer, positions = int(choice["layer"]), str(choice["positions"])
base = train_config(snakemake.config, snakemake.params.method, positions)
concepts = [int(c) for c in snakemake.params.concepts]
pairs = pd.read_parquet(snakemake.input.pairs)
datasets = concept_examples(pairs, concepts, snakemake.params.hp.get("max_examples"))
model, tokenizer = load_configured_model(snakemake.config)
cells = X.scaling_cells(snakemake.params.scaling, base, hidden_size(model))
log.info("scaling study at layer %d, positions %s: %d cells on concepts %s", layer, positions, len(cells), concepts)
t0 = time.time()
module, names, losses, table = X.run_scaling(model, tokenizer, layer, positions, datasets, base, cells, concepts)
log.info("trained %d cells in %.1f s:\n%s", len(cells), time.time() - t0, table.to_string())
write_parquet(snakemake.output.losses, losses.assign(method="scaling", layer=layer, positions=positions, split="dev"))
write_parquet(snakemake.output.cells, table)
save_vectors(snakemake.output.vectors, module, model=model.prosv_ref.source_id, model_revision=None, layer=layer,
             positions=positions, loss=base.loss, hyperparameters={"base": snakemake.params.hp,
                                                                   "scaling": snakemake.params.scaling},
             concepts=names, extra={"method_name": "scaling"})

ev = snakemake.params.evaluate
all_concepts = pd.read_parquet(snakemake.input.concepts)
instructions = pd.read_parquet(snakemake.input.instructions)
prompts = E.steering_prompts(all_concepts, instructions, n=ev["instructions_per_concept"], concept_ids=concepts)
prompts, rows = X.scaling_prompts(prompts, names)
module = module.to(next(model.parameters()).device)
outs = generate(model, tokenizer, list(prompts.user_turn), Steering(module, layer, positions, rows=rows),
                max_new_tokens=ev["max_new_tokens"], temperature=ev["temperature"], seed=int(snakemake.config["seed"]),
                batch_size=ev["batch_size"], progress=True, desc="scaling generations",
                sample_ids=[int(i) for i in prompts.instruction_idx + 1000 * prompts.concept_id])  # same draws per cell
result = prompts.assign(method="scaling", layer=layer, positions=positions, factor=1.0, split="dev",
                        learned_alpha=[float(module.alpha[r]) for r in rows], response=[o.text for o in outs])
log.info("%d responses for %d cells in %.1f s", len(result), len(cells), time.time() - t0)
write_parquet(snakemake.output.generations, result)
