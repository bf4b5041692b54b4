"""Train the LoRA arm of the task experiment on the same items, shuffles and budget."""

import time

import pandas as pd

from prosv.experiments.task import LORA, items_of, lora_settings, shared_train_config, task_examples
from prosv.files import write_parquet
from prosv.jobs import load_configured_model, log, start_job
from prosv.provenance import of_model
from prosv.training.lora import train_lora

start_job(snakemake)
section = snakemake.params.task
items = items_of(pd.read_parquet(snakemake.input.reading), "train")
model, tokenizer = load_configured_model(snakemake.config)
settings, cfg = lora_settings(section), shared_train_config(section)
t0 = time.time()
result = train_lora(model, tokenizer, task_examples(items, section["instruction"]), cfg, settings)
log.info("trained LoRA in %.1f s; final loss %.4f", time.time() - t0, result.losses.loss.iloc[-1])
result.save(snakemake.output.adapter, {"model": snakemake.config["model"], "provenance": of_model(model)})
write_parquet(snakemake.output.losses, result.losses.assign(method=LORA))
