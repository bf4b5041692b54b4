"""Joint training of the steering factor and direction, for K concepts at once.

Scaling rule: alpha_0 = c_alpha * sqrt(n) with a large learning rate, v_0 small with a small one.
Learning rates are given raw, or width-scaled (eta_alpha = base * sqrt(n), eta_v = base / sqrt(n))
so one setting transfers across model widths (docs/method.md, "Joint training").

- :mod:`.config`: :class:`TrainConfig` (every default), :class:`Example`, tokenisation;
- :mod:`.logprobs`: response-token log-probabilities (chunked fp32 softmax);
- :mod:`.prefix_cache`: blocks 0..L once per example;
- :mod:`.loop`: :func:`train` and :func:`response_loss`.
"""

from .config import HYPERPARAMETER_KEYS, INTERVENTIONS, LOSSES, Encoded, Example, TrainConfig, encode
from .logprobs import sequence_logprobs, token_logprobs
from .loop import TrainingError, TrainResult, response_loss, train, training_attention
from .prefix_cache import PrefixCache

__all__ = [
    "HYPERPARAMETER_KEYS",
    "INTERVENTIONS",
    "LOSSES",
    "Encoded",
    "Example",
    "PrefixCache",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "encode",
    "response_loss",
    "sequence_logprobs",
    "token_logprobs",
    "train",
    "training_attention",
]
