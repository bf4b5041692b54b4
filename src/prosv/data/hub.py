"""Hugging Face Hub access for public datasets, offline-aware, with errors that say how to provide them.

Hub access goes through ``huggingface_hub`` (a dependency of ``transformers``). With
``HF_HUB_OFFLINE=1`` or ``HF_DATASETS_OFFLINE=1`` the hub is never contacted, only the local cache
is read. When a dataset cannot be had, :class:`DatasetUnavailableError` says which one and how to
provide it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


class DatasetUnavailableError(RuntimeError):
    """A public dataset could not be read: not given locally and not reachable or cached."""

    def __init__(self, dataset: str, reason: str, how_to_provide: str):
        self.dataset = dataset
        self.reason = reason
        super().__init__(
            f"Dataset '{dataset}' is not available: {reason}\n"
            f"How to provide it:\n"
            f"  - pass a local copy: {how_to_provide}\n"
            f"  - or pre-populate the Hugging Face cache on a machine with internet access,\n"
            f"    e.g. `hf download {dataset} --repo-type dataset` (older clients:\n"
            f"    `huggingface-cli download {dataset} --repo-type dataset`), copy the cache\n"
            f"    (HF_HOME, default ~/.cache/huggingface) over, and run with HF_HUB_OFFLINE=1."
        )


def offline() -> bool:
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(k, "").strip().lower() in truthy for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def short_error(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg[:300]}" if msg else type(exc).__name__


def _from_hub(repo_id: str, what: str, how_to_provide: str, fetch: Callable[[Any], str]) -> Path:
    """Run ``fetch(huggingface_hub)`` and turn any failure into a DatasetUnavailableError for ``repo_id``."""
    try:
        import huggingface_hub
    except ImportError:
        raise DatasetUnavailableError(repo_id, "huggingface_hub is not installed", how_to_provide) from None
    try:
        return Path(fetch(huggingface_hub))
    except Exception as exc:  # network, auth, missing file, offline cache miss: all the same to us
        mode = "offline mode, not in the local cache" if offline() else "download failed"
        raise DatasetUnavailableError(
            repo_id, f"could not get {what} ({mode}; {short_error(exc)})", how_to_provide
        ) from None


def hub_file(
    repo_id: str,
    filename: str,
    *,
    how_to_provide: str,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """One file of a hub dataset repo (from the cache only when offline)."""
    return _from_hub(
        repo_id,
        f"'{filename}'",
        how_to_provide,
        lambda hub: hub.hf_hub_download(
            repo_id, filename, repo_type="dataset", revision=revision, cache_dir=cache_dir, local_files_only=offline()
        ),
    )


def hub_snapshot(
    repo_id: str,
    allow_patterns: list[str],
    *,
    how_to_provide: str,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """A (filtered) snapshot folder of a hub dataset repo."""
    return _from_hub(
        repo_id,
        "a snapshot",
        how_to_provide,
        lambda hub: hub.snapshot_download(
            repo_id,
            repo_type="dataset",
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=allow_patterns,
            local_files_only=offline(),
        ),
    )
