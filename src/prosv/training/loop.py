"""The training loop: K concepts at once, each with its own optimizer, schedule and clipping.

Many concepts share each forward pass, but every concept keeps its own optimizer, learning-rate
schedule, gradient clipping and loss normalisation, so a concept trained in a group follows the
same trajectory as the concept trained alone.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..interventions import (
    LayeredSteering,
    Layers,
    LoReFT,
    SteeringVectors,
    attached,
    layer_tuple,
    layers_text,
    optional_hook,
)
from ..models import check_layer, hidden_size
from ..padding import padding_id
from .checkpoint import CHECKPOINT_EVERY_S, Checkpoint, run_fingerprint
from .config import Encoded, Example, TrainConfig, encode
from .logprobs import sequence_logprobs
from .prefix_cache import PrefixCache

log = logging.getLogger(__name__)

# A concept is diverging while, over a window of steps, its loss is more than DIVERGENCE_RATIO times the
# unsteered model's loss on the same examples, and that ratio is above its first step's (a large init
# that starts far above the unsteered model and comes down is training, not diverging). The window is
# one epoch of steps (at least DIVERGENCE_STEPS; shorter runs are not judged); comparing with the
# unsteered loss on the same examples removes batch-to-batch spread (one batch's loss ranged
# 0.75x-1.66x of its epoch's mean). Measured on the embedded model (36 pairs, 4 epochs, layers 10 and
# 20): normal runs (p2+s2, prompt, all; the recommended and the paper's rates) at 0.87x-1.07x for lang,
# 0.46x-0.89x for simpo; --eta-alpha 1e6 --eta-v 1e3 at 1.23x-1.36x (lang, layer 20: held-out loss
# 1.95 -> 2.58), 3.1x-3.6x (lang, layer 10), 1.18x-1.92x (simpo); --eta-v 1 at 1.35x-1.77x (lang,
# layer 10), at most 1.16x where it recovers. The loss table's `diverged` column marks the steps over
# the limit and the log says when a concept goes over and comes back; a run whose last window is over
# the limit has diverged (TrainResult.diverged) and the callers do not keep it.
DIVERGENCE_RATIO = 1.2
DIVERGENCE_STEPS = 3


class TrainingError(RuntimeError):
    """A concept's training produced a non-finite loss or parameter."""


@dataclass
class TrainResult:
    module: torch.nn.Module
    config: TrainConfig
    layer: Layers
    losses: pd.DataFrame  # one row per (concept, step)
    lr_alpha: float
    lr_v: float
    extra: dict = field(default_factory=dict)

    @property
    def diverged(self) -> list:
        """Concepts whose training ended diverged (over DIVERGENCE_RATIO in their last window); empty for
        a healthy run, and for one that ran away and came back."""
        if self.losses.empty or "diverged" not in self.losses:
            return []
        last = self.losses.sort_values("step").groupby("concept", sort=False).tail(1)
        return sorted(last.loc[last.diverged, "concept"].unique().tolist(), key=str)

    def divergence_report(self) -> str:
        """Where each diverged concept ran away and how far its loss had risen, in words."""
        reports = self.extra.get("divergence", {})  # concept name -> its latest report
        return "; ".join(reports[str(c)] for c in self.diverged if str(c) in reports)


def _make_module(cfg: TrainConfig, num_concepts: int, hidden: int, layer: Layers) -> torch.nn.Module:
    layers = layer_tuple(layer)
    if cfg.intervention == "loreft":
        if len(layers) > 1:
            raise ValueError(f"LoReFT trains at one layer, not at layers {layers_text(layers)}")
        return LoReFT(num_concepts, hidden, cfg.loreft_rank, cfg.seed)
    init = {"c_alpha": cfg.c_alpha, "c_v": cfg.c_v, "v_init": cfg.v_init, "seed": cfg.seed}
    per_layer = [SteeringVectors.initialise(num_concepts, hidden, **init) for _ in layers]
    if cfg.fixed_alpha is not None:
        for a in (a for m in per_layer for a in m.alpha):
            a.data.fill_(cfg.fixed_alpha)
            a.requires_grad_(False)
    return per_layer[0] if isinstance(layer, int) else LayeredSteering(layers, per_layer)


