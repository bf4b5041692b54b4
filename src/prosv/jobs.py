"""What every workflow job shares: logging to the rule's log, threads, allocator, config -> objects.

Workflow scripts stay thin: they read the `snakemake` object and call these helpers and the
library; the same helpers serve anyone driving prosv from Python with a config mapping.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from pathlib import Path

import pandas as pd
import torch

from .models import recommended_hyperparameters
from .training import HYPERPARAMETER_KEYS, Example, TrainConfig, TrainingError

log = logging.getLogger("prosv")

# the positions keyword of a methods entry that takes the location search's choice
LOCATED = "located"


def concept_shards(concepts: list[int], per_job: int | None) -> list[list[int]]:
    """A split's concepts cut, in their order, into jobs of at most ``per_job`` (config key
    ``concepts_per_job``; None: one job). Every concept trains from the same seed and its own
    shuffle, so how a split is cut changes no result."""
    concepts = [int(c) for c in concepts]
    if per_job is None:
        return [concepts]
    if int(per_job) < 1:
        raise ValueError(f"config key 'concepts_per_job': must be at least 1, got {per_job}")
    return [concepts[i : i + int(per_job)] for i in range(0, len(concepts), int(per_job))]


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 1 << 30, top_pad: int = 256 << 20) -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back to the kernel.

    Every forward and backward pass allocates and frees the same activation buffers. With glibc's
    defaults, freed blocks beyond the heap top or above the mmap threshold go back to the kernel
    and the next pass faults them in again page by page: measured, 5-10% of a CPU training step
    on the reference machine (benchmarks/README.md). The cost is resident memory that stays at its
    high-water mark (at most `trim_threshold` more). Returns False where there is no glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # <malloc.h>
    return all(
        mallopt(option, value) == 1
        for option, value in (
            (m_mmap_threshold, mmap_threshold),
            (m_trim_threshold, trim_threshold),
            (m_top_pad, top_pad),
        )
    )


def start_job(snakemake) -> None:
    """Send stderr (logging, tqdm progress, warnings) to the rule's log file, pin CPU threads, keep
    freed memory for reuse, and log what the job runs on (device, dtype, versions, CPU features)."""
    if snakemake.log:
        Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(snakemake.log[0], "a", buffering=1)  # noqa: SIM115  (the job's whole life)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True
    )
    torch.set_num_threads(max(1, int(snakemake.threads)))
    keep_freed_memory()
    torch.manual_seed(int(snakemake.config.get("seed", 42)))
    log.info("job %s: threads=%s", getattr(snakemake, "rule", "?"), snakemake.threads)
    log.info("provenance: %s", provenance_line(snakemake.config))


def provenance_line(config: dict) -> str:
    """What a job of this config runs on: the configured device and dtype (as they resolve here), the
    versions and the CPU. Resolving the dtype logs the fp32-fallback warning where it applies."""
    from .models import default_device, resolve_dtype
    from .provenance import describe, line

    device = config.get("device", "auto")
    device = default_device() if device in (None, "auto") else torch.device(device)
    return line(describe(device, resolve_dtype(config.get("dtype", "auto"), device)))


def load_configured_model(config: dict):
    from .models import load_model
    from .provenance import line, of_model

    model, tokenizer = load_model(
        config["model"], device=config.get("device", "auto"), dtype=config.get("dtype", "auto")
    )
    log.info("model %s loaded: %s", config["model"], line(of_model(model)))
    return model, tokenizer


def method_entry(config: dict, method: str) -> dict:
    if method not in config["methods"]:
        raise KeyError(f"unknown method {method!r}; configured methods: {sorted(config['methods'])}")
    return config["methods"][method]


def train_config(config: dict, method: str, positions: str | None = None) -> TrainConfig:
    """The TrainConfig of a `methods` entry.

    Later sources win: TrainConfig's defaults, the model's recommended settings for the placement
    family and loss (:func:`prosv.models.recommended_hyperparameters`), the config's `train` section,
    the method entry itself; then `positions` (the placement actually trained, which a `located`
    entry needs), the data's response length and the seed.
    """
    entry = method_entry(config, method)
    positions = positions or entry["positions"]
    if positions == LOCATED:
        raise ValueError(f"config methods.{method}: positions '{LOCATED}' needs the location search's choice")
    values = recommended_hyperparameters(config["model"], positions, entry["loss"])
    values.update(config.get("train", {}))
    values.update({k: v for k, v in entry.items() if k in HYPERPARAMETER_KEYS})
    values.pop("max_examples", None)
    values["positions"] = positions
    if "response_tokens" in config.get("data", {}):
        values["max_response_tokens"] = config["data"]["response_tokens"]
    values["seed"] = config.get("seed", TrainConfig.seed)
    return TrainConfig.from_mapping(values, where=f"config methods.{method}")


def concept_examples(
    pairs: pd.DataFrame, concept_ids: list[int], max_examples: int | None = None, split: str = "train"
) -> list[list[Example]]:
    """Training pairs per concept (kept rows only), in file order, optionally capped."""
    out = []
    for cid in concept_ids:
        rows = pairs[(pairs.concept_id == cid) & pairs.keep & (pairs.split == split)]
        if rows.empty:
            raise ValueError(f"concept {cid} has no training pairs: the data step kept none of its responses")
        if max_examples:
            rows = rows.head(max_examples)
        out.append([Example(r.instruction, r.response, r.neutral_response) for r in rows.itertuples()])
    return out


def concept_names(pairs: pd.DataFrame, concept_ids: list[int]) -> list[str] | None:
    """The name of each concept id in a pairs table (None when the table has no names)."""
    if "concept" not in pairs.columns:
        return None
    names = pairs.drop_duplicates("concept_id").set_index("concept_id")["concept"]
    return [str(names.get(cid, cid)) for cid in concept_ids]


def cell_generations(snakemake, model, tokenizer, module, names, concept_ids, layer: int, positions: str, n: int):
    """Factor-free responses of every stacked cell (scaling study, tuning sweep) to `n` evaluation
    instructions per development concept, sampled with the config's `evaluate` settings."""
    from . import evaluation as E
    from .experiments import scaling_generations

    ev = snakemake.params.evaluate
    prompts = E.steering_prompts(
        pd.read_parquet(snakemake.input.concepts),
        pd.read_parquet(snakemake.input.instructions),
        n=n,
        concept_ids=concept_ids,
    )
    return scaling_generations(
        model,
        tokenizer,
        module,
        names,
        prompts,
        layer,
        positions,
        max_new_tokens=ev["max_new_tokens"],
        temperature=ev["temperature"],
        seed=int(snakemake.config["seed"]),
        batch_size=ev["batch_size"],
        progress=True,
    )


