"""Joint training of the steering factor and direction (spec section 2), for K concepts at once.

Scaling rule: alpha_0 = c_alpha * sqrt(n) with a large learning rate, v_0 small with a small one.
Learning rates are given raw, or width-scaled (eta_alpha = base * sqrt(n), eta_v = base / sqrt(n))
so one setting transfers across model widths.

Many concepts share each forward pass, but every concept keeps its own optimizer, schedule,
clipping and loss normalisation, so a concept trained in a group follows the same trajectory as
the concept trained alone.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .interventions import LoReFT, SteeringVectors, attached, optional_hook
from .models import check_layer, decoder_layers, hidden_size
from .positions import as_spec, position_mask, template_ids


@dataclass
class TrainConfig:
    method: str = "sv"  # "sv" (steering vector) or "loreft"
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

    def validate(self) -> "TrainConfig":
        checks = {
            "method": self.method in ("sv", "loreft"),
            "loss": self.loss in ("lang", "simpo"),
            "lr_scaling": self.lr_scaling in ("raw", "width"),
            "v_init": self.v_init in ("uniform", "gaussian"),
            "optimizer": self.optimizer in ("adam", "sgd"),
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "micro_batch_size": self.micro_batch_size >= 1,
            "max_response_tokens": self.max_response_tokens >= 1,
            "eta_alpha": self.eta_alpha >= 0,
            "eta_v": self.eta_v > 0,
            "c_alpha": self.c_alpha > 0,
            "c_v": self.c_v > 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid training config: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")
        as_spec(self.positions)
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


def _logit_softcap(model) -> float | None:
    return getattr(model.config.get_text_config(), "final_logit_softcapping", None)


class _TokenLogprobs(torch.autograd.Function):
    """log p(target) per row under the LM head, with the softmax done in fp32 a few rows at a time.

    Plain `cross_entropy` on fp32 logits writes and re-reads several [tokens, vocab] fp32 tensors
    (the cast, log-softmax, its zero-filled gradient); for a small model that costs as much as the
    vocabulary projection itself. Here only the model-dtype logits are kept for the backward pass,
    and the fp32 work on each chunk of rows stays in cache. Same values as the plain computation.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, softcap, chunk):
        logits = F.linear(hidden, weight, bias)  # [T, V] in the model's dtype, as the plain path computes it
        lse = torch.empty(logits.shape[0], device=logits.device, dtype=torch.float32)
        picked = torch.empty_like(lse)
        for s in range(0, logits.shape[0], chunk):
            z = logits[s:s + chunk].float()
            if softcap:
                z = torch.tanh(z / softcap) * softcap
            lse[s:s + chunk] = torch.logsumexp(z, dim=-1)
            picked[s:s + chunk] = z.gather(1, targets[s:s + chunk, None]).squeeze(1)
        ctx.save_for_backward(hidden, weight, logits, lse, targets)
        ctx.softcap, ctx.chunk, ctx.has_bias = softcap, chunk, bias is not None
        return picked - lse

    @staticmethod
    def backward(ctx, grad):
        hidden, weight, logits, lse, targets = ctx.saved_tensors
        cap, chunk = ctx.softcap, ctx.chunk
        grad = grad.float()
        grad_logits = torch.empty_like(logits)
        for s in range(0, logits.shape[0], chunk):
            z = logits[s:s + chunk].float()
            if cap:
                squashed = torch.tanh(z / cap)
                z = squashed * cap
            g = grad[s:s + chunk, None]
            # d log p(t) / d z = onehot(t) - softmax(z), times the incoming gradient
            dz = torch.exp(z.sub_(lse[s:s + chunk, None])).mul_(-g)
            dz.scatter_add_(1, targets[s:s + chunk, None], g)
            if cap:
                dz.mul_(1 - squashed * squashed)
            grad_logits[s:s + chunk] = dz
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = grad_logits @ weight if need_h else None
        grad_w = grad_logits.T @ hidden if need_w else None
        grad_b = grad_logits.sum(0) if need_b and ctx.has_bias else None
        return grad_h, grad_w, grad_b, None, None, None


