"""Factor-free evaluation (learned alpha), baselines, the factor-grid protocol, and judging."""


rule generate:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        vectors=f"{OUT}/vectors/{{method}}/L{{layer}}/{{positions}}/{{split}}.safetensors",
        concepts=f"{OUT}/data/concepts.parquet",
        instructions=f"{OUT}/data/eval_instructions.parquet",
    output:
        f"{OUT}/generations/{{method}}/L{{layer}}/{{positions}}/{{split}}.parquet",
    params:
        evaluate=config["evaluate"],
        mode="learned",
    log:
        f"{OUT}/logs/generate/{{method}}_L{{layer}}_{{positions}}_{{split}}.log",
    benchmark:
        f"{OUT}/benchmarks/generate/{{method}}_L{{layer}}_{{positions}}_{{split}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=6000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/generate.py"


use rule generate as generate_grid with:
    output:
        f"{OUT}/generations/{{method}}/L{{layer}}/{{positions}}/{{split}}.grid.parquet",
    params:
        evaluate=config["evaluate"],
        mode="grid",
    log:
        f"{OUT}/logs/generate/{{method}}_L{{layer}}_{{positions}}_{{split}}.grid.log",
    benchmark:
        f"{OUT}/benchmarks/generate/{{method}}_L{{layer}}_{{positions}}_{{split}}.grid.tsv"


rule generate_baseline:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        concepts=f"{OUT}/data/concepts.parquet",
        instructions=f"{OUT}/data/eval_instructions.parquet",
    output:
        f"{OUT}/generations/baseline/{{baseline}}/{{split}}.parquet",
    params:
        evaluate=config["evaluate"],
        mode=lambda w: w.baseline,
    log:
        f"{OUT}/logs/generate/baseline_{{baseline}}_{{split}}.log",
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
    resources:
        mem_mb=3000,
        runtime=60,
    script:
        "../scripts/judge.py"
