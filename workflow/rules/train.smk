"""Vector training: one job per (method, layer, positions, split) trains every concept of the split."""


rule train:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        pairs=f"{OUT}/data/pairs.parquet",
    output:
        vectors=f"{OUT}/vectors/{{method}}/L{{layer}}/{{positions}}/{{split}}.safetensors",
        losses=f"{OUT}/vectors/{{method}}/L{{layer}}/{{positions}}/{{split}}.losses.parquet",
    params:
        hp=lambda w: get_method_hp(w.method, w.positions),
        concepts=lambda w: SPLITS[w.split],
    log:
        f"{OUT}/logs/train/{{method}}_L{{layer}}_{{positions}}_{{split}}.log",
    benchmark:
        f"{OUT}/benchmarks/train/{{method}}_L{{layer}}_{{positions}}_{{split}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/train.py"