def save_training(
    result,
    model,
    *,
    method: str,
    split: str,
    vectors,
    losses,
    hyperparameters: dict,
    seconds: float,
    concepts: list | None = None,
    names: list[str] | None = None,
) -> None:
    """Write a training run's loss log (with its labels) and its vector file (with the concepts' ids
    and, given ``names``, their names); a run in which a concept diverged writes neither, so a good
    file from an earlier run is never replaced by a bad one. The vector file holds no timing
    (`seconds` goes to the log), so identical runs give identical bytes."""
    from .files import write_parquet
    from .models import hidden_size, layers_text, num_layers
    from .provenance import of_model
    from .vectors import save_vectors

    cfg = result.config
    ids = concepts if concepts is not None else list(dict.fromkeys(result.losses["concept"]))
    if result.diverged:
        raise TrainingError(
            f"{method} at layer {result.layer}, {cfg.positions}: {result.divergence_report()}; nothing written "
            f"({vectors} and {losses} keep what they held). Lower eta_alpha / eta_v."
        )
    log.info("trained %s in %.1f s; lr_alpha=%.4g lr_v=%.4g", method, seconds, result.lr_alpha, result.lr_v)
    write_parquet(
        losses,
        result.losses.assign(
            method=method,
            layer=result.layer if isinstance(result.layer, int) else layers_text(result.layer),
            positions=cfg.positions,
            split=split,
            objective=cfg.loss,
            intervention=cfg.intervention,
            fixed_alpha=cfg.fixed_alpha,
        ),
    )
    save_vectors(
        vectors,
        result.module,
        model=model.prosv_ref.source_id,
        layer=result.layer,
        positions=cfg.positions,
        loss=cfg.loss,
        hyperparameters=hyperparameters,
        method=method,
        concepts=ids,
        hidden_size=hidden_size(model),
        num_layers=num_layers(model),
        provenance=of_model(model),  # no timing here: identical runs on one machine give identical files
        extra={"concept_names": names} if names else None,
    )


