"""The concept table (with each concept's split) and the evaluation instructions; no model."""

from prosv.data.prepare import prepare_concepts
from prosv.files import write_parquet
from prosv.jobs import start_job

start_job(snakemake)
concepts, instructions = prepare_concepts(
    snakemake.params.data, list(snakemake.params.concepts), snakemake.config["data"]["dev_concepts"]
)
write_parquet(snakemake.output.concepts, concepts)
write_parquet(snakemake.output.eval_instructions, instructions)
