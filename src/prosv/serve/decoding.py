"""Per-row decoding: the next token of one row, and the text a row has produced so far.

Token choice is `prosv.generation`'s, row by row: greedy at temperature 0, else a draw from the
row's own generator seeded as `generate` seeds sample 0 (so a request's seed reproduces the
library's first row); top_p < 1 keeps the smallest set of tokens whose probability reaches top_p.

Text is the library's too (`tokenizer.decode(tokens, skip_special_tokens=True)`). What has been
streamed is always a prefix of it: a trailing partial UTF-8 character (decoded as U+FFFD) and the
last characters that could begin a stop sequence are held back until the next token settles them.
"""

from __future__ import annotations

import torch

from ..generation import _row_generators, draw_tokens

REPLACEMENT = "\ufffd"


def row_generator(seed: int, temperature: float, device: torch.device | str = "cpu") -> torch.Generator | None:
    return _row_generators(seed, [0], device)[0] if temperature > 0 else None


def next_token(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> int:
    """One row's next token from its last-position logits [vocab]."""
    if temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # on the generator's device (row_generator)
    if top_p < 1:
        ordered, order = probs.sort(descending=True)
        before = ordered.cumsum(0) - ordered  # probability of the tokens ranked above each one
        ordered[before >= top_p] = 0  # the top token always stays
        probs = torch.zeros_like(probs).scatter_(0, order, ordered)
    return int(draw_tokens(probs[None], [generator])[0])


class TextStream:
    """Tokens to text for one row, with stop sequences cut off and streamable deltas."""

    def __init__(self, tokenizer, stop: list[str]):
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.text = ""
        self.sent = 0  # characters already handed out
        self.stopped = False  # a stop sequence was found; the text ends before it

    def update(self, tokens: list[int]) -> None:
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        if self.stop:
            start = max(0, self.sent - max(len(s) for s in self.stop))
            hits = [i for i in (text.find(s, start) for s in self.stop) if i >= 0]
            if hits:
                text, self.stopped = text[: min(hits)], True
        self.text = text

    def delta(self, final: bool) -> str:
        """New text that is safe to hand out now (everything that is left when `final`)."""
        end = len(self.text)
        if not final:
            while end > 0 and self.text[end - 1] == REPLACEMENT:
                end -= 1
            if self.stop:  # what could still become the start of a stop sequence
                end -= max(len(s) for s in self.stop) - 1
        if end <= self.sent:
            return ""
        out = self.text[self.sent : end]
        self.sent = end
        return out
