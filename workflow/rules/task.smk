"""Task steering (docs/method.md): a yes/no reading task taught by FSSV and PrOSV at one layer and at
every layer, and by LoRA, against the unsteered model (the blog's BoolQ experiment).

A target of its own (`snakemake --cores all task_steering`); with `task_steering.in_default` it is
part of the default target too, and SUMMARY.md gets its table and claim 7.
"""

rule task_data:
    conda:
        "../envs/prosv.yaml"
    output:
        reading=f"{OUT}/task/items.parquet",
    params:
        task=TASK,
        data_dir=config["data"].get("data_dir"),
    log:
        f"{OUT}/logs/task/data.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    script:
        "../scripts/task_data.py"


rule task_train:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        reading=f"{OUT}/task/items.parquet",
    output:
        vectors=f"{OUT}/task/vectors/{{task_sv_arm}}.safetensors",
        losses=f"{OUT}/task/vectors/{{task_sv_arm}}.losses.parquet",
    params:
        task=TASK,
    log:
        f"{OUT}/logs/task/train_{{task_sv_arm}}.log",
    benchmark:
        f"{OUT}/benchmarks/task/train_{{task_sv_arm}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/task_train.py"


rule task_train_lora:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        reading=f"{OUT}/task/items.parquet",
    output:
        adapter=directory(f"{OUT}/task/lora"),
        losses=f"{OUT}/task/lora.losses.parquet",
    params:
        task=TASK,
    log:
        f"{OUT}/logs/task/train_lora.log",
    benchmark:
        f"{OUT}/benchmarks/task/train_lora.tsv"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
        **MODEL_JOB_GPU,
    script:
        "../scripts/task_train_lora.py"


rule task_answer:
    conda:
        "../envs/prosv.yaml"
    input:
        model=get_model_flag(),
        reading=f"{OUT}/task/items.parquet",
        trained=get_task_trained,
    output:
        answers=f"{OUT}/task/answers/{{task_arm}}.parquet",
    params:
        task=TASK,
        batch_size=config["evaluate"]["batch_size"],
    log:
        f"{OUT}/logs/task/answer_{{task_arm}}.log",
    benchmark:
        f"{OUT}/benchmarks/task/answer_{{task_arm}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=60,
        **MODEL_JOB_GPU,
    script:
        "../scripts/task_answer.py"


rule task_steering:
    conda:
        "../envs/prosv.yaml"
    input:
        answers=expand(f"{OUT}/task/answers/{{arm}}.parquet", arm=TASK_ARMS),
        losses=get_task_losses,
    output:
        table=f"{OUT}/tables/task.parquet",
        answers=f"{OUT}/tables/task_items.parquet",
        losses=f"{OUT}/tables/task_losses.parquet",
        markdown=f"{OUT}/task/README.md",
        figure=report(f"{OUT}/figures/task_steering.png", caption="../report/task_steering.rst",
                      category="7. Task steering"),
    params:
        model=config["model"],
        n_boot=10000,
        seed=config["seed"],
    log:
        f"{OUT}/logs/task/table.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    script:
        "../scripts/task_table.py"
