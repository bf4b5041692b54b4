"""Pick the prompt-only location with the best mean overall score on the development concepts."""

import pandas as pd

from prosv import experiments as X
from prosv.files import write_json, write_parquet
from prosv.jobs import log, start_job

start_job(snakemake)
ratings = pd.concat([pd.read_parquet(p) for p in snakemake.input.ratings], ignore_index=True)
p = snakemake.params
choice, table = X.choose_location(ratings, n_boot=int(p.n_boot), seed=int(p.seed))
log.info("location table:\n%s\nchoice: %s", table.to_string(), choice)
write_parquet(snakemake.output.table, table)
write_parquet(snakemake.output.concepts, X.location_concepts(ratings))
write_json(snakemake.output.choice, choice)
