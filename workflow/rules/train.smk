"""Vector training: one job per (method, layer, positions, split, shard) trains the shard's concepts
(config key concepts_per_job) in one model load and shared forward passes; merge_vectors joins the
shards into the run's file."""


rule train:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        pairs=lambda w: get_pairs_path(w.split),
    output:
        vectors=f"{OUT}/vectors/{{method}}/L{{layer}}/{{positions}}/{{split}}.shards/{{shard}}.safetensors",
        losses=f"{OUT}/vectors/{{method}}/L{{layer}}/{{positions}}/{{split}}.shards/{{shard}}.losses.parquet",
    params:
        hp=lambda w: get_method_hp(w.method, w.positions),
        concepts=get_shard_concepts,
    log:
        f"{OUT}/logs/train/{{method}}_L{{layer}}_{{positions}}_{{split}}.{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/train/{{method}}_L{{layer}}_{{positions}}_{{split}}.{{shard}}.tsv"
    threads: config["threads"]
    priority: get_train_priority
    resources:
        mem_mb=8000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/train.py"


rule merge_vectors:
    conda:
        "../envs/prosv.yaml"
    input:
        vectors=lambda w: get_shard_files(f"{OUT}/vectors/{w.method}/L{w.layer}/{w.positions}/{w.split}", ".safetensors"),
        losses=lambda w: get_shard_files(f"{OUT}/vectors/{w.method}/L{w.layer}/{w.positions}/{w.split}", ".losses.parquet"),
    output:
        vectors=f"{OUT}/vectors/{{method}}/L{{layer}}/{{positions}}/{{split}}.safetensors",
        losses=f"{OUT}/vectors/{{method}}/L{{layer}}/{{positions}}/{{split}}.losses.parquet",
    log:
        f"{OUT}/logs/train/{{method}}_L{{layer}}_{{positions}}_{{split}}.merge.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/merge_vectors.py"
