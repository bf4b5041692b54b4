"""Location search: every (layer, positions) variant on the development concepts; the best is used after.

Each variant is its own chain (train, generate, judge), so the variants run side by side: on 2 cores
two one-thread trainings at once, on a cluster one job each. A job loads the model and computes the
block-L prefix of its pairs once more than a shared job would; both are small beside training.
"""


rule train_locate:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        pairs=get_pairs_path("dev"),
    output:
        vectors=f"{OUT}/locate/L{{layer}}/{{positions}}.safetensors",
        losses=f"{OUT}/locate/L{{layer}}/{{positions}}.losses.parquet",
    params:
        hp=lambda w: get_method_hp(get_locate_method(w.positions), w.positions),
        method=lambda w: get_locate_method(w.positions),
        split="dev",
        concepts=SPLITS["dev"],
    log:
        f"{OUT}/logs/locate/train_L{{layer}}_{{positions}}.log",
    benchmark:
        f"{OUT}/benchmarks/locate/train_L{{layer}}_{{positions}}.tsv"
    threads: config["threads"]
    # everything after the location checkpoint waits for the search: run it before the baselines
    # (its judge jobs too, evaluate.smk)
    priority: 1
    resources:
        mem_mb=8000,
        runtime=240,
        **MODEL_JOB_GPU,
    script:
        "../scripts/train.py"


rule generate_locate:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        vectors=f"{OUT}/locate/L{{layer}}/{{positions}}.safetensors",
        concepts=f"{OUT}/data/concepts.parquet",
        instructions=f"{OUT}/data/eval_instructions.parquet",
    output:
        f"{OUT}/generations/locate/L{{layer}}/{{positions}}.parquet",
    params:
        evaluate=config["evaluate"],
        mode="learned",
        split="dev",
    log:
        f"{OUT}/logs/locate/generate_L{{layer}}_{{positions}}.log",
    benchmark:
        f"{OUT}/benchmarks/locate/generate_L{{layer}}_{{positions}}.tsv"
    threads: config["threads"]
    priority: 1
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