def token_logprobs(hidden: torch.Tensor, head: torch.nn.Module, targets: torch.Tensor,
                   softcap: float | None = None) -> torch.Tensor:
    """[T] fp32 log-probabilities of `targets` given final hidden states [T, n] and the LM head."""
    if not isinstance(head, torch.nn.Linear):  # unusual heads: the plain computation
        logits = head(hidden).float()
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return -F.cross_entropy(logits, targets, reduction="none")
    chunk = max(1, (1 << 21) // head.out_features)  # ~8 MB of fp32 per chunk
    return _TokenLogprobs.apply(hidden, head.weight, head.bias, targets, softcap, chunk)


class _Stop(Exception):
    """Raised by the capture hook once block L has run: the rest of the forward pass is not needed."""


class _Replay(torch.nn.Module):
    """Stands in for decoder blocks 0..L during a cached forward pass.

    Blocks before L pass their input through (it is ignored); block L returns the cached, already
    steered hidden states. The decoder still builds its masks and rotary embeddings from the ids,
    so every architecture (sliding windows, per-layer attention types) keeps its own logic.
    """

    def __init__(self, block, hidden: torch.Tensor | None):
        super().__init__()
        self.hidden = hidden
        for attr in ("attention_type", "layer_idx", "is_sliding"):
            if hasattr(block, attr):
                setattr(self, attr, getattr(block, attr))

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states if self.hidden is None else self.hidden


@contextmanager
def _replaying(model, layer: int, hidden: torch.Tensor):
    layers = decoder_layers(model)
    originals = [layers[i] for i in range(layer + 1)]
    try:
        for i in range(layer + 1):
            layers[i] = _Replay(originals[i], hidden if i == layer else None)
        yield
    finally:
        for i, block in enumerate(originals):
            layers[i] = block


class PrefixCache:
    """Block-L outputs (before any intervention) per token sequence, computed once.

    The steering edit enters at the output of block L, so everything up to there is the same in
    every epoch and for every method, loss and placement trained at that layer: one cache can be
    shared by several `train` calls. Rows are stored unpadded in the model's dtype, on the model's
    device unless they would exceed `max_device_bytes` (then on the CPU, moved per micro-batch).
    """

    def __init__(self, layer: int, max_device_bytes: int = 4 << 30):
        self.layer = layer
        self.max_device_bytes = max_device_bytes
        self.rows: dict[tuple[int, ...], torch.Tensor] = {}
        self.computed_tokens = 0  # tokens run through blocks 0..L so far (for logs and benchmarks)

    def __len__(self) -> int:
        return len(self.rows)

    @torch.no_grad()
    def ensure(self, model, pad_id: int, sequences: list[list[int]], micro_batch_size: int = 16) -> None:
        """Compute the block-L outputs of every sequence not cached yet."""
        check_layer(model, self.layer)
        missing = sorted({tuple(s) for s in sequences} - self.rows.keys(), key=len)
        if not missing:
            return
        param = next(model.parameters())
        device = param.device
        total = sum(len(s) for s in missing) * hidden_size(model) * param.element_size()
        storage = device if device.type == "cpu" or total <= self.max_device_bytes else torch.device("cpu")
        captured = {}

        def capture(block, args, output):
            captured["h"] = output[0] if isinstance(output, tuple) else output
            raise _Stop

        handle = decoder_layers(model)[self.layer].register_forward_hook(capture)
        try:
            for s in range(0, len(missing), micro_batch_size):
                part = missing[s:s + micro_batch_size]
                ids, attn = _right_padded([list(x) for x in part], pad_id)
                try:
                    model.get_decoder()(input_ids=ids.to(device), attention_mask=attn.to(device))
                except _Stop:
                    pass
                for b, seq in enumerate(part):
                    self.rows[seq] = captured["h"][b, :len(seq)].to(storage)
                self.computed_tokens += sum(len(x) for x in part)
        finally:
            handle.remove()

    def batch(self, sequences: list[list[int]], width: int, device) -> torch.Tensor:
        """[B, width, n] right-padded block-L outputs (zeros at padding) for sequences already cached."""
        first = self.rows[tuple(sequences[0])]
        out = torch.zeros((len(sequences), width, first.shape[-1]), dtype=first.dtype, device=device)
        for b, seq in enumerate(sequences):
            out[b, :len(seq)] = self.rows[tuple(seq)].to(device, non_blocking=True)
        return out


def _right_padded(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(sequences), width), dtype=torch.long)
    for b, s in enumerate(sequences):  # right padding: every prompt starts at 0
        ids[b, :len(s)] = torch.tensor(s)
        attn[b, :len(s)] = 1
    return ids, attn


