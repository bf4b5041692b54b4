"""Responses for the evaluation prompts: steered with the learned factor, over a factor grid, or a baseline."""

import pandas as pd

from prosv import evaluation as E
from prosv.generation import Steering, generate
from prosv.interventions import SteeringVectors
from prosv.jobs import load_configured_model, log, start_job, write_parquet
from prosv.vectors import load_vectors

start_job(snakemake)
ev = snakemake.params.evaluate
mode = snakemake.params.mode
split = snakemake.params.get("split") or snakemake.wildcards.split
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
    # one vector file (a method's run) or several (every location variant of a layer)
    files = snakemake.input.vectors
    vecs = [load_vectors(path) for path in ([files] if isinstance(files, str) else list(files))]
    factors = ev["factor_grid"] if mode == "grid" else [1.0]
    device = next(model.parameters()).device
    n = len(prompts)
    parts, texts, jobs = [], [], []
    for vec in vecs:
        method = snakemake.wildcards.get("method") or vec.metadata.get("method_name", vec.metadata["method"])
        rows = [vec.index_of(c) for c in prompts.concept_id]
        for factor in factors:
            jobs.append((vec, method, rows, factor))
            parts.append(prompts.assign(
                method=method, factor=factor, layer=vec.layer, positions=vec.positions,
                protocol="factor_grid" if mode == "grid" else "factor_free",
                learned_alpha=[float(vec.module.alpha[r]) if hasattr(vec.module, "alpha") else None for r in rows]))
    if len(vecs) > 1 and mode != "grid" and all(isinstance(v.module, SteeringVectors) for v in vecs) \
            and len({v.layer for v in vecs}) == 1:
        # every placement in one batch stream: stack the vectors, one row per (file, concept), each
        # prompt with its file's placement and the same random draws it would get alone (one job per
        # file here, factor 1, so the jobs' concept rows line up with the files)
        offsets = [sum(v.module.num_concepts for v in vecs[:i]) for i in range(len(vecs))]
        module = SteeringVectors.stack([v.module for v in vecs]).to(device)
        steering = Steering(module, vecs[0].layer, [v.positions for v in vecs for _ in range(n)],
                            rows=[off + r for off, (_, _, rows, _) in zip(offsets, jobs) for r in rows])
        outs = generate(model, tokenizer, list(prompts.user_turn) * len(vecs), steering,
                        desc=f"{len(vecs)} placements at L{vecs[0].layer}", sample_ids=list(range(n)) * len(vecs),
                        **common)
        texts = [o.text for o in outs]
    else:
        for vec, method, rows, factor in jobs:
            steering = Steering(vec.module.to(device), vec.layer, vec.positions, rows=rows, factor=factor)
            outs = generate(model, tokenizer, list(prompts.user_turn), steering,
                            desc=f"{method} L{vec.layer} {vec.positions} x{factor}", **common)
            texts += [o.text for o in outs]
    result = pd.concat(parts, ignore_index=True)
result["response"] = texts
result["split"] = split
log.info("%d responses written", len(result))
write_parquet(snakemake.output[0], result)
