"""Model and data preparation."""


rule prepare_model:
    conda:
        "../envs/prosv.yaml"
    output:
        flag=get_model_flag(),
    params:
        model=config["model"],
    log:
        f"{OUT}/logs/prepare_model.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/prepare_model.py"


rule prepare_concepts:
    conda:
        "../envs/prosv.yaml"
    output:
        concepts=f"{OUT}/data/concepts.parquet",
        eval_instructions=f"{OUT}/data/eval_instructions.parquet",
    params:
        data=config["data"],
        concepts=SPLITS["dev"] + SPLITS["eval"],
    log:
        f"{OUT}/logs/prepare_concepts.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/prepare_concepts.py"


# one job per split: on 2 cores the development split's pairs are ready for the location search
# while the evaluation split's are still being written, and two one-thread jobs write faster than
# one two-thread job (decoding a small model does not scale with threads)
rule prepare_data:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
    output:
        pairs=f"{OUT}/data/pairs/{{split}}.parquet",
    wildcard_constraints:
        split="dev|eval",
    params:
        data=config["data"],
        concepts=lambda w: SPLITS[w.split],
        seed=config["seed"],
        judge=get_writer_judge(),
        neutral=get_writes_neutral(),
    log:
        f"{OUT}/logs/prepare_data.{{split}}.log",
    benchmark:
        f"{OUT}/benchmarks/prepare_data.{{split}}.tsv"
    threads: config["threads"]
    # both before everything they gate (the evaluation split: the trainings at fixed positions, simpo's
    # at LONG_JOB_PRIORITY), the development split first: the location search waits for it
    priority: lambda w: LONG_JOB_PRIORITY + 1 if w.split == "dev" else LONG_JOB_PRIORITY
    resources:
        mem_mb=6000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/prepare_data.py"


rule merge_pairs:
    conda:
        "../envs/prosv.yaml"
    input:
        [get_pairs_path(split) for split in SPLITS],
    output:
        f"{OUT}/data/pairs.parquet",
    log:
        f"{OUT}/logs/merge_pairs.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/merge_pairs.py"


# they read and write a few tables: on a cluster they run beside snakemake, not in the queue
localrules:
    prepare_concepts,
    merge_pairs,