def _optimizers(cfg: TrainConfig, module, lr_alpha: float, lr_v: float) -> list[torch.optim.Optimizer]:
    opts = []
    for k in range(module.num_concepts):
        params = module.concept_parameters(k)
        if cfg.intervention == "loreft":
            lr = cfg.eta_loreft if cfg.eta_loreft is not None else lr_v
            groups = [{"params": params["R"] + params["W"], "lr": lr, "base_lr": lr}]
        else:
            groups = [{"params": params["v"], "lr": lr_v, "base_lr": lr_v, "name": "v"}]
            if cfg.fixed_alpha is None:
                groups.append({"params": params["alpha"], "lr": lr_alpha, "base_lr": lr_alpha, "name": "alpha"})
        if cfg.optimizer == "adam":
            opts.append(torch.optim.Adam(groups, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0))
        else:
            opts.append(torch.optim.SGD(groups))
    return opts


def _example_losses(cfg, model, hook, pad_id, batch, refs, cache):
    """Per-example loss terms for a micro-batch of (concept, example index, Encoded)."""
    if cfg.loss == "lang":
        sums, counts = sequence_logprobs(
            model,
            hook,
            pad_id,
            [(e.prompt, e.response) for _, _, e in batch],
            [k for k, _, _ in batch],
            cfg.positions,
            cache,
        )
        return -sums, counts  # summed CE and token counts; normalised per concept by the caller
    seqs, rows = [], []
    for k, _, e in batch:
        seqs += [(e.prompt, e.response), (e.prompt, e.rejected)]
        rows += [k, k]
    sums, counts = sequence_logprobs(model, hook, pad_id, seqs, rows, cfg.positions, cache)
    norm = sums / counts
    chosen, rejected = norm[0::2], norm[1::2]
    ref = torch.stack([refs[(k, i)] for k, i, _ in batch]).to(chosen.device)  # [b, 2]: ref chosen, ref rejected
    weight = (ref[:, 1] - ref[:, 0]).clamp(min=1.0)
    margin = cfg.simpo_beta * (weight * chosen - rejected) - cfg.simpo_gamma
    return -F.logsigmoid(margin), torch.ones_like(margin)


@torch.no_grad()
def _reference_logprobs(cfg, model, pad_id, encoded: list[list[Encoded]], micro: int, cache) -> dict:
    """Per (concept, example), under the frozen model without steering: the length-normalised
    log-probs of chosen and rejected (simpo, whose loss weights by them), or the summed response
    log-prob and its token count (lang). Both give each step's unsteered loss (:func:`_unsteered_losses`).

    Each (prompt, response) is scored once per prefix cache (every run at the layer shares it): with
    the cache it costs one pass of blocks L+1..N per example, about 1 / (3 x epochs) of a training run.
    """
    store = cache.unsteered if cache is not None else {}
    pair = cfg.loss == "simpo"
    keys = {
        (k, i): [(tuple(e.prompt), tuple(r)) for r in ((e.response, e.rejected) if pair else (e.response,))]
        for k, exs in enumerate(encoded)
        for i, e in enumerate(exs)
    }
    missing = list(dict.fromkeys(x for ks in keys.values() for x in ks if x not in store))
    for s in range(0, len(missing), micro):
        part = missing[s : s + micro]
        seqs = [(list(p), list(r)) for p, r in part]
        sums, counts = sequence_logprobs(model, None, pad_id, seqs, [-1] * len(seqs), "prompt", cache)
        for key, total, n in zip(part, sums.float().cpu(), counts.float().cpu()):
            store[key] = (total, n)
    refs = {}
    for ki, ks in keys.items():
        if pair:  # [chosen, rejected], length-normalised
            refs[ki] = torch.stack([store[x][0] / store[x][1] for x in ks])
        else:  # [summed log-prob, tokens]
            refs[ki] = torch.stack(list(store[ks[0]]))
    return refs


def _unsteered_losses(cfg, batch, refs) -> dict[int, float]:
    """Each concept's loss on this step's examples without steering, normalised as its loss is."""
    out = {}
    for k in sorted({k for k, _, _ in batch}):
        ref = torch.stack([refs[(k, i)] for kk, i, _ in batch if kk == k])
        if cfg.loss == "lang":
            out[k] = float(-ref[:, 0].sum() / ref[:, 1].sum())
        else:
            weight = (ref[:, 1] - ref[:, 0]).clamp(min=1.0)
            margin = cfg.simpo_beta * (weight * ref[:, 0] - ref[:, 1]) - cfg.simpo_gamma
            out[k] = float(-F.logsigmoid(margin).mean())
    return out


