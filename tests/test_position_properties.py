"""Property tests of the position grammar and its resolver, against a reference written here.

The reference reads a spec with one regular expression and selects positions as a set (the first p
and the last s tokens of the prompt); the code under test parses part by part and builds index lists
and batch masks. Any valid spec on any prompt length and padding must give in-range, unique positions
that never touch padding; any other string must be rejected with the spec named.
"""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prosv.positions import PositionSpecError, left_padded_mask, parse_positions, position_mask

# the grammar, as one expression: 'all', 'prompt', or one or two parts p<k> / s<k>, ASCII digits,
# case-insensitive, blanks around parts and around the whole spec allowed
_GRAMMAR = re.compile(r"(?:(all)|(prompt)|\s*([ps])([0-9]+)\s*(?:\+\s*([ps])([0-9]+)\s*)?)", re.ASCII)


def reference(spec: str):
    """(prefix, suffix, whole prompt, generation) for a valid spec, else None."""
    m = _GRAMMAR.fullmatch(spec.strip().lower())
    if m is None:
        return None
    if m.group(1):
        return 0, 0, True, True
    if m.group(2):
        return 0, 0, True, False
    parts = [(m.group(3), int(m.group(4)))] + ([(m.group(5), int(m.group(6)))] if m.group(5) else [])
    sides = [side for side, _ in parts]
    if len(set(sides)) != len(sides) or any(k < 1 for _, k in parts):
        return None
    counts = dict(parts)
    return counts.get("p", 0), counts.get("s", 0), False, False


def reference_positions(ref, n: int) -> set[int]:
    prefix, suffix, whole, _ = ref
    if whole:
        return set(range(n))
    return set(range(min(prefix, n))) | set(range(max(n - suffix, 0), n))


def _cased(word: str):
    return st.tuples(*[st.sampled_from([c.lower(), c.upper()]) for c in word]).map("".join)


_blank = st.sampled_from(["", " ", "  ", "\t"])
_part = st.tuples(_blank, _cased("p") | _cased("s"), st.integers(1, 600), _blank).map(
    lambda t: f"{t[0]}{t[1]}{t[2]}{t[3]}"
)
valid_specs = st.one_of(
    _cased("all"),
    _cased("prompt"),
    _part,
    st.tuples(_part, _part).filter(lambda t: t[0].strip()[0].lower() != t[1].strip()[0].lower()).map("+".join),
).flatmap(lambda s: st.tuples(_blank, _blank).map(lambda b: f"{b[0]}{s}{b[1]}"))
# strings near the grammar (its own letters, digits and signs) besides arbitrary text
near_misses = st.text(alphabet="psPS+-0123456789 allpromptx.\t", max_size=12)


@settings(max_examples=400, deadline=None)
@given(spec=valid_specs, n=st.integers(1, 700))
def test_valid_spec_selects_in_range_unique_positions(spec, n):
    ref = reference(spec)
    assert ref is not None, spec
    parsed = parse_positions(spec)
    assert (parsed.prefix, parsed.suffix, parsed.whole_prompt, parsed.generation) == ref
    got = parsed.prompt_indices(n)
    assert len(got) == len(set(got)), "no position twice"
    assert all(0 <= i < n for i in got)
    assert got == sorted(reference_positions(ref, n))


@settings(max_examples=200, deadline=None)
@given(
    spec=valid_specs,
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    extra_pad=st.integers(0, 5),
)
def test_left_padded_batch_never_touches_padding(spec, lengths, extra_pad):
    width = max(lengths) + extra_pad
    attention = torch.zeros(len(lengths), width, dtype=torch.long)
    for b, n in enumerate(lengths):
        attention[b, width - n :] = 1
    mask = left_padded_mask(spec, attention)
    assert not (mask & (attention == 0)).any(), "padding is never edited"
    ref = reference(spec)
    for b, n in enumerate(lengths):
        pad = width - n
        assert set(mask[b].nonzero().flatten().tolist()) == {pad + i for i in reference_positions(ref, n)}


@settings(max_examples=200, deadline=None)
@given(
    spec=valid_specs,
    rows=st.lists(st.tuples(st.integers(0, 6), st.integers(1, 20), st.integers(0, 15), st.integers(0, 6)), min_size=1),
)
def test_generation_steps_stay_between_prompt_and_row_end(spec, rows):
    """Rows of (left padding, prompt length, response length, right padding): prompt-only specs edit
    prompt tokens only; `all` also every response token, never the right padding."""
    width = max(left + n + resp + right for left, n, resp, right in rows)
    starts = torch.tensor([left for left, _, _, _ in rows])
    lens = torch.tensor([n for _, n, _, _ in rows])
    ends = torch.tensor([left + n + resp for left, n, resp, _ in rows])
    mask = position_mask(spec, starts, lens, width, ends)
    ref = reference(spec)
    for b, (left, n, resp, _) in enumerate(rows):
        expected = {left + i for i in reference_positions(ref, n)}
        if ref[3]:
            expected |= set(range(left + n, left + n + resp))
        assert set(mask[b].nonzero().flatten().tolist()) == expected


@settings(max_examples=600, deadline=None)
@given(spec=st.one_of(near_misses, st.text(max_size=10)))
def test_any_other_string_is_rejected_with_the_spec_named(spec):
    ref = reference(spec)
    if ref is not None:
        parsed = parse_positions(spec)
        assert (parsed.prefix, parsed.suffix, parsed.whole_prompt, parsed.generation) == ref
        return
    with pytest.raises(PositionSpecError) as err:
        parse_positions(spec)
    assert repr(spec) in str(err.value)


@pytest.mark.parametrize("spec", ["p\u0662", "s\u0663+p1", "p2+s\uff12"])
def test_digits_of_other_scripts_are_rejected(spec):
    # Arabic-Indic and full-width digits: int() reads them, the grammar does not
    with pytest.raises(PositionSpecError, match=re.escape(repr(spec))):
        parse_positions(spec)
