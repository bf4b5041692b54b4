"""The offline judge: embeddings, an independent fluency LM and calibrated ordinal models (see :mod:`.judge`)."""

from .calibration import (
    agreement,
    calibrate_offline_judge,
    default_calibration_data,
    evaluate_judge,
    format_metrics,
    load_calibration,
)
from .features import AXIS_FEATURES, lm_statistics, segments, text_statistics
from .judge import DEFAULT_THRESHOLDS, FEATURE_VERSION, OfflineJudge
from .models import DEFAULT_FLUENCY_LM, DEFAULT_LM_MAX_TOKENS, FLUENCY_LMS, embedding_model_dir, prepare_fluency_lm
from .ordinal import OrdinalAxis, fit_ordinal, spearman

__all__ = [
    "AXIS_FEATURES",
    "DEFAULT_FLUENCY_LM",
    "DEFAULT_LM_MAX_TOKENS",
    "DEFAULT_THRESHOLDS",
    "FEATURE_VERSION",
    "FLUENCY_LMS",
    "OfflineJudge",
    "OrdinalAxis",
    "agreement",
    "calibrate_offline_judge",
    "default_calibration_data",
    "embedding_model_dir",
    "evaluate_judge",
    "fit_ordinal",
    "format_metrics",
    "lm_statistics",
    "load_calibration",
    "prepare_fluency_lm",
    "segments",
    "spearman",
    "text_statistics",
]
