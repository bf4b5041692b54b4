"""Building a judge from a config mapping (the workflow's `judge:` section)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Judge
from .llm import OpenAIJudge
from .offline import OfflineJudge


def make_judge(config: Mapping[str, Any] | str | None = None) -> Judge:
    """Build a judge from a config mapping.

    ``{"kind": "offline"}`` (default; optional ``thresholds``, ``fluency_lm``, ``lm_max_tokens``,
    ``batch_size``, ``cache``) or ``{"kind": "openai", "base_url": ..., "model": ..., "temperature": 0.0,
    "api_key_env": "PROSV_JUDGE_API_KEY", "max_concurrency": 4, "requests_per_minute": 60}`` (optional
    ``max_tokens``, ``timeout_s``, ``max_retries``, ``backoff_s``, ``on_error``, ``seed``, ``cache``).
    ``cache`` is a sqlite path, ``false`` to disable, or absent for :func:`default_cache_path`.
    """
    if config is None:
        config = {}
    if isinstance(config, str):
        config = {"kind": config}
    cfg = dict(config)
    kind = cfg.pop("kind", "offline")
    if kind == "offline":
        allowed = {"thresholds", "fluency_lm", "lm_max_tokens", "batch_size", "cache", "lm_dir"}
        cls = OfflineJudge
    elif kind in ("openai", "api", "llm"):
        allowed = {
            "model",
            "base_url",
            "temperature",
            "max_tokens",
            "api_key_env",
            "max_concurrency",
            "requests_per_minute",
            "timeout_s",
            "max_retries",
            "backoff_s",
            "max_backoff_s",
            "system_prompt",
            "on_error",
            "cache",
            "seed",
        }
        cls = OpenAIJudge
        if "model" not in cfg:
            raise ValueError("an openai judge config needs 'model'")
    else:
        raise ValueError(f"unknown judge kind {kind!r}; use 'offline' or 'openai'")
    unknown = set(cfg) - allowed
    if unknown:
        raise ValueError(f"unknown {kind} judge option(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return cls(**cfg)
