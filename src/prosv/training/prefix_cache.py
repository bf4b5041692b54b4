"""The prefix cache: decoder blocks 0..L run once per example, every training step runs L+1..N.

The steering edit enters at the output of block L, so everything up to there is the same in every
epoch and for every method, loss and placement trained at that layer.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from ..models import check_layer, decoder_layers, hidden_size
from ..padding import right_padded


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
def replaying(model, layer: int, hidden: torch.Tensor):
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
        # (prompt ids, response ids) -> (summed log-prob, tokens) under the unsteered model, for the
        # training loop's reference losses (filled by prosv.training.loop)
        self.unsteered: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[torch.Tensor, torch.Tensor]] = {}
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
                part = missing[s : s + micro_batch_size]
                ids, attn = right_padded([list(x) for x in part], pad_id)
                try:
                    model.get_decoder()(input_ids=ids.to(device), attention_mask=attn.to(device))
                except _Stop:
                    pass
                for b, seq in enumerate(part):
                    self.rows[seq] = captured["h"][b, : len(seq)].to(storage)
                self.computed_tokens += sum(len(x) for x in part)
        finally:
            handle.remove()

    def batch(self, sequences: list[list[int]], width: int, device) -> torch.Tensor:
        """[B, width, n] right-padded block-L outputs (zeros at padding) for sequences already cached."""
        first = self.rows[tuple(sequences[0])]
        out = torch.zeros((len(sequences), width, first.shape[-1]), dtype=first.dtype, device=device)
        for b, seq in enumerate(sequences):
            out[b, : len(seq)] = self.rows[tuple(seq)].to(device, non_blocking=True)
        return out
