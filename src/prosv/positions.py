"""Where an intervention acts: the position grammar and its resolution on templated token ids.

Specs: `p{k}` (first k prompt tokens), `s{k}` (last k), `p{k}+s{m}` (both, never counting a
position twice; a short prompt trims the suffix part), `prompt` (every prompt token), `all`
(FSSV: every prompt token and every response / generated token).

Indices refer to the exact ids the model sees after the chat template. In a left-padded batch a
row's prompt starts at its pad offset; padding is never intervened on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

# one part of a spec: ASCII only (\d alone would also take other scripts' digits, which int() reads)
_PART = re.compile(r"\s*([ps])([0-9]+)\s*", re.ASCII)


class PositionSpecError(ValueError):
    pass


@dataclass(frozen=True)
class PositionSpec:
    text: str
    prefix: int = 0
    suffix: int = 0
    whole_prompt: bool = False
    generation: bool = False  # FSSV: also every response / decoded token

    @property
    def prompt_only(self) -> bool:
        """True when decoding steps are left alone (PrOSV and other prompt-only placements)."""
        return not self.generation

    def prompt_indices(self, prompt_len: int) -> list[int]:
        """Intervened indices within an unpadded prompt of `prompt_len` tokens."""
        if prompt_len <= 0:
            raise PositionSpecError("empty prompt: there is no position to intervene on")
        if self.whole_prompt:
            return list(range(prompt_len))
        head = list(range(min(self.prefix, prompt_len)))
        tail_start = max(prompt_len - self.suffix, len(head))
        return head + list(range(tail_start, prompt_len))


def parse_positions(spec: str) -> PositionSpec:
    """Parse a position spec; unknown forms and non-positive counts are errors that name the spec."""
    if not isinstance(spec, str) or not spec.strip():
        raise PositionSpecError(f"position spec must be a non-empty string, got {spec!r}")
    text = spec.strip().lower()
    if text == "all":
        return PositionSpec(text, whole_prompt=True, generation=True)
    if text == "prompt":
        return PositionSpec(text, whole_prompt=True)
    counts: dict[str, int] = {}
    for part in text.split("+"):
        m = _PART.fullmatch(part)
        if not m:
            raise PositionSpecError(
                f"invalid position spec {spec!r}: each part must look like p<k> or s<k> with k >= 1 "
                f"(e.g. 'p2+s2', 's4'), or the spec must be 'prompt' or 'all'"
            )
        side, k = m.group(1), int(m.group(2))
        if k < 1:
            raise PositionSpecError(f"invalid position spec {spec!r}: {side}{k} selects no token (k must be >= 1)")
        if side in counts:
            raise PositionSpecError(f"invalid position spec {spec!r}: '{side}' given twice")
        counts[side] = k
    return PositionSpec(text, prefix=counts.get("p", 0), suffix=counts.get("s", 0))


def as_spec(spec: str | PositionSpec) -> PositionSpec:
    return spec if isinstance(spec, PositionSpec) else parse_positions(spec)


def position_mask(
    spec: str | PositionSpec,
    prompt_starts: torch.Tensor,
    prompt_lens: torch.Tensor,
    seq_len: int,
    seq_ends: torch.Tensor | None = None,
) -> torch.Tensor:
    """Boolean [batch, seq_len] mask of intervened positions.

    Row b's prompt occupies [prompt_starts[b], prompt_starts[b] + prompt_lens[b]); for `all`,
    positions after the prompt up to seq_ends[b] (exclusive; default: the end) are included too.
    """
    spec = as_spec(spec)
    batch = prompt_starts.shape[0]
    mask = torch.zeros(batch, seq_len, dtype=torch.bool)
    for b in range(batch):
        start, plen = int(prompt_starts[b]), int(prompt_lens[b])
        idx = torch.tensor(spec.prompt_indices(plen), dtype=torch.long) + start
        mask[b, idx] = True
        if spec.generation:
            end = seq_len if seq_ends is None else int(seq_ends[b])
            mask[b, start + plen : end] = True
    return mask


def left_padded_mask(spec: str | PositionSpec, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mask of intervened prompt positions for a left-padded batch of prompts."""
    lens = attention_mask.sum(dim=1)
    starts = attention_mask.shape[1] - lens
    return position_mask(spec, starts, lens, attention_mask.shape[1]).to(attention_mask.device)


def template_ids(tokenizer, instruction: str | list[dict]) -> list[int]:
    """Token ids of the chat-templated prompt (user turn only, generation prompt added).

    The template already holds any BOS the model expects; nothing is added on top of it.
    """
    messages = [{"role": "user", "content": instruction}] if isinstance(instruction, str) else instruction
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    ids = out["input_ids"] if hasattr(out, "keys") else out
    ids = list(ids)
    bos = tokenizer.bos_token_id
    if bos is not None and len(ids) > 1 and ids[0] == bos and ids[1] == bos:
        ids = ids[1:]  # some templates plus tokenizer settings produce a doubled BOS
    return ids


def describe(tokenizer, instruction: str, spec: str | PositionSpec) -> list[tuple[int, int, str]]:
    """(index, token id, token text) for each intervened prompt position."""
    ids = template_ids(tokenizer, instruction)
    return [(i, ids[i], tokenizer.convert_ids_to_tokens(ids[i])) for i in as_spec(spec).prompt_indices(len(ids))]


def default_system_prompt(tokenizer) -> str | None:
    """The system prompt the chat template inserts when the conversation has none (SmolLM2's and Qwen's
    templates do), or None.

    Found by rendering twice: with a system turn holding a marker, the text is ``before + marker +
    after``; if the user-only rendering is ``before + D + after``, the template filled the system turn
    with D. Templates that refuse a system turn, or render without one, have none.
    """
    marker, user = "\x00PROSV-SYSTEM\x00", [{"role": "user", "content": "\x00PROSV-USER\x00"}]
    try:
        with_system = tokenizer.apply_chat_template([{"role": "system", "content": marker}, *user], tokenize=False)
        plain = tokenizer.apply_chat_template(user, tokenize=False)
    except Exception:  # a template may raise anything for a role it does not support
        return None
    before, _, after = with_system.partition(marker)
    if not (plain.startswith(before) and plain.endswith(after) and len(plain) >= len(before) + len(after)):
        return None
    return plain[len(before) : len(plain) - len(after)].strip() or None
