"""Responses for the evaluation prompts: steered with the learned factor, over a factor grid, or a baseline."""

import pandas as pd

from prosv import evaluation as E
from prosv.generation import Steering, generate
from prosv.jobs import load_configured_model, log, start_job, write_parquet
from prosv.vectors import load_vectors

start_job(snakemake)
ev = snakemake.params.evaluate
mode = snakemake.params.mode
split = snakemake.wildcards.split
concepts = pd.read_parquet(snakemake.input.concepts)
concepts = concepts[concepts.split == split]
instructions = pd.read_parquet(snakemake.input.instructions)
prompts = E.steering_prompts(concepts, instructions, n=ev["instructions_per_concept"])
if mode == "prompting":
    prompts = E.prompting_prompts(prompts, concepts)
model, tokenizer = load_configured_model(snakemake.config)
seed = int(snakemake.config["seed"])
common = dict(max_new_tokens=ev["max_new_tokens"], temperature=ev["temperature"], seed=seed,
              batch_size=ev["batch_size"], progress=True)

if mode in ("unsteered", "prompting"):
    outs = generate(model, tokenizer, list(prompts.user_turn), desc=mode, **common)
    result = prompts.assign(method=mode, factor=1.0)
    texts = [o.text for o in outs]
else:
    vec = load_vectors(snakemake.input.vectors)
    module = vec.module.to(next(model.parameters()).device)
    rows = [vec.index_of(c) for c in prompts.concept_id]
    factors = ev["factor_grid"] if mode == "grid" else [1.0]
    parts, texts = [], []
    for factor in factors:
        steering = Steering(module, vec.layer, vec.positions, rows=rows, factor=factor)
        outs = generate(model, tokenizer, list(prompts.user_turn), steering, desc=f"factor {factor}", **common)
        parts.append(prompts.assign(factor=factor))
        texts += [o.text for o in outs]
    result = pd.concat(parts, ignore_index=True).assign(method=snakemake.wildcards.method)
    result["protocol"] = "factor_grid" if mode == "grid" else "factor_free"
    result["learned_alpha"] = [float(vec.module.alpha[r]) if hasattr(vec.module, "alpha") else None
                               for r in rows] * len(factors)
    result["layer"] = vec.layer
    result["positions"] = vec.positions
result["response"] = texts
result["split"] = split
log.info("%d responses written", len(result))
write_parquet(snakemake.output[0], result)
