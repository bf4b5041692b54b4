"""Train every location variant of one layer on the development concepts, in one model load.

The variants share the block-L prefix cache: it is computed once for the layer and reused by every
placement and method (prompt-only variants use locate.method, `all` uses locate.fssv_method).
"""

import time

import pandas as pd

from prosv.jobs import concept_examples, load_configured_model, log, start_job, train_config, write_parquet
from prosv.training import PrefixCache, train
from prosv.vectors import save_vectors

start_job(snakemake)
layer = int(snakemake.wildcards.layer)
concepts = list(snakemake.params.concepts)
methods = dict(snakemake.params.methods)
pairs = pd.read_parquet(snakemake.input.pairs)
# max_examples is a workflow-wide setting: every variant trains on the same examples
datasets = concept_examples(pairs, concepts, next(iter(snakemake.params.hp.values())).get("max_examples"))
model, tokenizer = load_configured_model(snakemake.config)
cache = PrefixCache(layer)
frames = []
for positions, path in zip(methods, snakemake.output.vectors):
    method = methods[positions]
    assert path.endswith(f"/{positions}.safetensors"), (path, positions)
    hp = snakemake.params.hp[positions]
    cfg = train_config(snakemake.config, method, positions)
    t0 = time.time()
    result = train(model, tokenizer, layer, datasets, cfg, concept_names=concepts, cache=cache)
    seconds = time.time() - t0
    log.info("L%d %s (%s): %.1f s, final losses %s", layer, positions, method, seconds,
             result.losses.groupby("concept").loss.last().round(4).to_dict())
    frames.append(result.losses.assign(method=method, layer=layer, positions=positions, split="dev"))
    save_vectors(path, result.module, model=model.prosv_ref.source_id, model_revision=None, layer=layer,
                 positions=positions, loss=cfg.loss, hyperparameters=hp, concepts=concepts,
                 extra={"method_name": method, "train_seconds": round(seconds, 1)})
log.info("prefix cache: %d sequences, %d tokens through blocks 0..%d", len(cache), cache.computed_tokens, layer)
write_parquet(snakemake.output.losses, pd.concat(frames, ignore_index=True))
