"""prosv: train, place and evaluate prompt-only steering vectors (PrOSV) against full-sequence ones.

    snakemake --cores all                              # embedded default (config/config.yaml)
    snakemake --cores all --configfile config/paper/gemma-2-2b-it_L10.yaml
    snakemake --profile profiles/slurm --configfile ...
    snakemake --report report.html                     # after a run
"""

import os

from snakemake.utils import min_version

# passive OpenMP waiting: jobs sharing cores must not spin against each other (see prosv/__init__.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

min_version("9.0")


# A --configfile replaces the default instead of being merged into it: a merged `methods` table
# would silently train the default's methods too.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/locate.smk"
include: "workflow/rules/scaling.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/utility.smk"
include: "workflow/rules/task.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/tune.smk"


rule all:
    input:
        f"{OUT}/SUMMARY.md",
        f"{OUT}/data/pairs.parquet",
        get_task_target(),
    default_target: True
