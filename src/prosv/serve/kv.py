"""The running batch's KV cache: rows join between steps, left-padded to a common length, and leave.

Rows keep the layout of `prosv.generation`: each row's newest token is at the last index, padding
sits on the left, is masked out and never attended to, and position ids are explicit, so a row
computes what it computes in a left-padded batch of `generate`. Merging pads keys and values with
zeros (a masked position's weight is exactly 0 whatever it holds); columns that every remaining
row masks are dropped when rows leave.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class UnsupportedCache(ValueError):
    pass


def _check_layers(cache) -> None:
    odd = sorted({type(layer).__name__ for layer in cache.layers if type(layer) is not DynamicLayer})
    if odd:
        raise UnsupportedCache(
            f"the model's KV cache has {odd} layers (sliding-window or quantized attention); prosv serve "
            "merges requests into one batch only for models with plain full-attention caches"
        )


def check_model(model) -> None:
    """Refuse, before serving, a model whose cache rows cannot be merged (the cache its config builds)."""
    _check_layers(DynamicCache(config=model.config))


def _pad_left(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


class KVRows:
    """Cache, attention mask [rows, T] and next position ids [rows, 1] of the rows being decoded."""

    def __init__(self):
        self.cache = None
        self.attn: torch.Tensor | None = None
        self.next_pos: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.attn is None else self.attn.shape[0]

    def join(self, cache, attn: torch.Tensor, next_pos: torch.Tensor) -> None:
        """Append the rows of a prefill call (its cache, mask and next positions) below the current ones."""
        _check_layers(cache)
        if self.cache is None:
            self.cache, self.attn, self.next_pos = cache, attn, next_pos
            return
        width = max(self.attn.shape[1], attn.shape[1])
        for mine, theirs in zip(self.cache.layers, cache.layers):
            if not mine.is_initialized:
                continue
            mine.keys = torch.cat([_pad_left(mine.keys, width, 2), _pad_left(theirs.keys, width, 2)])
            mine.values = torch.cat([_pad_left(mine.values, width, 2), _pad_left(theirs.values, width, 2)])
        self.attn = torch.cat([_pad_left(self.attn, width, 1), _pad_left(attn, width, 1)])
        self.next_pos = torch.cat([self.next_pos, next_pos])

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows (in this order); drop the columns none of them attends to."""
        if not rows:
            self.cache = self.attn = self.next_pos = None
            return
        if rows == list(range(len(self))):
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.attn.device)
        self.attn, self.next_pos = self.attn[index], self.next_pos[index]
        used = self.attn.any(dim=0).nonzero()
        first = int(used[0]) if len(used) else 0
        for layer in self.cache.layers:
            if layer.is_initialized:
                layer.keys = layer.keys[index, :, first:]
                layer.values = layer.values[index, :, first:]
        self.attn = self.attn[:, first:]

    def advance(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(attention mask, position ids) for one more token per row; the positions move on after."""
        ones = torch.ones((len(self), 1), dtype=self.attn.dtype, device=self.attn.device)
        self.attn = torch.cat([self.attn, ones], dim=1)
        positions = self.next_pos
        self.next_pos = self.next_pos + 1
        return self.attn, positions
