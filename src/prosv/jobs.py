"""What every workflow job shares: logging to the rule's log, thread pinning, allocator, config -> objects.

Workflow scripts stay thin: they read the `snakemake` object and call these helpers and the
library; the same helpers serve anyone driving prosv from Python with a config mapping.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import sys
from pathlib import Path

import pandas as pd
import torch

from .training import Example, TrainConfig

log = logging.getLogger("prosv")

TRAIN_KEYS = ("positions", "loss", "c_alpha", "eta_alpha", "c_v", "eta_v", "lr_scaling", "v_init", "fixed_alpha",
              "optimizer", "epochs", "batch_size", "loreft_rank", "eta_loreft")


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 1 << 30,
                      top_pad: int = 256 << 20) -> bool:
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
    return all(mallopt(option, value) == 1 for option, value in
               ((m_mmap_threshold, mmap_threshold), (m_trim_threshold, trim_threshold), (m_top_pad, top_pad)))


def start_job(snakemake) -> None:
    """Send stderr (logging, tqdm progress, warnings) to the rule's log file, pin CPU threads, keep
    freed memory for reuse."""
    if snakemake.log:
        Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(snakemake.log[0], "a", buffering=1)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        force=True)
    torch.set_num_threads(max(1, int(snakemake.threads)))
    keep_freed_memory()
    torch.manual_seed(int(snakemake.config.get("seed", 42)))
    log.info("job %s: threads=%s", getattr(snakemake, "rule", "?"), snakemake.threads)


def load_configured_model(config: dict):
    from .models import load_model

    return load_model(config["model"], device=config.get("device", "auto"), dtype=config.get("dtype", "auto"),
                      root=os.environ.get("PROSV_MODELS_ROOT", "resources/models"))


def method_entry(config: dict, method: str) -> dict:
    if method not in config["methods"]:
        raise KeyError(f"unknown method {method!r}; configured methods: {sorted(config['methods'])}")
    return config["methods"][method]


def train_config(config: dict, method: str, positions: str | None = None) -> TrainConfig:
    """The TrainConfig of a `methods` entry, with workflow-wide defaults and an optional positions override."""
    entry = method_entry(config, method)
    train = config.get("train", {})
    kwargs = {k: entry[k] for k in TRAIN_KEYS if k in entry}
    kwargs.setdefault("epochs", train.get("epochs", 12))
    kwargs.setdefault("batch_size", train.get("batch_size", 12))
    kwargs["micro_batch_size"] = train.get("micro_batch_size", 16)
    kwargs["max_response_tokens"] = config["data"].get("response_tokens", 128)
    kwargs["method"] = entry.get("kind", "sv")
    kwargs["seed"] = config.get("seed", 42)
    if positions is not None:
        kwargs["positions"] = positions
    return TrainConfig(**kwargs).validate()


def concept_examples(pairs: pd.DataFrame, concept_ids: list[int], max_examples: int | None = None,
                     split: str = "train") -> list[list[Example]]:
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


def write_json(path, obj) -> None:
    from .vectors import atomic_write

    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str)))


def write_parquet(path, df: pd.DataFrame) -> None:
    from .vectors import atomic_write

    atomic_write(Path(path), lambda tmp: df.to_parquet(tmp, index=False))
