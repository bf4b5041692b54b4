"""Config validation, path helpers and wildcard constraints shared by every rule file."""

import json
import os
import glob as _figures_glob

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")


def _check_config(cfg):
    """Checks the schema cannot express; each error names the key at fault."""
    from prosv.models import resolve_model
    from prosv.positions import parse_positions

    try:
        resolve_model(cfg["model"])
    except KeyError as err:
        raise ValueError(f"config key 'model': {err.args[0]}") from None
    known_layers = {"smollm2-135m": 30, "gemma-2-2b-it": 26, "gemma-2-9b-it": 42, "qwen2.5-32b-instruct": 64}
    n_layers = known_layers.get(cfg["model"])
    for layer in cfg["layers"]:
        if n_layers is not None and layer >= n_layers:
            raise ValueError(f"config key 'layers': layer {layer} is out of range for {cfg['model']} "
                             f"({n_layers} decoder layers, 0..{n_layers - 1})")
    for name, entry in cfg["methods"].items():
        parse_positions(entry["positions"])
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


OUT = config["results"]
METHODS = config["methods"]
SPLITS = {"dev": config["data"]["dev_concepts"], "eval": config["data"]["eval_concepts"]}
LOCATE_POSITIONS = list(dict.fromkeys(config["locate"]["positions"]))


wildcard_constraints:
    method="[a-z][a-z0-9_]*",
    layer=r"\d+",
    positions=r"(all|prompt|[ps]\d+(\+[ps]\d+)?)",
    split="dev|eval",
    baseline="unsteered|prompting",


def model_ready():
    """Flag file written once the configured model is usable here (converted or found in the cache)."""
    return f"resources/models/{config['model'].replace(os.sep, '--')}.ready"


def method_hp(method, positions=None):
    """Hyper-parameters that define a training job: rerun when any of them changes."""
    from prosv.jobs import train_config

    cfg = train_config(config, method, positions).to_dict()
    cfg["model"] = config["model"]
    cfg["max_examples"] = config.get("train", {}).get("max_examples")
    return cfg


def vectors_path(method, layer, positions, split):
    return f"{OUT}/vectors/{method}/L{layer}/{positions}/{split}.safetensors"


def locate_choice():
    return f"{OUT}/locate/choice.json"


def chosen():
    """The location search's choice (layer, prompt-only positions); only valid after the checkpoint ran."""
    with checkpoints.locate.get().output.choice.open() as f:
        return json.load(f)


def main_location(method):
    """Layer and positions of a main-table method: the chosen layer; chosen positions for prompt-only methods."""
    choice = chosen()
    positions = METHODS[method]["positions"]
    if positions != "all" and config["locate"].get("apply_positions", True):
        positions = choice["positions"]
    return choice["layer"], positions


def main_ratings(wildcards=None):
    """Every rating file of the main table (needs the location choice)."""
    files = [f"{OUT}/ratings/baseline/{b}/eval.parquet" for b in config["evaluate"]["baselines"]]
    for method in METHODS:
        layer, positions = main_location(method)
        files.append(f"{OUT}/ratings/{method}/L{layer}/{positions}/eval.parquet")
        if METHODS[method].get("posthoc_factor"):
            files.append(f"{OUT}/ratings/{method}/L{layer}/{positions}/eval.grid.parquet")
    return files


def locate_method(positions):
    """The method whose hyper-parameters train a location variant: FSSV's for `all`, PrOSV's otherwise."""
    if positions == "all":
        return config["locate"].get("fssv_method", config["locate"]["method"])
    return config["locate"]["method"]


def locate_vector_outputs():
    """One vector file per location variant of a layer ({layer} stays a wildcard)."""
    return expand(f"{OUT}/locate/L{{layer}}/{{positions}}.safetensors", positions=LOCATE_POSITIONS, allow_missing=True)


def locate_ratings(wildcards=None):
    return [f"{OUT}/ratings/locate/L{layer}.parquet" for layer in config["layers"]]


def main_vectors(wildcards=None):
    """Vector files of the main methods at the chosen location (after the location checkpoint)."""
    out = {}
    for method in METHODS:
        layer, positions = main_location(method)
        out[method] = vectors_path(method, layer, positions, "eval")
    return out


def figures_main_losses(wildcards=None):
    """Training logs of the main runs (eval split, at the chosen location; needs the locate checkpoint)."""
    files = []
    for method in METHODS:
        layer, positions = main_location(method)
        files.append(vectors_path(method, layer, positions, "eval").replace(".safetensors", ".losses.parquet"))
    return files


def figures_locate_losses(wildcards=None):
    """Training logs of the location search (dev split, every searched layer and positions)."""
    return [f"{OUT}/locate/L{layer}/losses.parquet" for layer in config["layers"]]


def figures_extra_losses(wildcards=None):
    """Training logs of alpha-fixed ablation runs that already exist (method name containing 'fixed');
    not built by this rule, only picked up (claim 1 of SUMMARY.md)."""
    known = set(figures_main_losses()) | set(figures_locate_losses())
    found = sorted(_figures_glob.glob(f"{OUT}/vectors/*fixed*/L*/*/*.losses.parquet"))
    return [f for f in found if f not in known]
