"""Config validation, input functions (get_*) and wildcard constraints shared by every rule file."""

import json
import os

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")


def _check_config(cfg):
    """Checks the schema cannot express; each error names the key at fault."""
    from prosv.jobs import LOCATED, train_config
    from prosv.models import model_shape
    from prosv.positions import parse_positions

    try:
        shape = model_shape(cfg["model"])
    except KeyError as err:
        raise ValueError(f"config key 'model': {err.args[0]}") from None
    for layer in cfg["layers"]:
        if shape is not None and layer >= shape.num_layers:
            raise ValueError(f"config key 'layers': layer {layer} is out of range for {cfg['model']} "
                             f"({shape.num_layers} decoder layers, 0..{shape.num_layers - 1})")
    for name, entry in cfg["methods"].items():
        positions = entry["positions"]
        if positions != LOCATED:
            parse_positions(positions)
        train_config(cfg, name, positions="p2+s2" if positions == LOCATED else None)
    grid = [name for name, entry in cfg["methods"].items() if entry.get("posthoc_factor")]
    if grid and cfg["evaluate"]["instructions_per_concept"] < 2:
        # the grid picks its factor on half of a concept's instructions and reports on the rest
        raise ValueError(f"config key 'evaluate.instructions_per_concept': the factor grid of {grid} needs at "
                         f"least 2 instructions per concept, got {cfg['evaluate']['instructions_per_concept']}")
    for key in ("method", "fssv_method"):
        name = cfg["locate"].get(key)
        if name is not None and name not in cfg["methods"]:
            raise ValueError(f"config key 'locate.{key}': {name!r} is not in 'methods' ({sorted(cfg['methods'])})")
    for spec in cfg["locate"]["positions"]:
        parse_positions(spec)
    overlap = set(cfg["data"]["dev_concepts"]) & set(cfg["data"]["eval_concepts"])
    if overlap:
        raise ValueError(f"config keys 'data.dev_concepts' and 'data.eval_concepts' overlap: {sorted(overlap)}; "
                         f"development concepts must be kept apart from evaluation concepts")
    if cfg["judge"]["kind"] == "openai":
        for key in ("base_url", "model"):
            if key not in cfg["judge"]:
                raise ValueError(f"config key 'judge.{key}' is required for the openai judge")


_check_config(config)

if config["judge"]["kind"] == "openai":

    # the API judge's key comes from the environment, never from the config; fail early if unset
    envvars:
        config["judge"].get("api_key_env", "PROSV_JUDGE_API_KEY"),


def _model_job_gpu():
    """A model job's GPU request: one GPU where it will run on CUDA, none on a CPU-only machine (the
    SLURM profile requests its GPUs itself, per rule)."""
    import torch

    device = str(config.get("device", "auto"))
    return {"gpu": 1} if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()) else {}


MODEL_JOB_GPU = _model_job_gpu()
OUT = config["results"]
METHODS = config["methods"]
SPLITS = {"dev": config["data"]["dev_concepts"], "eval": config["data"]["eval_concepts"]}
LOCATE_POSITIONS = list(dict.fromkeys(config["locate"]["positions"]))


def _shards():
    from prosv.jobs import concept_shards

    per_job = config.get("concepts_per_job")
    shards = {split: concept_shards(ids, per_job) for split, ids in SPLITS.items()}
    # utility and robustness take the first concepts of the main vector files, which hold the
    # evaluation split in its order
    for stage in ("utility", "robustness"):
        shards[stage] = concept_shards(SPLITS["eval"][: config[stage]["concepts"]], per_job)
    return shards


# each split's concepts, and the utility and robustness stages', cut into jobs (config key concepts_per_job)
SHARDS = _shards()


wildcard_constraints:
    method="[a-z][a-z0-9_]*",
    layer=r"\d+",
    positions=r"(all|prompt|[ps]\d+(\+[ps]\d+)?)",
    split="dev|eval",
    baseline="unsteered|prompting",
    shard=r"\d+",


def get_model_flag():
    """Flag file written once the configured model is usable here (converted or found in the cache)."""
    return f"{OUT}/model/{config['model'].replace(os.sep, '--')}.ready"


