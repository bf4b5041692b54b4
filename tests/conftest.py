"""Shared fixtures: the embedded model (converted once per machine) and tiny random-weight models.

Tiny models use the embedded tokenizer and chat template with a 4-layer Llama built from a
transformers config, so interventions, caching and training are checked in milliseconds.
"""

from __future__ import annotations

import os

import pytest
import torch

import prosv  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads OpenMP)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedded_dir():
    from prosv.models import prepare_embedded_model

    return prepare_embedded_model("smollm2-135m")


@pytest.fixture(scope="session")
def tokenizer(embedded_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_dir)
    tok.padding_side = "left"
    return tok


def make_tiny_model(tokenizer, layers: int = 4, hidden: int = 64, seed: int = 0, init_range: float = 0.2):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=init_range,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    model.requires_grad_(False)
    return model


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    return make_tiny_model(tokenizer)


@pytest.fixture(scope="session")
def embedded(embedded_dir):
    from prosv.models import load_model

    return load_model("smollm2-135m", device="cpu")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tokenizer):
    """A tiny random-weight model saved as a local model folder, with the embedded tokenizer."""
    path = tmp_path_factory.mktemp("tiny")
    make_tiny_model(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
