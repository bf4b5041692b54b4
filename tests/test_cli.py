import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_tiny_model


def prosv(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "prosv.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tokenizer):
    path = tmp_path_factory.mktemp("tiny")
    make_tiny_model(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_positions_command_prints_template_tokens(embedded_dir):
    out = prosv("positions", "--spec", "p2+s2", "Write a haiku about rain.")
    assert out.returncode == 0, out.stderr
    assert "'<|im_start|>'" in out.stdout and "'system'" in out.stdout and "selects" in out.stdout
    assert len([line for line in out.stdout.splitlines() if line.startswith("  ")]) == 4


def test_bad_spec_is_a_clear_error(embedded_dir):
    out = prosv("positions", "--spec", "p0", "Hi")
    assert out.returncode == 2 and "p0" in out.stderr and "Traceback" not in out.stderr


def test_train_then_generate(tiny_dir, tmp_path):
    pairs = pd.DataFrame(
        {
            "concept": ["owls"] * 8 + ["cats"] * 2,
            "instruction": [f"Tell me fact {i}." for i in range(10)],
            "response": [f"Owls hoot at night, fact {i}." for i in range(10)],
        }
    )
    pairs.to_parquet(tmp_path / "pairs.parquet")
    vec = tmp_path / "owls.safetensors"
    out = prosv(
        "train",
        "--model",
        str(tiny_dir),
        "--data",
        str(tmp_path / "pairs.parquet"),
        "--concept",
        "owls",
        "--layer",
        "1",
        "--epochs",
        "3",
        "--batch-size",
        "3",
        "--eta-alpha",
        "1",
        "--holdout",
        "0.25",
        "--out",
        str(vec),
        "--losses",
        str(tmp_path / "losses.parquet"),
    )
    assert out.returncode == 0, out.stderr
    assert "trained on 6 pairs" in out.stdout and "held-out response loss on 2 pairs" in out.stdout
    assert len(pd.read_parquet(tmp_path / "losses.parquet")) == 3 * 2
    gen = prosv("generate", "--model", str(tiny_dir), "--vector", str(vec), "--max-new-tokens", "4", "Hello there")
    assert gen.returncode == 0, gen.stderr
    assert "--- steered (sv at L1 p2+s2" in gen.stdout and "--- unsteered:" in gen.stdout
    missing = prosv(
        "train",
        "--model",
        str(tiny_dir),
        "--data",
        str(tmp_path / "pairs.parquet"),
        "--concept",
        "dogs",
        "--layer",
        "1",
        "--out",
        str(tmp_path / "x.safetensors"),
    )
    assert missing.returncode != 0 and "no training pairs" in missing.stderr


@pytest.mark.slow
def test_train_on_the_embedded_model_uses_its_recommended_rates(embedded_dir, tmp_path):
    """Without options, `prosv train` takes the embedded model's recommended settings, not the
    library defaults (the paper's Gemma-2-2B rates); an option given on the command line wins."""
    import json

    from prosv.models import recommended_hyperparameters
    from prosv.training import TrainConfig
    from prosv.vectors import load_vectors

    data = Path(__file__).parent / "data" / "lighthouse_pairs.parquet"
    out = tmp_path / "v.safetensors"
    run = prosv("train", "--data", str(data), "--limit", "4", "--layer", "3", "--epochs", "1", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "recommended for smollm2-135m" in run.stdout and "epochs=1 from the command line" in run.stdout
    recorded = load_vectors(out).metadata["hyperparameters"]
    recommended = recommended_hyperparameters("smollm2-135m", "p2+s2", "lang")
    assert recommended and recommended != {k: getattr(TrainConfig(), k) for k in recommended}
    for key, value in recommended.items():
        assert recorded[key] == (1 if key == "epochs" else value), (key, json.dumps(recorded))
