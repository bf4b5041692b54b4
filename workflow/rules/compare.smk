"""LoReFT (rank 1) against PrOSV at the same positions and learning rates."""


rule compare_loreft:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        pairs=get_pairs_path("eval"),
        choice=get_choice_path(),
    output:
        losses=f"{OUT}/compare/loreft_losses.parquet",
        cosine=f"{OUT}/compare/loreft_cosine.parquet",
        spread=f"{OUT}/compare/loreft_spread.parquet",
    params:
        method=config["locate"]["method"],
        concepts=lambda w: SPLITS["eval"][: config["compare_loreft"]["concepts"]],
        hp=lambda w: get_method_hp(config["locate"]["method"]),
    log:
        f"{OUT}/logs/compare_loreft.log",
    benchmark:
        f"{OUT}/benchmarks/compare_loreft.tsv"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/compare_loreft.py"