def sequence_logprobs(model, hook, pad_id: int, seqs: list[tuple[list[int], list[int]]], rows: list[int],
                      positions, cache: PrefixCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of response-token log-probs and response length for each (prompt, response) sequence.

    The LM head runs on response positions only: for small models the vocabulary projection is
    most of the cost, and the loss needs nothing else. With a `cache` (filled for these sequences)
    only blocks L+1..N run; the steering edit is applied to the cached block-L output directly.
    """
    device = next(model.parameters()).device
    spec = as_spec(positions)
    full = [p + r for p, r in seqs]
    lens = [len(x) for x in full]
    width = max(lens)
    ids, attn = _right_padded(full, pad_id)
    plens = torch.tensor([len(p) for p, _ in seqs])
    mask = None
    if hook is not None:
        mask = position_mask(spec, torch.zeros_like(plens), plens, width, torch.tensor(lens)).to(device)
    decoder = model.get_decoder()
    if cache is not None:
        h = cache.batch(full, width, device)
        if hook is not None:
            h = hook.module.edit(h, torch.tensor(rows, dtype=torch.long, device=device), mask, hook.factor)
        with _replaying(model, cache.layer, h):
            hidden = decoder(input_ids=ids.to(device), attention_mask=attn.to(device)).last_hidden_state
    else:
        if hook is not None:
            hook.rows = torch.tensor(rows, dtype=torch.long, device=device)
            hook.mask = mask
        try:
            hidden = decoder(input_ids=ids.to(device), attention_mask=attn.to(device)).last_hidden_state
        finally:
            if hook is not None:
                hook.mask = None
    b_idx = torch.cat([torch.full((len(r),), b) for b, (_, r) in enumerate(seqs)])
    t_idx = torch.cat([torch.arange(len(p) - 1, len(p) + len(r) - 1) for p, r in seqs])
    targets = ids[b_idx, t_idx + 1].to(device)
    token_logp = token_logprobs(hidden[b_idx.to(device), t_idx.to(device)], model.get_output_embeddings(),
                                targets, _logit_softcap(model))
    sums = torch.zeros(len(seqs), device=device).index_add(0, b_idx.to(device), token_logp)
    counts = torch.tensor([len(r) for _, r in seqs], device=device, dtype=torch.float32)
    return sums, counts


@dataclass
class TrainResult:
    module: torch.nn.Module
    config: TrainConfig
    layer: int
    losses: pd.DataFrame  # one row per (concept, step)
    lr_alpha: float
    lr_v: float
    extra: dict = field(default_factory=dict)


def _make_module(cfg: TrainConfig, num_concepts: int, hidden: int) -> torch.nn.Module:
    if cfg.method == "loreft":
        return LoReFT(num_concepts, hidden, cfg.loreft_rank, cfg.seed)
    module = SteeringVectors.initialise(num_concepts, hidden, cfg.c_alpha, cfg.c_v, cfg.v_init, cfg.seed)
    if cfg.fixed_alpha is not None:
        for a in module.alpha:
            a.data.fill_(cfg.fixed_alpha)
            a.requires_grad_(False)
    return module


def _optimizers(cfg: TrainConfig, module, lr_alpha: float, lr_v: float) -> list[torch.optim.Optimizer]:
    opts = []
    for k in range(module.num_concepts):
        params = module.concept_parameters(k)
        if cfg.method == "loreft":
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
        sums, counts = sequence_logprobs(model, hook, pad_id, [(e.prompt, e.response) for _, _, e in batch],
                                         [k for k, _, _ in batch], cfg.positions, cache)
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
def _reference_logprobs(model, pad_id, encoded: list[list[Encoded]], micro: int, cache) -> dict:
    """Length-normalised log-probs of chosen and rejected under the frozen model (no steering)."""
    refs = {}
    flat = [(k, i, e) for k, exs in enumerate(encoded) for i, e in enumerate(exs)]
    for s in range(0, len(flat), micro):
        part = flat[s:s + micro]
        seqs = [x for _, _, e in part for x in ((e.prompt, e.response), (e.prompt, e.rejected))]
        sums, counts = sequence_logprobs(model, None, pad_id, seqs, [-1] * len(seqs), "prompt", cache)
        norm = (sums / counts).cpu()
        for j, (k, i, _) in enumerate(part):
            refs[(k, i)] = norm[2 * j:2 * j + 2]
    return refs


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


def train(model, tokenizer, layer: int, datasets: list[list[Example]], cfg: TrainConfig,
          progress: bool = True, concept_names: list | None = None, cache: PrefixCache | None = None) -> TrainResult:
    """Train one steering module per dataset (concept), all in one model, sharing forward passes.

    With `cfg.prefix_cache` the block-L outputs are computed once (into `cache` when one is given,
    so later calls at the same layer reuse them) and every step runs blocks L+1..N only.
    """
    with training_attention(model, cfg.attention):
        return _train(model, tokenizer, layer, datasets, cfg, progress, concept_names, cache)


def _train(model, tokenizer, layer, datasets, cfg, progress, concept_names, cache) -> TrainResult:
    cfg.validate()
    check_layer(model, layer)
    if not datasets:
        raise ValueError("no concepts to train")
    for k, d in enumerate(datasets):
        if not d:
            name = concept_names[k] if concept_names else k
            raise ValueError(f"concept {name!r} has no training examples")
        if cfg.loss == "simpo" and any(ex.rejected is None for ex in d):
            raise ValueError(f"the simpo loss needs a rejected (concept-neutral) response for every example "
                             f"(concept {concept_names[k] if concept_names else k})")
    hidden = hidden_size(model)
    lr_alpha, lr_v = cfg.learning_rates(hidden)
    device = next(model.parameters()).device
    module = _make_module(cfg, len(datasets), hidden).to(device)
    opts = _optimizers(cfg, module, lr_alpha, lr_v)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [encode(tokenizer, d, cfg.max_response_tokens) for d in datasets]
    if cfg.prefix_cache:
        if cache is None:
            cache = PrefixCache(layer)
        elif cache.layer != layer:
            raise ValueError(f"prefix cache holds layer {cache.layer}, training is at layer {layer}")
        seqs = [e.prompt + r for enc in encoded for e in enc
                for r in ((e.response, e.rejected) if cfg.loss == "simpo" else (e.response,))]
        cache.ensure(model, pad_id, seqs, cfg.micro_batch_size)
    else:
        cache = None
    refs = _reference_logprobs(model, pad_id, encoded, cfg.micro_batch_size, cache) if cfg.loss == "simpo" else {}

    steps_per_epoch = [math.ceil(len(e) / cfg.batch_size) for e in encoded]
    totals = [cfg.epochs * s for s in steps_per_epoch]
    # Each concept shuffles with its own generator seeded like a single-concept run.
    shufflers = [torch.Generator().manual_seed(cfg.seed) for _ in encoded]
    orders: list[torch.Tensor | None] = [None] * len(encoded)
    records = []
    was_training = model.training
    model.eval()
    with attached(model, layer, module) as hook:
        for step in tqdm(range(max(totals)), desc=f"train L{layer} {cfg.positions} x{len(datasets)}",
                         disable=not progress, unit="step"):
            batch = []
            for k, enc in enumerate(encoded):
                if step >= totals[k]:
                    continue
                j = step % steps_per_epoch[k]
                if j == 0:
                    orders[k] = torch.randperm(len(enc), generator=shufflers[k])
                for i in orders[k][j * cfg.batch_size:(j + 1) * cfg.batch_size].tolist():
                    batch.append((k, i, enc[i]))
            active = sorted({k for k, _, _ in batch})
            for k in active:
                opts[k].zero_grad(set_to_none=True)
            # per-concept normaliser: response tokens (lang) or examples (simpo) in its mini-batch
            if cfg.loss == "lang":
                denom = {k: sum(len(e.response) for kk, _, e in batch if kk == k) for k in active}
            else:
                denom = {k: sum(1 for kk, _, _ in batch if kk == k) for k in active}
            concept_loss = {k: 0.0 for k in active}
            for s in range(0, len(batch), cfg.micro_batch_size):
                part = batch[s:s + cfg.micro_batch_size]
                terms, _ = _example_losses(cfg, model, hook, pad_id, part, refs, cache)
                scale = torch.tensor([1.0 / denom[k] for k, _, _ in part], device=terms.device)
                (terms * scale).sum().backward()
                for (k, _, _), t in zip(part, (terms * scale).detach().tolist()):
                    concept_loss[k] += t
            for k in active:
                if cfg.method == "sv" and cfg.clip_v is not None:
                    torch.nn.utils.clip_grad_norm_(module.concept_parameters(k)["v"], cfg.clip_v)
                # linear decay to 0, no warm-up: step s uses base * (total - s) / total
                decay = (totals[k] - step) / totals[k]
                for group in opts[k].param_groups:
                    group["lr"] = group["base_lr"] * decay
                opts[k].step()
                row = {"concept": concept_names[k] if concept_names else k, "concept_index": k, "step": step,
                       "epoch": step // steps_per_epoch[k], "loss": concept_loss[k], "lr_scale": decay}
                if cfg.method == "sv":
                    row["alpha"] = float(module.alpha[k].detach())
                    row["v_norm"] = float(module.v[k].detach().norm())
                records.append(row)
    model.train(was_training)
    for p in module.parameters():
        p.requires_grad_(False)
    extra = {"prefix_cached_sequences": len(cache) if cache is not None else 0}
    return TrainResult(module, cfg, layer, pd.DataFrame.from_records(records), lr_alpha, lr_v, extra)


@torch.no_grad()
def response_loss(model, tokenizer, examples: list[Example], layer: int | None = None, module=None,
                  concept_index: int = 0, positions: str = "p2+s2", factor: float = 1.0,
                  max_response_tokens: int = 128, micro_batch_size: int = 16) -> float:
    """Mean token cross-entropy of the responses, steered by `module`'s concept (or unsteered)."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    enc = encode(tokenizer, examples, max_response_tokens)
    total, tokens = 0.0, 0.0

    def run(hook):
        nonlocal total, tokens
        for s in range(0, len(enc), micro_batch_size):
            part = enc[s:s + micro_batch_size]
            sums, counts = sequence_logprobs(model, hook, pad_id, [(e.prompt, e.response) for e in part],
                                             [concept_index] * len(part), positions)
            total -= float(sums.sum())
            tokens += float(counts.sum())

    with optional_hook(model, layer, module, factor) as hook:
        run(hook)
    return total / tokens
