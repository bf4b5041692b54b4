"""One split's training pairs: concept-laden responses (and neutral ones where the simpo loss needs them)."""

from prosv.data.prepare import prepare_pairs
from prosv.files import write_parquet
from prosv.jobs import load_configured_model, start_job

start_job(snakemake)
cfg = snakemake.config
pairs = prepare_pairs(
    snakemake.params.data,
    list(snakemake.params.concepts),
    lambda: load_configured_model(cfg),
    seed=snakemake.params.seed,
    judge_config=snakemake.params.judge,
    neutral=snakemake.params.neutral,
)
write_parquet(snakemake.output.pairs, pairs)
