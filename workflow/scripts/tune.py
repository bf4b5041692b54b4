"""The tuning table (every cell ranked by its factor-free judge score) and the winners as recommended settings."""

import pandas as pd
import yaml

from prosv import experiments as X
from prosv.files import write_parquet, write_text
from prosv.jobs import log, start_job

start_job(snakemake)
p = snakemake.params
ratings = pd.concat([pd.read_parquet(f) for f in snakemake.input.ratings], ignore_index=True)
cells = pd.concat([pd.read_parquet(f) for f in snakemake.input.cells], ignore_index=True)
table = X.tuning_table(ratings, cells, n_boot=int(p.n_boot), seed=int(p.seed))
log.info("tuning table:\n%s", table.to_string())
write_parquet(snakemake.output.table, table)
write_text(snakemake.output.markdown, X.tuning_markdown(table))
write_text(snakemake.output.recommended, yaml.safe_dump({p.model: X.recommended_settings(table, p.loss)}))
