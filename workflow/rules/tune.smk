"""Tuning (docs/method.md): the sweep behind a model's recommended settings, on development concepts.

Not part of the default target; run it on its own (its table and winners go to {OUT}/tune/):

    snakemake --cores all tune
"""

TUNE = config.get("tune") or {}
TUNE_POSITIONS = list(TUNE.get("positions", []))


rule tune_train:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        pairs=get_pairs_path("dev"),
        concepts=f"{OUT}/data/concepts.parquet",
        instructions=f"{OUT}/data/eval_instructions.parquet",
    output:
        cells=f"{OUT}/tune/{{positions}}/cells.parquet",
        losses=f"{OUT}/tune/{{positions}}/losses.parquet",
        generations=f"{OUT}/generations/tune/{{positions}}.parquet",
    params:
        tune=TUNE,
        evaluate=config["evaluate"],
        method=lambda w: get_locate_method(w.positions),
        hp=lambda w: get_method_hp(get_locate_method(w.positions), w.positions),
        concepts=SPLITS["dev"][: TUNE.get("concepts", len(SPLITS["dev"]))],
    log:
        f"{OUT}/logs/tune/train_{{positions}}.log",
    benchmark:
        f"{OUT}/benchmarks/tune/train_{{positions}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=480,
        gpu=1,
    script:
        "../scripts/tune_train.py"


rule tune:
    conda:
        "../envs/prosv.yaml"
    input:
        ratings=expand(f"{OUT}/ratings/tune/{{positions}}.parquet", positions=TUNE_POSITIONS),
        cells=expand(f"{OUT}/tune/{{positions}}/cells.parquet", positions=TUNE_POSITIONS),
    output:
        table=f"{OUT}/tune/table.parquet",
        markdown=f"{OUT}/tune/table.md",
        recommended=f"{OUT}/tune/recommended.yaml",
    params:
        loss=lambda w: METHODS[config["locate"]["method"]]["loss"],
        model=config["model"],
        n_boot=10000,
        seed=config["seed"],
    log:
        f"{OUT}/logs/tune/table.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/tune.py"
