"""One arm's answers to every test item of the task experiment (greedy), scored."""

import pandas as pd

from prosv.experiments.task import answer_arm, items_of
from prosv.files import write_parquet
from prosv.jobs import load_configured_model, log, start_job

start_job(snakemake)
items = items_of(pd.read_parquet(snakemake.input.reading), "test")
model, tokenizer = load_configured_model(snakemake.config)
answers = answer_arm(
    model,
    tokenizer,
    snakemake.wildcards.task_arm,
    items,
    list(snakemake.input.trained),
    max_new_tokens=snakemake.params.task["max_new_tokens"],
    batch_size=snakemake.params.batch_size,
    instruction=snakemake.params.task["instruction"],
)
log.info(
    "%s: accuracy %.3f, format failures %.3f",
    snakemake.wildcards.task_arm,
    answers.correct.mean(),
    1 - answers.format_ok.mean(),
)
write_parquet(snakemake.output.answers, answers)