def get_writer_judge():
    """The judge that filters written training responses, or None when the writer does not use one
    (so that changing the evaluation judge does not rerun the data step)."""
    writer = config["data"].get("writer") or {}
    return config["judge"] if writer.get("min_concept_rating") is not None else None


def get_writes_neutral():
    """Whether the data step writes the model's concept-neutral answers: only the simpo loss reads them.
    Adding the first simpo method to an embedded run therefore rewrites its pairs (and reruns what
    reads them); the axbench source reads its neutral answers from files, so for it this stays True
    and a change of methods reruns nothing there."""
    if config["data"]["source"] != "embedded":
        return True
    return any(entry["loss"] == "simpo" for entry in METHODS.values())


def get_pairs_path(split):
    """A split's training pairs (one data job per split)."""
    return f"{OUT}/data/pairs/{split}.parquet"


def get_method_hp(method, positions=None):
    """Hyper-parameters that define a training job: rerun when any of them changes. A `located`
    method without explicit positions keeps the keyword (the job reads the choice file itself)."""
    from prosv.jobs import LOCATED, train_config

    located = positions is None and METHODS[method]["positions"] == LOCATED
    cfg = train_config(config, method, "p2+s2" if located else positions).to_dict()
    if located:
        cfg["positions"] = LOCATED
    cfg["model"] = config["model"]
    cfg["max_examples"] = config.get("train", {}).get("max_examples")
    return cfg


def _shard(key, shard):
    shards = SHARDS[key]
    if int(shard) >= len(shards):
        raise ValueError(f"{key} has {len(shards)} shards, not {int(shard) + 1}")
    return shards[int(shard)]


def get_shard_concepts(wildcards):
    """The concepts of one shard of a split."""
    return _shard(wildcards.split, wildcards.shard)


def get_stage_shard_concepts(stage):
    """Input function: the concepts of one shard of the `utility` or `robustness` stage."""
    return lambda wildcards: _shard(stage, wildcards.shard)


def get_shard_files(stem, suffix, split=None):
    """Every shard's file of one per-concept output: `<stem>.shards/<i><suffix>` (the split, or
    stage, is the stem's last part unless given)."""
    split = split or stem.rsplit("/", 1)[-1]
    return [f"{stem}.shards/{i}{suffix}" for i in range(len(SHARDS[split]))]


def get_vectors_path(method, layer, positions, split):
    return f"{OUT}/vectors/{method}/L{layer}/{positions}/{split}.safetensors"


def get_choice_path():
    return f"{OUT}/locate/choice.json"


def get_choice():
    """The location search's choice (layer, prompt-only positions); only valid after the checkpoint ran."""
    with checkpoints.locate.get().output.choice.open() as f:
        return json.load(f)


# Priorities on a machine with few cores (a cluster runs everything at once): the jobs that run
# longest and gate the end (simpo trainings, twice lang's cost; the scaling study; utility) start
# first, before the location search and the located trainings (priority 1: they gate most jobs)
# and the rest (0). Measured on the embedded study: the simpo FSSV training started last and ran
# alone for half an hour. In the fp32 default the located lang training, at 0, started 11 minutes
# after the location choice, behind LoReFT and the factor grid, while utility and robustness
# waited for it.
LONG_JOB_PRIORITY = 2


def get_train_priority(wildcards):
    entry = METHODS[wildcards.method]
    if entry.get("loss") == "simpo":
        return LONG_JOB_PRIORITY
    # a located training can only start after the choice, so this changes nothing before it
    return 1 if entry["positions"] == "located" else 0


def get_fixed_location(method):
    """(layer, positions) of a main-table method that the location search cannot change: its positions
    are its own (not `located`) and one layer is searched; None when the choice decides it."""
    from prosv.jobs import LOCATED

    positions = METHODS[method]["positions"]
    if positions == LOCATED or len(config["layers"]) != 1:
        return None
    return config["layers"][0], positions


