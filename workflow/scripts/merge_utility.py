"""Join the utility accuracy shards into one table."""

from prosv import experiments as X
from prosv.jobs import log, start_job

start_job(snakemake)
X.merge_utility(list(snakemake.input), snakemake.output[0])
log.info("merged %d utility shards into %s", len(snakemake.input), snakemake.output[0])
