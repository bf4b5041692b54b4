"""Utility (general ability under steering) and robustness (concept-suppression attack)."""


rule utility:
    conda:
        "../envs/prosv.yaml"
    input:
        unpack(get_main_vectors),
        model=get_model_flag(),
        concepts=f"{OUT}/data/concepts.parquet",
    output:
        f"{OUT}/utility/accuracy.parquet",
    params:
        utility=config["utility"],
        data_dir=config["data"]["data_dir"],
        methods=list(METHODS),
    log:
        f"{OUT}/logs/utility.log",
    benchmark:
        f"{OUT}/benchmarks/utility.tsv"
    threads: config["threads"]
    resources:
        mem_mb=6000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/utility.py"


rule robustness:
    conda:
        "../envs/prosv.yaml"
    input:
        unpack(get_main_vectors),
        model=get_model_flag(),
        concepts=f"{OUT}/data/concepts.parquet",
        instructions=f"{OUT}/data/eval_instructions.parquet",
    output:
        f"{OUT}/generations/robustness/attack.parquet",
    params:
        robustness=config["robustness"],
        evaluate=config["evaluate"],
        methods=list(METHODS),
    log:
        f"{OUT}/logs/robustness.log",
    benchmark:
        f"{OUT}/benchmarks/robustness.tsv"
    threads: config["threads"]
    resources:
        mem_mb=6000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/robustness.py"
