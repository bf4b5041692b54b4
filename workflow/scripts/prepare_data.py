"""Concepts, training pairs (concept-laden + neutral responses) and evaluation instructions."""

from prosv.data.prepare import prepare_study_data
from prosv.files import write_parquet
from prosv.jobs import load_configured_model, start_job

start_job(snakemake)
cfg = snakemake.config
study = prepare_study_data(
    snakemake.params.data,
    list(snakemake.params.concepts),
    cfg["data"]["dev_concepts"],
    lambda: load_configured_model(cfg),
    seed=snakemake.params.seed,
    judge_config=snakemake.params.judge,
)
write_parquet(snakemake.output.pairs, study.pairs)
write_parquet(snakemake.output.concepts, study.concepts)
write_parquet(snakemake.output.eval_instructions, study.eval_instructions)
