"""Location search: every (layer, positions) variant on the development concepts; the best is used after.

One job per layer trains every variant in one model load, sharing the block-L prefix cache (the
hidden states up to the intervention do not depend on the placement), then one job per layer
generates for every variant and one judges them.
"""


rule train_locate:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        pairs=f"{OUT}/data/pairs.parquet",
    output:
        vectors=get_locate_vectors(),
        losses=f"{OUT}/locate/L{{layer}}/losses.parquet",
    params:
        hp=lambda w: {p: get_method_hp(get_locate_method(p), p) for p in LOCATE_POSITIONS},
        methods={p: get_locate_method(p) for p in LOCATE_POSITIONS},
        concepts=SPLITS["dev"],
        max_examples=config.get("train", {}).get("max_examples"),
    log:
        f"{OUT}/logs/locate/train_L{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/locate/train_L{{layer}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=240,
        **MODEL_JOB_GPU,
    script:
        "../scripts/train_locate.py"


rule generate_locate:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        vectors=get_locate_vectors(),
        concepts=f"{OUT}/data/concepts.parquet",
        instructions=f"{OUT}/data/eval_instructions.parquet",
    output:
        f"{OUT}/generations/locate/L{{layer}}.parquet",
    params:
        evaluate=config["evaluate"],
        mode="learned",
        split="dev",
    log:
        f"{OUT}/logs/locate/generate_L{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/locate/generate_L{{layer}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=6000,
        runtime=240,
        **MODEL_JOB_GPU,
    script:
        "../scripts/generate.py"


checkpoint locate:
    conda:
        "../envs/prosv.yaml"
    input:
        ratings=get_locate_ratings(),
    output:
        choice=f"{OUT}/locate/choice.json",
        table=f"{OUT}/tables/locate.parquet",
        concepts=f"{OUT}/tables/locate_concepts.parquet",
    params:
        n_boot=10000,
        seed=config["seed"],
    log:
        f"{OUT}/logs/locate.log",
    threads: 1
    script:
        "../scripts/locate.py"
