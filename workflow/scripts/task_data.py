"""The task experiment's training and test items (embedded reading task or BoolQ), one table."""

from prosv.experiments.task import load_task_items
from prosv.files import write_parquet
from prosv.jobs import log, start_job

start_job(snakemake)
items = load_task_items(snakemake.params.task, snakemake.params.data_dir)
log.info("task items: %s", items.groupby(["split", "answer"]).size().to_dict())
write_parquet(snakemake.output.reading, items)