def merge_training(vector_files: list, loss_files: list, vectors, losses) -> None:
    """One training run's vector file and loss log from its shards (config key ``concepts_per_job``),
    concepts in shard order; each shard's ``concept_index`` is shifted to its place in the run, so
    the merge of a sharded run is the table an unsharded one writes."""
    from .files import write_parquet
    from .vectors import merge_vector_files

    parts, offset = [], 0
    for path in loss_files:
        part = pd.read_parquet(path)
        if "concept_index" in part.columns:
            part = part.assign(concept_index=part.concept_index + offset)
        offset += part["concept"].nunique()
        parts.append(part)
    merged = pd.concat(parts, ignore_index=True)
    if {"step", "concept_index"} <= set(merged.columns):  # one job's order: step by step, concepts in order
        merged = merged.sort_values(["step", "concept_index"], kind="stable", ignore_index=True)
    write_parquet(losses, merged)
    merge_vector_files(list(vector_files), vectors)


def concepts_in_parts(prompts: pd.DataFrame, respond, out, *, rows_per_part: int, fingerprint: dict) -> pd.DataFrame:
    """``respond(prompts)`` part by part, each part a few whole concepts of ``prompts`` (at least
    ``rows_per_part`` rows, so batches stay full), kept in ``<out>.parts/`` as it finishes: a killed
    generation job redoes only its unfinished parts. Every row samples from its own seeded generator,
    so the parts give the rows one call would; parts written for another ``fingerprint`` (settings,
    vectors, prompts) are thrown away. The folder is removed once ``out`` is written by the caller."""
    import hashlib
    import json
    import shutil

    from .files import write_json, write_parquet

    parts_dir = Path(f"{out}.parts")
    key = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode())
    key.update(pd.util.hash_pandas_object(prompts.reset_index(drop=True), index=True).values.tobytes())
    stamp = {"fingerprint": key.hexdigest()}
    stamp_path = parts_dir / "fingerprint.json"
    if parts_dir.is_dir() and (not stamp_path.is_file() or json.loads(stamp_path.read_text()) != stamp):
        shutil.rmtree(parts_dir)
    if not parts_dir.is_dir():
        parts_dir.mkdir(parents=True)
        write_json(stamp_path, stamp)
    groups, current = [], []
    for _, rows in prompts.groupby("concept_id", sort=False):
        current.append(rows)
        if sum(len(r) for r in current) >= rows_per_part:
            groups.append(pd.concat(current))
            current = []
    if current:
        groups.append(pd.concat(current))
    results, reused = [], 0
    for i, group in enumerate(groups):
        part = parts_dir / f"{i}.parquet"
        if part.is_file():
            results.append(pd.read_parquet(part))
            reused += 1
            continue
        result = respond(group)
        write_parquet(part, result)
        results.append(result)
    if reused:
        log.info("resumed: %d of %d parts were already done (%s)", reused, len(groups), parts_dir)
    return pd.concat(results, ignore_index=True) if results else prompts.iloc[:0]


def remove_parts(out) -> None:
    import shutil

    shutil.rmtree(Path(f"{out}.parts"), ignore_errors=True)
