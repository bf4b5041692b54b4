"""Utility (general ability under steering) and robustness (concept-suppression attack).

Both run per shard of their concepts (config key concepts_per_job): merge_utility joins the accuracy
shards, merge_robustness_ratings the rated attack shards, as the main table's ratings are joined.
"""


rule utility:
    conda:
        "../envs/prosv.yaml"
    input:
        unpack(get_main_vectors),
        model=get_model_flag(),
        concepts=f"{OUT}/data/concepts.parquet",
    output:
        f"{OUT}/utility/accuracy.shards/{{shard}}.parquet",
    params:
        utility=config["utility"],
        data_dir=config["data"]["data_dir"],
        methods=list(METHODS),
        concepts=get_stage_shard_concepts("utility"),
        # the unsteered condition steers no concept: the first shard alone asks it
        unsteered=lambda w: int(w.shard) == 0,
    log:
        f"{OUT}/logs/utility.{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/utility.{{shard}}.tsv"
    threads: config["threads"]
    priority: LONG_JOB_PRIORITY
    resources:
        mem_mb=6000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/utility.py"


rule merge_utility:
    conda:
        "../envs/prosv.yaml"
    input:
        get_shard_files(f"{OUT}/utility/accuracy", ".parquet", "utility"),
    output:
        f"{OUT}/utility/accuracy.parquet",
    log:
        f"{OUT}/logs/utility.merge.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/merge_utility.py"


rule robustness:
    conda:
        "../envs/prosv.yaml"
    input:
        unpack(get_main_vectors),
        model=get_model_flag(),
        concepts=f"{OUT}/data/concepts.parquet",
        instructions=f"{OUT}/data/eval_instructions.parquet",
    output:
        f"{OUT}/generations/robustness/attack.shards/{{shard}}.parquet",
    params:
        robustness=config["robustness"],
        evaluate=config["evaluate"],
        methods=list(METHODS),
        concepts=get_stage_shard_concepts("robustness"),
    log:
        f"{OUT}/logs/robustness.{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/robustness.{{shard}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=6000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/robustness.py"


# the rated attack from its shards, not from a whole generation file an older layout may have left
ruleorder: merge_robustness_ratings > judge


use rule merge_ratings as merge_robustness_ratings with:
    input:
        get_shard_files(f"{OUT}/ratings/robustness/attack", ".parquet", "robustness"),
    output:
        f"{OUT}/ratings/robustness/attack.parquet",
    log:
        f"{OUT}/logs/judge/robustness/attack.merge.log",


localrules:
    merge_utility,
    merge_robustness_ratings,
