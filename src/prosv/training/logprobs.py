"""Log-probabilities of response tokens, the quantity every training loss is built from.

The LM head runs on response positions only (for small models the vocabulary projection is most
of the cost), and its softmax runs in fp32 a few rows at a time (:func:`token_logprobs`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..padding import right_padded
from ..positions import as_spec, position_mask
from .prefix_cache import PrefixCache, replaying


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
            z = logits[s : s + chunk].float()
            if softcap:
                z = torch.tanh(z / softcap) * softcap
            lse[s : s + chunk] = torch.logsumexp(z, dim=-1)
            picked[s : s + chunk] = z.gather(1, targets[s : s + chunk, None]).squeeze(1)
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
            z = logits[s : s + chunk].float()
            if cap:
                squashed = torch.tanh(z / cap)
                z = squashed * cap
            g = grad[s : s + chunk, None]
            # d log p(t) / d z = onehot(t) - softmax(z), times the incoming gradient
            dz = torch.exp(z.sub_(lse[s : s + chunk, None])).mul_(-g)
            dz.scatter_add_(1, targets[s : s + chunk, None], g)
            if cap:
                dz.mul_(1 - squashed * squashed)
            grad_logits[s : s + chunk] = dz
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = grad_logits @ weight if need_h else None
        grad_w = grad_logits.T @ hidden if need_w else None
        grad_b = grad_logits.sum(0) if need_b and ctx.has_bias else None
        return grad_h, grad_w, grad_b, None, None, None


def token_logprobs(
    hidden: torch.Tensor, head: torch.nn.Module, targets: torch.Tensor, softcap: float | None = None
) -> torch.Tensor:
    """[T] fp32 log-probabilities of `targets` given final hidden states [T, n] and the LM head."""
    if not isinstance(head, torch.nn.Linear):  # unusual heads: the plain computation
        logits = head(hidden).float()
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return -F.cross_entropy(logits, targets, reduction="none")
    chunk = max(1, (1 << 21) // head.out_features)  # ~8 MB of fp32 per chunk
    return _TokenLogprobs.apply(hidden, head.weight, head.bias, targets, softcap, chunk)


def sequence_logprobs(
    model,
    hook,
    pad_id: int,
    seqs: list[tuple[list[int], list[int]]],
    rows: list[int],
    positions,
    cache: PrefixCache | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
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
    ids, attn = right_padded(full, pad_id)
    plens = torch.tensor([len(p) for p, _ in seqs])
    mask = None
    if hook is not None:
        mask = position_mask(spec, torch.zeros_like(plens), plens, width, torch.tensor(lens)).to(device)
    decoder = model.get_decoder()
    if cache is not None:
        h = cache.batch(full, width, device)
        if hook is not None:
            h = hook.module.edit(h, torch.tensor(rows, dtype=torch.long, device=device), mask, hook.factor)
        with replaying(model, cache.layer, h):
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
    token_logp = token_logprobs(
        hidden[b_idx.to(device), t_idx.to(device)], model.get_output_embeddings(), targets, _logit_softcap(model)
    )
    sums = torch.zeros(len(seqs), device=device).index_add(0, b_idx.to(device), token_logp)
    counts = torch.tensor([len(r) for _, r in seqs], device=device, dtype=torch.float32)
    return sums, counts
