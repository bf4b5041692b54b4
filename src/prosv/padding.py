"""Batches of token sequences of different lengths: right padding for training, left for generation.

Training right-pads so every prompt starts at index 0; generation left-pads so every row's next
token is at the last index. Attention masks mark real tokens with 1.
"""

from __future__ import annotations

import torch


def padding_id(tokenizer) -> int:
    """The id that pads a batch: the tokenizer's pad token, else its end-of-sequence token."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def _padded(sequences: list[list[int]], pad_id: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        span = slice(width - len(s), width) if left else slice(0, len(s))
        ids[i, span] = torch.tensor(s, dtype=torch.long)
        attn[i, span] = 1
    return ids, attn


def right_padded(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask), each [batch, longest]: every sequence starts at index 0."""
    return _padded(sequences, pad_id, left=False)


def left_pad(sequences: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) on `device`, each [batch, longest]: every sequence ends at the last index."""
    ids, attn = _padded(sequences, pad_id, left=True)
    return ids.to(device), attn.to(device)
