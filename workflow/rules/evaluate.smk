"""Factor-free evaluation (learned alpha), baselines, the factor-grid protocol, and judging.

Generation and judging run per shard of a split (config key concepts_per_job), each shard from its
own training shard's vectors; merge_ratings joins a run's rated shards into one table.
"""


rule generate:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        vectors=f"{OUT}/vectors/{{method}}/L{{layer}}/{{positions}}/{{split}}.shards/{{shard}}.safetensors",
        concepts=f"{OUT}/data/concepts.parquet",
        instructions=f"{OUT}/data/eval_instructions.parquet",
    output:
        f"{OUT}/generations/{{method}}/L{{layer}}/{{positions}}/{{split}}.shards/{{shard}}.parquet",
    params:
        evaluate=config["evaluate"],
        mode="learned",
        concepts=get_shard_concepts,
    log:
        f"{OUT}/logs/generate/{{method}}_L{{layer}}_{{positions}}_{{split}}.{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/generate/{{method}}_L{{layer}}_{{positions}}_{{split}}.{{shard}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=6000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/generate.py"


use rule generate as generate_grid with:
    output:
        f"{OUT}/generations/{{method}}/L{{layer}}/{{positions}}/{{split}}.shards/{{shard}}.grid.parquet",
    params:
        evaluate=config["evaluate"],
        mode="grid",
        concepts=get_shard_concepts,
    log:
        f"{OUT}/logs/generate/{{method}}_L{{layer}}_{{positions}}_{{split}}.{{shard}}.grid.log",
    benchmark:
        f"{OUT}/benchmarks/generate/{{method}}_L{{layer}}_{{positions}}_{{split}}.{{shard}}.grid.tsv"


rule generate_baseline:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        concepts=f"{OUT}/data/concepts.parquet",
        instructions=f"{OUT}/data/eval_instructions.parquet",
    output:
        f"{OUT}/generations/baseline/{{baseline}}/{{split}}.shards/{{shard}}.parquet",
    params:
        evaluate=config["evaluate"],
        mode=lambda w: w.baseline,
        concepts=get_shard_concepts,
    log:
        f"{OUT}/logs/generate/baseline_{{baseline}}_{{split}}.{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/generate/baseline_{{baseline}}_{{split}}.{{shard}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=6000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/generate.py"


rule judge:
    conda:
        "../envs/prosv.yaml"
    input:
        f"{OUT}/generations/{{generation}}.parquet",
    output:
        f"{OUT}/ratings/{{generation}}.parquet",
    params:
        judge=config["judge"],
    log:
        f"{OUT}/logs/judge/{{generation}}.log",
    benchmark:
        f"{OUT}/benchmarks/judge/{{generation}}.tsv"
    # the offline judge runs torch models too: sharing cores with a model job oversubscribes
    # OpenMP threads, which slows both down many times, so every torch job takes all cores
    threads: config["threads"]
    # the location search's ratings gate every job after the checkpoint: before the baselines'
    priority: lambda w: 1 if w.generation.startswith("locate/") else 0
    resources:
        mem_mb=3000,
        runtime=60,
    script:
        "../scripts/judge.py"


# a run's rating table from its shards; preferred to judging a whole-split generation file that an
# older layout may have left behind
ruleorder: merge_ratings > judge
ruleorder: merge_grid_ratings > judge


rule merge_ratings:
    conda:
        "../envs/prosv.yaml"
    input:
        lambda w: get_shard_files(f"{OUT}/ratings/{w.rated}/{w.split}", ".parquet"),
    output:
        f"{OUT}/ratings/{{rated}}/{{split}}.parquet",
    wildcard_constraints:
        rated=r"baseline/[a-z]+|[a-z][a-z0-9_]*/L\d+/[^/]+",
    log:
        f"{OUT}/logs/judge/{{rated}}/{{split}}.merge.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/merge_ratings.py"


use rule merge_ratings as merge_grid_ratings with:
    input:
        lambda w: get_shard_files(f"{OUT}/ratings/{w.rated}/{w.split}", ".grid.parquet"),
    output:
        f"{OUT}/ratings/{{rated}}/{{split}}.grid.parquet",
    log:
        f"{OUT}/logs/judge/{{rated}}/{{split}}.grid.merge.log",


# joining shards reads and writes a few files: on a cluster they run beside snakemake, not in the queue
localrules:
    merge_vectors,
    merge_ratings,
    merge_grid_ratings,
