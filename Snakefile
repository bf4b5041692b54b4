"""prosv: train, place and evaluate prompt-only steering vectors (PrOSV) against full-sequence ones.

    snakemake --cores all                              # embedded default (config/config.yaml)
    snakemake --cores all --configfile config/paper/gemma-2-2b-it_L10.yaml
    snakemake --profile profiles/slurm --configfile ...
    snakemake --report report.html                     # after a run
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/locate.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/utility.smk"
include: "workflow/rules/figures.smk"


rule all:
    input:
        f"{OUT}/SUMMARY.md",
    default_target: True