@contextmanager
def training_attention(model, name: str = "auto"):
    """Switch the model's attention implementation for the duration of a training run; restored after."""
    device = next(model.parameters()).device
    wanted = ("eager" if device.type == "cpu" else None) if name == "auto" else name
    current = getattr(model.config, "_attn_implementation", None)
    if wanted is None or wanted == current or not hasattr(model, "set_attn_implementation"):
        yield
        return
    model.set_attn_implementation(wanted)
    try:
        yield
    finally:
        model.set_attn_implementation(current)


def _check_datasets(datasets: list[list[Example]], cfg: TrainConfig, names: list) -> None:
    if not datasets:
        raise ValueError("no concepts to train")
    for name, d in zip(names, datasets):
        if not d:
            raise ValueError(f"concept {name!r} has no training examples")
        if cfg.loss == "simpo" and any(ex.rejected is None for ex in d):
            raise ValueError(
                f"the simpo loss needs a rejected (concept-neutral) response for every example (concept {name!r})"
            )


def _fill_cache(model, cfg, layer, encoded, pad_id, cache) -> PrefixCache | None:
    if not cfg.prefix_cache or not isinstance(layer, int):  # several layers: every step runs the whole model
        return None
    if cache is None:
        cache = PrefixCache(layer)
    elif cache.layer != layer:
        raise ValueError(f"prefix cache holds layer {cache.layer}, training is at layer {layer}")
    seqs = [
        e.prompt + r
        for enc in encoded
        for e in enc
        for r in ((e.response, e.rejected) if cfg.loss == "simpo" else (e.response,))
    ]
    cache.ensure(model, pad_id, seqs, cfg.micro_batch_size)
    return cache


class _Schedule:
    """Which examples each concept sees at each step: its own shuffle per epoch, seeded like a
    single-concept run, and its own number of steps."""

    def __init__(self, encoded: list[list[Encoded]], cfg: TrainConfig):
        self.encoded, self.batch_size = encoded, cfg.batch_size
        self.steps_per_epoch = [math.ceil(len(e) / cfg.batch_size) for e in encoded]
        self.totals = [cfg.epochs * s for s in self.steps_per_epoch]
        self.shufflers = [torch.Generator().manual_seed(cfg.seed) for _ in encoded]
        self.orders: list[torch.Tensor | None] = [None] * len(encoded)

    def batch(self, step: int) -> list[tuple[int, int, Encoded]]:
        out = []
        for k, enc in enumerate(self.encoded):
            if step >= self.totals[k]:
                continue
            j = step % self.steps_per_epoch[k]
            if j == 0:
                self.orders[k] = torch.randperm(len(enc), generator=self.shufflers[k])
            for i in self.orders[k][j * self.batch_size : (j + 1) * self.batch_size].tolist():
                out.append((k, i, enc[i]))
        return out


def _accumulate(cfg, model, hook, pad_id, batch, refs, cache) -> dict[int, float]:
    """Forward and backward over a step's batch in micro-batches; returns each concept's loss."""
    active = sorted({k for k, _, _ in batch})
    # per-concept normaliser: response tokens (lang) or examples (simpo) in its mini-batch
    if cfg.loss == "lang":
        denom = {k: sum(len(e.response) for kk, _, e in batch if kk == k) for k in active}
    else:
        denom = {k: sum(1 for kk, _, _ in batch if kk == k) for k in active}
    concept_loss = dict.fromkeys(active, 0.0)
    for s in range(0, len(batch), cfg.micro_batch_size):
        part = batch[s : s + cfg.micro_batch_size]
        terms, _ = _example_losses(cfg, model, hook, pad_id, part, refs, cache)
        scaled = terms * torch.tensor([1.0 / denom[k] for k, _, _ in part], device=terms.device)
        scaled.sum().backward()
        for (k, _, _), t in zip(part, scaled.detach().tolist()):
            concept_loss[k] += t
    return concept_loss


def _step_concept(cfg, module, opt, k: int, step: int, total: int, name) -> tuple[float, float | None]:
    """Clip, schedule and step one concept's optimizer; returns (lr scale, grad norm of v)."""
    grad_norm = None
    if cfg.intervention == "sv":  # each layer's direction is clipped on its own, as a single-layer one is
        limit = cfg.clip_v if cfg.clip_v is not None else math.inf
        norms = [float(torch.nn.utils.clip_grad_norm_(v, limit)) for v in module.direction_groups(k)]
        grad_norm = math.sqrt(sum(n * n for n in norms))
    decay = (total - step) / total  # linear decay to 0, no warm-up: step s uses base * (total - s) / total
    for group in opt.param_groups:
        group["lr"] = group["base_lr"] * decay
    try:
        opt.step()
    except RuntimeError as err:  # e.g. a rate near float32's limit: "value cannot be converted ... overflow"
        raise TrainingError(
            f"concept {name!r}: the optimizer step failed at step {step} ({err}); lower the learning rates"
        ) from None
    return decay, grad_norm


