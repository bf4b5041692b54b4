"""The task experiment's tables, its markdown page (with the paired comparisons) and its figure."""

import pandas as pd

from prosv.jobs import start_job
from prosv.report.task import render_task

start_job(snakemake)
answers = pd.concat([pd.read_parquet(p) for p in snakemake.input.answers], ignore_index=True)
losses = pd.concat([pd.read_parquet(p) for p in snakemake.input.losses], ignore_index=True)
out, params = snakemake.output, snakemake.params
render_task(
    answers,
    losses,
    table=out.table,
    items=out.answers,
    losses_out=out.losses,
    markdown=out.markdown,
    figure=out.figure,
    model=params.model,
    n_boot=int(params.n_boot),
    seed=int(params.seed),
)