def get_main_location(method):
    """Layer and positions of a main-table method: the chosen layer; the chosen positions for a method
    whose positions are `located`, its own positions otherwise."""
    fixed = get_fixed_location(method)
    if fixed is not None:
        return fixed
    from prosv.jobs import LOCATED

    choice = get_choice()
    positions = METHODS[method]["positions"]
    return choice["layer"], choice["positions"] if positions == LOCATED else positions


def _method_ratings(method):
    layer, positions = get_main_location(method)
    stem = f"{OUT}/ratings/{method}/L{layer}/{positions}/eval"
    return [f"{stem}.parquet", *([f"{stem}.grid.parquet"] if METHODS[method].get("posthoc_factor") else [])]


def get_fixed_ratings(wildcards=None):
    """The rating files that need no location choice: the baselines', and those of methods whose
    location is fixed (FSSV at the one searched layer). Apart from get_placed_ratings, so that the DAG
    holds them before the location checkpoint has run: FSSV's training, the longest with simpo, starts
    beside the search instead of after it."""
    fixed = [f for method in METHODS if get_fixed_location(method) is not None for f in _method_ratings(method)]
    return [f"{OUT}/ratings/baseline/{b}/eval.parquet" for b in config["evaluate"]["baselines"]] + fixed


def get_placed_ratings(wildcards=None):
    """The rating files of the methods the location choice places (needs the checkpoint)."""
    return [f for method in METHODS if get_fixed_location(method) is None for f in _method_ratings(method)]


def get_locate_method(positions):
    """The method whose hyper-parameters train a location variant: FSSV's for `all`, PrOSV's otherwise."""
    if positions == "all":
        return config["locate"].get("fssv_method", config["locate"]["method"])
    return config["locate"]["method"]


def get_locate_ratings(wildcards=None):
    """One rating file per location variant (layer, positions)."""
    return [f"{OUT}/ratings/locate/L{layer}/{p}.parquet" for layer in config["layers"] for p in LOCATE_POSITIONS]


def get_main_vectors(wildcards=None):
    """Vector files of the main methods at their location (after the location checkpoint)."""
    return {method: get_vectors_path(method, *get_main_location(method), "eval") for method in METHODS}


def get_main_losses(wildcards=None):
    """Training logs of the main runs (eval split, at their location; needs the locate checkpoint)."""
    return [path.replace(".safetensors", ".losses.parquet") for path in get_main_vectors().values()]


def get_locate_losses(wildcards=None):
    """Training logs of the location search (dev split, every searched layer and positions)."""
    return [f"{OUT}/locate/L{layer}/{p}.losses.parquet" for layer in config["layers"] for p in LOCATE_POSITIONS]


# -- task steering (task.smk): the arms of the `task_steering` section, and what each arm needs

from prosv.experiments.task import LORA, UNSTEERED, task_arms, task_section

TASK = task_section(config)
_TASK_ARMS = task_arms(TASK) if TASK else []
TASK_ARMS = [arm.name for arm in _TASK_ARMS]
TASK_SV_ARMS = [arm.name for arm in _TASK_ARMS if arm.kind == "sv"]


wildcard_constraints:
    task_arm="|".join(TASK_ARMS) or "none",
    task_sv_arm="|".join(TASK_SV_ARMS) or "none",


def get_task_trained(wildcards):
    """What an arm answers with: its vector file, the LoRA adapter folder, or nothing (unsteered)."""
    if wildcards.task_arm == UNSTEERED:
        return []
    if wildcards.task_arm == LORA:
        return [f"{OUT}/task/lora"]
    return [f"{OUT}/task/vectors/{wildcards.task_arm}.safetensors"]


def get_task_target():
    """The task experiment's page when it is part of the default target (task_steering.in_default)."""
    return [f"{OUT}/task/README.md"] if TASK.get("in_default") else []


def get_task_tables():
    """The task tables SUMMARY.md reads (claim 7 and its section), when part of the default target."""
    return {name: f"{OUT}/tables/{name}.parquet" for name in ("task", "task_items")} if TASK.get("in_default") else {}


def get_task_losses(wildcards=None):
    files = [f"{OUT}/task/vectors/{arm}.losses.parquet" for arm in TASK_SV_ARMS]
    return files + ([f"{OUT}/task/lora.losses.parquet"] if LORA in TASK_ARMS else [])
