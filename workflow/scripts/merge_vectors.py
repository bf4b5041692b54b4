"""Join a training run's shards into its vector file and loss log."""

from prosv.jobs import log, merge_training, start_job

start_job(snakemake)
merge_training(snakemake.input.vectors, snakemake.input.losses, snakemake.output.vectors, snakemake.output.losses)
log.info("merged %d shards into %s", len(snakemake.input.vectors), snakemake.output.vectors)
