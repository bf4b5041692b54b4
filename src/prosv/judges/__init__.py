"""Judges: rate (concept, instruction, response) on three axes, each 0, 1 or 2.

Two judges sit behind one interface (:class:`Judge`, :mod:`.base`):

- :class:`OfflineJudge` (``kind: offline``, the default; :mod:`.offline`): deterministic, CPU only,
  no network; embeddings for concept and instruction, an independent LM for fluency, ordinal models
  calibrated on our hand labels.
- :class:`OpenAIJudge` (``kind: openai``; :mod:`.llm`): any OpenAI-compatible chat-completions
  server with our own rubric prompts.

Both cache every call on disk (:class:`JudgeCache`, :mod:`.cache`) and count calls, cache hits,
tokens, errors and parse failures (:attr:`Judge.stats`). Build one from a config mapping with
:func:`make_judge`; calibrate and check the offline judge with ``prosv judge calibrate|evaluate``.
"""

from .base import (
    AXES,
    RAW_COLUMNS,
    Judge,
    JudgeStats,
    Rating,
    harmonic_mean,
    merge_ratings,
    parse_rating,
    save_ratings,
)
from .cache import JudgeCache, default_cache_path
from .factory import make_judge
from .llm import PROMPT_VERSION, RUBRICS, JudgeAPIError, OpenAIJudge, judge_messages
from .offline import (
    AXIS_FEATURES,
    DEFAULT_THRESHOLDS,
    OfflineJudge,
    agreement,
    calibrate_offline_judge,
    evaluate_judge,
    fit_ordinal,
    format_metrics,
    load_calibration,
)

__all__ = [
    "AXES",
    "AXIS_FEATURES",
    "DEFAULT_THRESHOLDS",
    "PROMPT_VERSION",
    "RATING_COLUMNS",
    "RAW_COLUMNS",
    "RUBRICS",
    "Judge",
    "JudgeAPIError",
    "JudgeCache",
    "JudgeStats",
    "OfflineJudge",
    "OpenAIJudge",
    "Rating",
    "agreement",
    "calibrate_offline_judge",
    "default_cache_path",
    "evaluate_judge",
    "fit_ordinal",
    "format_metrics",
    "harmonic_mean",
    "judge_messages",
    "load_calibration",
    "make_judge",
    "parse_rating",
    "merge_ratings",
    "save_ratings",
]

from ..evaluation import RATING_COLUMNS
