"""A LoRA baseline through peft, trained on the same examples, shuffles and budget as a steering vector.

The model's own weights stay frozen; rank-r adapters on the attention and MLP projections learn the
response cross-entropy (the `lang` loss) with Adam, the same linear decay to zero and the same
per-epoch shuffle (:class:`.loop._Schedule`) as a steering vector trained with the same TrainConfig,
so a comparison of the two differs only in what is trained.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..files import atomic_write
from ..padding import padding_id
from .config import Example, TrainConfig, encode
from .logprobs import sequence_logprobs
from .loop import _Schedule, training_attention

# the attention and MLP projections of Llama-, Gemma- and Qwen-style blocks (peft's usual choice)
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SETTINGS_FILE = "prosv.json"  # what the adapter was trained for, beside peft's own files


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 8
    lora_alpha: float = 16.0  # the update is scaled by lora_alpha / rank
    dropout: float = 0.0
    learning_rate: float = 1e-3
    clip: float = 1.0  # gradient-norm clip over all adapter weights
    targets: tuple[str, ...] = LORA_TARGETS

    @classmethod
    def from_mapping(cls, values: dict, where: str = "lora settings") -> LoraSettings:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
        values = {**values, "targets": tuple(values["targets"])} if "targets" in values else values
        settings = cls(**values)
        if not isinstance(settings.rank, int) or settings.rank < 1:
            raise ValueError(f"{where}: rank={settings.rank!r} must be an integer >= 1")
        for key in ("lora_alpha", "learning_rate", "clip"):
            if not getattr(settings, key) > 0:
                raise ValueError(f"{where}: {key}={getattr(settings, key)!r} must be > 0")
        if not 0 <= settings.dropout < 1:
            raise ValueError(f"{where}: dropout={settings.dropout!r} must be in [0, 1)")
        return settings


@dataclass
class LoraResult:
    model: torch.nn.Module  # the peft model; its base model now carries the adapters
    settings: LoraSettings
    config: TrainConfig
    losses: pd.DataFrame

    @property
    def steered(self) -> torch.nn.Module:
        """The base model with the adapters in place (what `prosv.generation.generate` is given)."""
        return self.model.get_base_model()

    def save(self, folder: str | Path, metadata: dict) -> Path:
        """peft's adapter files plus SETTINGS_FILE (settings, training config, `metadata`)."""
        folder = Path(folder)
        self.model.save_pretrained(str(folder), safe_serialization=True)
        record = {"lora": asdict(self.settings), "training": self.config.to_dict(), **metadata}
        atomic_write(
            folder / SETTINGS_FILE, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2, sort_keys=True))
        )
        return folder

    def unload(self) -> torch.nn.Module:
        """Remove the adapters; the base model is as it was before training."""
        return self.model.unload()


def _present_targets(model, targets: tuple[str, ...]) -> list[str]:
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    present = [t for t in targets if t in names]
    if not present:
        raise ValueError(f"LoRA targets {list(targets)}: none is a module of this model")
    return present


def attach_lora(model, settings: LoraSettings, seed: int):
    """The peft model with fresh adapters (A by peft's default init under `seed`, B at zero)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.dropout,
        target_modules=_present_targets(model, settings.targets),
        bias="none",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(model, config)


def load_lora(model, folder: str | Path):
    """A saved adapter on `model` (the base model it was trained on), frozen."""
    from peft import PeftModel

    if not (Path(folder) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{folder}: not a LoRA adapter folder (no adapter_config.json)")
    return PeftModel.from_pretrained(model, str(folder), is_trainable=False)


def train_lora(
    model, tokenizer, examples: list[Example], cfg: TrainConfig, settings: LoraSettings, progress: bool = True
) -> LoraResult:
    """Adapters on `model` trained on `examples` with cfg's epochs, batch size, seed, micro-batch and
    response length; returns the peft model and one loss row per step."""
    cfg.validate()
    if not examples:
        raise ValueError("no training examples for the LoRA baseline")
    pad_id = padding_id(tokenizer)
    encoded = encode(tokenizer, examples, cfg.max_response_tokens)
    peft_model = attach_lora(model, settings, cfg.seed)
    base = peft_model.get_base_model()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=settings.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    schedule = _Schedule([encoded], cfg)
    total, records = schedule.totals[0], []
    base.eval()  # adapters train; dropout (if any) is peft's own and follows its module's mode
    with training_attention(base, cfg.attention):
        for step in tqdm(range(total), desc=f"train LoRA r{settings.rank}", disable=not progress, unit="step"):
            batch = [e for _, _, e in schedule.batch(step)]
            opt.zero_grad(set_to_none=True)
            tokens = sum(len(e.response) for e in batch)
            loss = 0.0
            for s in range(0, len(batch), cfg.micro_batch_size):
                part = batch[s : s + cfg.micro_batch_size]
                sums, _ = sequence_logprobs(
                    base, None, pad_id, [(e.prompt, e.response) for e in part], [-1] * len(part), "prompt"
                )
                term = -sums.sum() / tokens
                term.backward()
                loss += float(term.detach())
            if not math.isfinite(loss):  # before the step: adapters are never moved by a non-finite loss
                raise ValueError(f"LoRA training: the loss is {loss} at step {step}; lower learning_rate")
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, settings.clip))
            for group in opt.param_groups:
                group["lr"] = settings.learning_rate * (total - step) / total
            opt.step()
            records.append(
                {"step": step, "epoch": step // schedule.steps_per_epoch[0], "loss": loss, "grad_norm": grad_norm}
            )
    for p in params:
        p.requires_grad_(False)
    return LoraResult(peft_model, settings, cfg, pd.DataFrame.from_records(records))
