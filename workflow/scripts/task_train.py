"""Train one steering-vector arm of the task experiment (one layer, or one vector per layer)."""

import time

import pandas as pd

from prosv.experiments.task import arm_train_config, items_of, task_arms, task_examples
from prosv.jobs import load_configured_model, log, save_training, start_job
from prosv.models import num_layers, recommended_hyperparameters
from prosv.training import train

start_job(snakemake)
section = snakemake.params.task
arm = next(a for a in task_arms(section) if a.name == snakemake.wildcards.task_sv_arm)
items = items_of(pd.read_parquet(snakemake.input.reading), "train")
model, tokenizer = load_configured_model(snakemake.config)
layers = arm.layer_set(section, num_layers(model))
cfg = arm_train_config(section, arm, recommended_hyperparameters(snakemake.config["model"], arm.positions))
log.info("task arm %s: %d items, layers %s, %s", arm.name, len(items), layers, cfg.to_dict())
t0 = time.time()
result = train(model, tokenizer, layers, [task_examples(items, section["instruction"])], cfg, concept_names=["task"])
save_training(
    result,
    model,
    method=arm.name,
    split="train",
    vectors=snakemake.output.vectors,
    losses=snakemake.output.losses,
    hyperparameters={**cfg.to_dict(), "task_steering": arm.name},
    seconds=time.time() - t0,
)