def train(
    model,
    tokenizer,
    layer: Layers,
    datasets: list[list[Example]],
    cfg: TrainConfig,
    progress: bool = True,
    concept_names: list | None = None,
    cache: PrefixCache | None = None,
    checkpoint: str | None = None,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
) -> TrainResult:
    """Train one steering module per dataset (concept), all in one model, sharing forward passes.

    `layer` is one layer, or a list or tuple of layers for one steering vector per layer trained
    jointly (a :class:`LayeredSteering`; a one-element list gives one too).
    With `cfg.prefix_cache` the block-L outputs are computed once (into `cache` when one is given,
    so later calls at the same layer reuse them) and every step runs blocks L+1..N only. A concept
    whose loss or parameters stop being finite raises :class:`TrainingError` naming it and the step.
    With `checkpoint` (a file path) the run's state is saved there every `checkpoint_every_s` seconds
    and a rerun of the same run resumes from it, to the same result (:mod:`.checkpoint`); the caller
    removes the file once the result is safely written.
    """
    saver = (checkpoint, checkpoint_every_s)
    with training_attention(model, cfg.attention):
        return _train(model, tokenizer, layer, datasets, cfg, progress, concept_names, cache, saver)


def _train(model, tokenizer, layer, datasets, cfg, progress, concept_names, cache, saver) -> TrainResult:
    cfg.validate()
    for x in layer_tuple(layer):
        check_layer(model, x)
    if not isinstance(layer, int):
        layer = layer_tuple(layer)
    names = list(concept_names) if concept_names is not None else list(range(len(datasets)))
    _check_datasets(datasets, cfg, names)
    hidden = hidden_size(model)
    lr_alpha, lr_v = cfg.learning_rates(hidden)
    module = _make_module(cfg, len(datasets), hidden, layer).to(next(model.parameters()).device)
    opts = _optimizers(cfg, module, lr_alpha, lr_v)
    pad_id = padding_id(tokenizer)
    encoded = [encode(tokenizer, d, cfg.max_response_tokens) for d in datasets]
    cache = _fill_cache(model, cfg, layer, encoded, pad_id, cache)
    refs = _reference_logprobs(cfg, model, pad_id, encoded, cfg.micro_batch_size, cache)
    schedule = _Schedule(encoded, cfg)
    watch = _DivergenceWatch(names, schedule.steps_per_epoch, schedule.totals)
    records = []
    saved = Checkpoint(saver[0], run_fingerprint(cfg, layer, names, encoded), saver[1])
    start = _restore(saved.load(), module, opts, schedule, watch, records)
    was_training = model.training
    model.eval()
    with attached(model, layer, module) as hook:
        for step in tqdm(
            range(start, max(schedule.totals)),
            desc=f"train L{layers_text(layer)} {cfg.positions} x{len(datasets)}",
            disable=not progress,
            unit="step",
            initial=start,
            total=max(schedule.totals),
        ):
            if saved.due():
                saved.save(_state(step, module, opts, schedule, watch, records))
            batch = schedule.batch(step)
            for k in {k for k, _, _ in batch}:
                opts[k].zero_grad(set_to_none=True)
            unsteered = _unsteered_losses(cfg, batch, refs)
            for k, loss in _accumulate(cfg, model, hook, pad_id, batch, refs, cache).items():
                decay, grad_norm = _step_concept(cfg, module, opts[k], k, step, schedule.totals[k], names[k])
                epoch = step // schedule.steps_per_epoch[k]
                row = dict(concept=names[k], concept_index=k, step=step, epoch=epoch, loss=loss)
                row.update(unsteered_loss=unsteered[k], lr_scale=decay)
                if cfg.intervention == "sv":  # several layers: the means over them
                    alpha, v_norm = module.trace(k)
                    row.update(alpha=alpha, v_norm=v_norm, v_grad_norm=grad_norm)
                row["diverged"] = watch.update(k, row)
                records.append(row)
    model.train(was_training)
    for p in module.parameters():
        p.requires_grad_(False)
    extra = {
        "prefix_cached_sequences": len(cache) if cache is not None else 0,
        "divergence": {str(names[k]): text for k, text in sorted(watch.reports.items())},
    }
    return TrainResult(module, cfg, layer, pd.DataFrame.from_records(records), lr_alpha, lr_v, extra)


