"""Join a run's rated shards into one ratings table."""

from prosv.jobs import log, start_job
from prosv.judges import merge_ratings

start_job(snakemake)
merge_ratings(list(snakemake.input), snakemake.output[0])
log.info("merged %d rated shards into %s", len(snakemake.input), snakemake.output[0])
