"""What a training run is given: its settings (:class:`TrainConfig`) and its examples.

:class:`TrainConfig` is the one place where training defaults live. Its hyper-parameter defaults
are the paper's reference setting for PrOSV with the `lang` loss on Gemma-2-2B-it at layer 10
(n = 2304); the rates tuned for other models are their registry entry's recommended settings
(:func:`prosv.models.recommended_hyperparameters`), which the command line and the workflow both
apply on top of these defaults.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..positions import as_spec

INTERVENTIONS = ("sv", "loreft")
LOSSES = ("lang", "simpo")

# the keys a user may set for a training run (everything but bookkeeping of the library itself)
HYPERPARAMETER_KEYS = (
    "intervention",
    "positions",
    "loss",
    "c_alpha",
    "eta_alpha",
    "c_v",
    "eta_v",
    "lr_scaling",
    "v_init",
    "fixed_alpha",
    "optimizer",
    "epochs",
    "batch_size",
    "micro_batch_size",
    "max_response_tokens",
    "clip_v",
    "simpo_beta",
    "simpo_gamma",
    "loreft_rank",
    "eta_loreft",
    "seed",
)


@dataclass
class TrainConfig:
    intervention: str = "sv"  # "sv" (steering vector) or "loreft"
    positions: str = "p2+s2"
    loss: str = "lang"  # "lang" or "simpo"
    c_alpha: float = 4.0
    eta_alpha: float = 10.0
    c_v: float = 8.0
    eta_v: float = 0.04
    lr_scaling: str = "raw"  # "raw" or "width"
    v_init: str = "uniform"  # "uniform" (reference code) or "gaussian" (paper text)
    fixed_alpha: float | None = None  # freeze alpha at this value (direction-only ablation)
    optimizer: str = "adam"  # "adam" or "sgd"
    epochs: int = 12
    batch_size: int = 12
    micro_batch_size: int = 16  # rows per forward pass; gradients accumulate across them
    max_response_tokens: int = 128
    clip_v: float | None = 1.0  # gradient-norm clip on v only: clipping alpha too breaks the rule
    simpo_beta: float = 1.0
    simpo_gamma: float = 0.0
    loreft_rank: int = 1
    eta_loreft: float | None = None  # LoReFT learning rate; default: eta_v
    prefix_cache: bool = True  # compute layers 0..L once per example and reuse them every epoch
    # attention kernels while training: "auto" = eager on CPU (torch's SDPA backward costs about five
    # times its forward there), the model's own elsewhere; or any transformers implementation name
    attention: str = "auto"
    seed: int = 42

    @classmethod
    def from_mapping(cls, values: dict, where: str = "training config") -> TrainConfig:
        """A config from a mapping of hyper-parameters; an unknown key is an error that names it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**values).validate(where)

    def validate(self, where: str = "training config") -> TrainConfig:
        """Every value in range, or a ValueError naming the key, its value and what it must be."""
        choices = {
            "intervention": INTERVENTIONS,
            "loss": LOSSES,
            "lr_scaling": ("raw", "width"),
            "v_init": ("uniform", "gaussian"),
            "optimizer": ("adam", "sgd"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{where}: {key}={getattr(self, key)!r} must be one of {list(allowed)}")
        # (key, value, lowest allowed: "any", "zero" or "positive", may it be None)
        numbers = [
            ("c_alpha", self.c_alpha, "positive", False),
            ("eta_alpha", self.eta_alpha, "zero", False),
            ("c_v", self.c_v, "positive", False),
            ("eta_v", self.eta_v, "positive", False),
            ("fixed_alpha", self.fixed_alpha, "any", True),
            ("clip_v", self.clip_v, "positive", True),
            ("simpo_beta", self.simpo_beta, "positive", False),
            ("simpo_gamma", self.simpo_gamma, "zero", False),
            ("eta_loreft", self.eta_loreft, "positive", True),
        ]
        for key, value, lowest, none_ok in numbers:
            if value is None and none_ok:
                continue
            finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            in_range = finite and (lowest == "any" or value > 0 or (lowest == "zero" and value == 0))
            if not in_range:
                bound = {"any": "", "zero": " >= 0", "positive": " > 0"}[lowest]
                raise ValueError(f"{where}: {key}={value!r} must be a finite number{bound}")
        for key in ("epochs", "batch_size", "micro_batch_size", "max_response_tokens", "loreft_rank"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{where}: {key}={value!r} must be an integer >= 1")
        try:
            as_spec(self.positions)
        except ValueError as err:
            raise ValueError(f"{where}: positions: {err}") from None
        return self

    def learning_rates(self, hidden: int) -> tuple[float, float]:
        """(eta_alpha, eta_v) for a model of width `hidden`."""
        if self.lr_scaling == "width":
            return self.eta_alpha * math.sqrt(hidden), self.eta_v / math.sqrt(hidden)
        return self.eta_alpha, self.eta_v

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Example:
    instruction: str
    response: str
    rejected: str | None = None  # concept-neutral response, for the simpo loss


@dataclass
class Encoded:
    prompt: list[int]
    response: list[int]
    rejected: list[int] | None = None


def encode(tokenizer, examples: list[Example], max_response_tokens: int) -> list[Encoded]:
    """Chat-template the prompts; tokenize responses without special tokens and without EOS."""
    from ..positions import template_ids

    out = []
    for i, ex in enumerate(examples):
        resp = tokenizer(ex.response, add_special_tokens=False)["input_ids"][:max_response_tokens]
        if not resp:
            raise ValueError(f"example {i} has an empty response: {ex.instruction[:60]!r}")
        rej = None
        if ex.rejected is not None:
            rej = tokenizer(ex.rejected, add_special_tokens=False)["input_ids"][:max_response_tokens]
            if not rej:
                raise ValueError(f"example {i} has an empty rejected response")
        out.append(Encoded(template_ids(tokenizer, ex.instruction), resp, rej))
    return out