def _state(step, module, opts, schedule, watch, records) -> dict:
    """Everything a run needs to go on from `step` as if it had never stopped."""
    return {
        "step": step,
        "module": module.state_dict(),
        "optimizers": [o.state_dict() for o in opts],
        "shufflers": [g.get_state() for g in schedule.shufflers],
        "orders": schedule.orders,
        "watch": (watch.losses, watch.reports, watch.over),
        "records": records,
    }


def _restore(state, module, opts, schedule, watch, records) -> int:
    """Put a saved state (if any) back in place; returns the step to go on from."""
    if state is None:
        return 0
    module.load_state_dict(state["module"])
    for opt, saved in zip(opts, state["optimizers"], strict=True):
        opt.load_state_dict(saved)
    for gen, saved in zip(schedule.shufflers, state["shufflers"], strict=True):
        gen.set_state(saved)
    schedule.orders = list(state["orders"])
    watch.losses, watch.reports, watch.over = state["watch"]
    records.extend(state["records"])
    return int(state["step"])


class _DivergenceWatch:
    """Stops a concept whose loss or parameters are not finite; flags the steps where its loss runs away."""

    def __init__(self, names: list, steps_per_epoch: list[int], totals: list[int]):
        self.names = names
        # a run shorter than an epoch is judged on every step after its first; one of DIVERGENCE_STEPS
        # steps or fewer is not judged (Adam's first steps move every coordinate by the full rate, and
        # a run that short cannot show whether the loss comes back)
        self.windows = [max(DIVERGENCE_STEPS, min(s, t - 1)) for s, t in zip(steps_per_epoch, totals)]
        self.losses: dict[int, list[tuple[float, float]]] = {}  # (loss, unsteered loss) per step
        self.reports: dict[int, str] = {}  # the latest report of each concept that went over the limit
        self.over: dict[int, bool] = {}

    def update(self, k: int, row: dict) -> bool:
        """Whether concept k's last window is over the limit (after checking that row is finite)."""
        bad = [key for key in ("loss", "alpha", "v_norm") if key in row and not math.isfinite(row[key])]
        if bad:
            raise TrainingError(
                f"concept {self.names[k]!r}: {', '.join(f'{b} is {row[b]}' for b in bad)} at step "
                f"{row['step']}; lower the learning rates (eta_alpha, eta_v) or the init scales"
            )
        seen = self.losses.setdefault(k, [])
        seen.append((row["loss"], row["unsteered_loss"]))
        window, name, step = self.windows[k], self.names[k], row["step"]
        recent = seen[1:][-window:] if window > 0 else []
        if not recent or len(recent) < window:
            return False
        mean, unsteered = (sum(x[j] for x in recent) / window for j in (0, 1))
        ratio, start = mean / unsteered, seen[0][0] / seen[0][1]
        over = ratio > DIVERGENCE_RATIO and ratio > start
        if over:
            self.reports[k] = (
                f"concept {name!r} diverged: at step {step} its mean loss over the last {window} steps was "
                f"{mean:.3g}, {ratio:.2f}x the unsteered model's {unsteered:.3g} on the same examples "
                f"(first step: {start:.2f}x)"
            )
        if over != self.over.get(k, False):
            log.warning("%s", self.reports[k] if over else f"concept {name!r} came back under the limit at step {step}")
        self.over[k] = over
        return over


@torch.no_grad()
def response_loss(
    model,
    tokenizer,
    examples: list[Example],
    layer: Layers | None = None,
    module=None,
    concept_index: int = 0,
    positions: str = "p2+s2",
    factor: float = 1.0,
    max_response_tokens: int = 128,
    micro_batch_size: int = 16,
) -> float:
    """Mean token cross-entropy of the responses, steered by `module`'s concept (or unsteered)."""
    pad_id = padding_id(tokenizer)
    enc = encode(tokenizer, examples, max_response_tokens)
    total, tokens = 0.0, 0.0
    with optional_hook(model, layer, module, factor) as hook:
        for s in range(0, len(enc), micro_batch_size):
            part = enc[s : s + micro_batch_size]
            sums, counts = sequence_logprobs(
                model, hook, pad_id, [(e.prompt, e.response) for e in part], [concept_index] * len(part), positions
            )
            total -= float(sums.sum())
            tokens += float(counts.sum())
    return total / tokens
