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


rule prepare_data:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
    output:
        pairs=f"{OUT}/data/pairs.parquet",
        concepts=f"{OUT}/data/concepts.parquet",
        eval_instructions=f"{OUT}/data/eval_instructions.parquet",
    params:
        data=config["data"],
        concepts=SPLITS["dev"] + SPLITS["eval"],
        seed=config["seed"],
        judge=get_writer_judge(),
    log:
        f"{OUT}/logs/prepare_data.log",
    benchmark:
        f"{OUT}/benchmarks/prepare_data.tsv"
    # the embedded source's model writes the data while no other job can run: take both cores of
    # the embedded default; AxBench data are only read
    threads: max(config["threads"], 2) if config["data"]["source"] == "embedded" else config["threads"]
    resources:
        mem_mb=6000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/prepare_data.py"
