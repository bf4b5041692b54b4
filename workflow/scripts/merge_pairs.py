"""Join the splits' training pairs into the run's pairs.parquet (what `prosv train --data` reads)."""

from prosv.data.prepare import join_pairs
from prosv.jobs import log, start_job

start_job(snakemake)
join_pairs(list(snakemake.input), snakemake.output[0])
log.info("joined %d splits' training pairs into %s", len(snakemake.input), snakemake.output[0])
