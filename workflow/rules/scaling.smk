"""Scaling study (docs/method.md): factor init x factor learning rate, alpha fixed, SGD, rate transfer."""


rule scaling:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        pairs=get_pairs_path("dev"),
        concepts=f"{OUT}/data/concepts.parquet",
        instructions=f"{OUT}/data/eval_instructions.parquet",
        choice=get_choice_path(),
    output:
        losses=f"{OUT}/scaling/losses.parquet",
        cells=f"{OUT}/scaling/cells.parquet",
        vectors=f"{OUT}/scaling/vectors.safetensors",
        generations=f"{OUT}/generations/scaling.parquet",
    params:
        scaling=config["scaling"],
        evaluate=config["evaluate"],
        method=config["locate"]["method"],
        hp=lambda w: get_method_hp(config["locate"]["method"]),
        concepts=SPLITS["dev"][: config["scaling"]["concepts"]],
    log:
        f"{OUT}/logs/scaling.log",
    benchmark:
        f"{OUT}/benchmarks/scaling.tsv"
    threads: config["threads"]
    priority: LONG_JOB_PRIORITY
    resources:
        mem_mb=8000,
        runtime=240,
        **MODEL_JOB_GPU,
    script:
        "../scripts/scaling.py"
