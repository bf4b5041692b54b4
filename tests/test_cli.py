import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


def prosv(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "prosv.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_positions_command_prints_template_tokens(embedded_dir):
    out = prosv("positions", "--spec", "p2+s2", "Write a haiku about rain.")
    assert out.returncode == 0, out.stderr
    assert "'<|im_start|>'" in out.stdout and "'system'" in out.stdout and "selects" in out.stdout
    assert len([line for line in out.stdout.splitlines() if line.startswith("  ") and line.split()[0].isdigit()]) == 4


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
    assert "--- steered (sv: sv at L1 p2+s2" in gen.stdout and "--- unsteered:" in gen.stdout
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


def test_train_at_every_layer_then_generate(tiny_dir, tmp_path):
    from prosv.generation import Steering, generate
    from prosv.interventions import LayeredSteering
    from prosv.models import load_model
    from prosv.vectors import load_vectors

    pairs = pd.DataFrame({"instruction": [f"Fact {i}?" for i in range(6)], "response": ["Owls hoot."] * 6})
    pairs.to_parquet(tmp_path / "pairs.parquet")
    vec = tmp_path / "every.safetensors"
    args = ["--model", str(tiny_dir), "--data", str(tmp_path / "pairs.parquet"), "--epochs", "1", "--out", str(vec)]
    out = prosv("train", *args, "--layer", "all", "--c-alpha", "0.5")
    assert out.returncode == 0, out.stderr
    loaded = load_vectors(vec)
    assert isinstance(loaded.module, LayeredSteering) and loaded.layers == (0, 1, 2, 3)
    gen = prosv("generate", "--model", str(tiny_dir), "--vector", str(vec), "--max-new-tokens", "4", "Hi")
    assert gen.returncode == 0 and "at L0-3 p2+s2" in gen.stdout, gen.stderr
    model, tokenizer = load_model(str(tiny_dir))
    want = generate(model, tokenizer, ["Hi"], Steering(loaded.module, loaded.layer, "p2+s2", rows=[0]), 4)[0].text
    assert gen.stdout.split("--- steered", 1)[1].split("\n", 1)[1].startswith(want.strip())
    bad = prosv("train", *args, "--layer", "1,9")
    assert bad.returncode == 2 and "--layer 1,9: out of range" in bad.stderr


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


def _actions(parser, path=()):
    """(command path, action) for every option and argument of every command and subcommand."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, (*path, name))
        elif not isinstance(action, argparse._HelpAction):
            yield path, action, parser


def test_every_option_has_help_shows_its_default_and_every_command_has_examples():
    from prosv.cli import build_parser

    seen = set()
    for path, action, parser in _actions(build_parser()):
        where = " ".join(path) + " " + (action.option_strings[0] if action.option_strings else action.dest)
        assert action.help, f"{where}: no help text"
        text = parser.format_help()
        if action.default not in (None, False) and action.option_strings and not action.required:
            flat = "".join(text.split())  # argparse wraps long defaults (at a hyphen too)
            shown = "default:" in action.help or f"(default:{action.default})".replace(" ", "") in flat
            assert shown, f"{where}: default {action.default!r} not shown"
        seen.add(path)
    from prosv.cli import build_parser as again

    root = again()
    for path in seen:
        parser = root
        for name in path:
            parser = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)).choices[
                name
            ]
        epilog = parser.epilog or ""
        assert epilog.startswith("examples") and "prosv " + " ".join(path[:1]) in epilog, (
            f"{' '.join(path) or 'prosv'}: no examples"
        )
    assert {("train",), ("generate",), ("positions",), ("judge", "rate")} <= seen


def test_positions_shows_text_and_says_the_template_adds_a_system_prompt(embedded_dir, tokenizer):
    out = prosv("positions", "--spec", "p2+s2", "Write a haiku about rain.")
    assert out.returncode == 0, out.stderr
    # SmolLM2's template puts a system turn before the user's: independently, the templated text holds
    # a system turn the user never wrote
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    assert "<|im_start|>system\n" in text
    default = text.split("<|im_start|>system\n", 1)[1].split("<|im_end|>", 1)[0]
    assert f"inserts a default system prompt before the user turn: {default!r}" in out.stdout
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith("  ") and line.split()[0].isdigit()]
    assert len(rows) == 4
    for _, token_id, *_ in rows:
        assert repr(tokenizer.decode([int(token_id)])) in out.stdout
    assert "text: '<|im_start|>system\\n" in out.stdout


def test_arguments_are_checked_before_the_model_loads(tmp_path, tiny_dir):
    empty = tmp_path / "models"  # loading the embedded model would convert it here
    empty.mkdir()
    train = prosv(
        "--models-root", str(empty), "train", "--data", str(tmp_path / "none.parquet"), "--layer", "1", "--out", "v.st"
    )
    assert train.returncode == 2 and "--data" in train.stderr and "not found" in train.stderr
    pairs = tmp_path / "p.parquet"
    pd.DataFrame({"instruction": ["a"], "response": ["b"]}).to_parquet(pairs)
    layer = prosv("--models-root", str(empty), "train", "--data", str(pairs), "--layer", "99", "--out", "v.st")
    assert layer.returncode == 2 and "--layer 99: out of range for smollm2-135m (30 decoder layers" in layer.stderr
    spec = prosv("--models-root", str(empty), "positions", "--spec", "q3", "Hi")
    assert spec.returncode == 2 and "q3" in spec.stderr
    from prosv.interventions import SteeringVectors
    from prosv.vectors import save_vectors

    vec = save_vectors(
        tmp_path / "v.safetensors",
        SteeringVectors.initialise(1, 576, c_alpha=1.0, c_v=1.0, seed=0),
        model="HuggingFaceTB/SmolLM2-135M-Instruct",
        layer=3,
        positions="p2+s2",
        loss="lang",
        hyperparameters={},
        concepts=[4],
    )
    gen = prosv("--models-root", str(empty), "generate", "--vector", str(vec), "--concept", "owls", "Hi")
    assert gen.returncode == 2 and "--concept 'owls': not in" in gen.stderr and "concepts: 4" in gen.stderr
    assert not list(empty.iterdir()), "no model was converted or loaded for a bad argument"


def test_concepts_are_found_by_name_id_or_position(tmp_path):
    from prosv.cli import UserError, concept_index
    from prosv.interventions import SteeringVectors
    from prosv.vectors import load_vectors, save_vectors

    path = save_vectors(
        tmp_path / "v.safetensors",
        SteeringVectors.initialise(3, 8, c_alpha=1.0, c_v=1.0, seed=0),
        model="org/tiny",
        layer=1,
        positions="p2+s2",
        loss="lang",
        hyperparameters={},
        concepts=[4, 9, 12],
        extra={"concept_names": ["owls", "cats", "rain"]},
    )
    vec = load_vectors(path)
    assert [concept_index(vec, c) for c in ("cats", "9", "2", None)] == [1, 1, 2, 0]
    with pytest.raises(UserError, match="concept_names: owls, cats, rain"):
        concept_index(vec, "dogs")


def test_train_by_id_records_the_name_and_generate_names_what_it_applied(tiny_dir, tmp_path):
    from prosv.vectors import load_vectors

    pairs = pd.DataFrame(
        {
            "concept_id": [3] * 6 + [5] * 2,
            "concept": ["owls"] * 6 + ["cats"] * 2,
            "instruction": [f"Tell me fact {i}." for i in range(8)],
            "response": [f"Owls hoot at night, fact {i}." for i in range(8)],
        }
    )
    pairs.to_parquet(tmp_path / "pairs.parquet")
    vec = tmp_path / "owls.safetensors"
    args = ["--data", str(tmp_path / "pairs.parquet"), "--layer", "1", "--epochs", "1", "--out", str(vec)]
    out = prosv("train", "--model", str(tiny_dir), "--concept", "3", "--method", "owl_run", *args)
    assert out.returncode == 0, out.stderr
    meta = load_vectors(vec).metadata
    assert meta["concepts"] == ["owls"] and meta["concept_ids"] == "[3]"
    for concept in ("owls", "3"):
        gen = prosv(
            "generate",
            "--model",
            str(tiny_dir),
            "--vector",
            str(vec),
            "--concept",
            concept,
            "--max-new-tokens",
            "2",
            "Hi",
        )
        assert gen.returncode == 0, gen.stderr
        assert "steering: method owl_run (sv, loss lang) at layer 1, positions p2+s2, concept 'owls'" in gen.stdout


@pytest.mark.slow
def test_generate_from_another_directory_reuses_the_converted_model(embedded_dir, tmp_path):
    """The models cache is found from any working directory: no second conversion, no ./resources."""
    import os

    from prosv.interventions import SteeringVectors
    from prosv.vectors import save_vectors

    vec = save_vectors(
        tmp_path / "v.safetensors",
        SteeringVectors.initialise(1, 576, c_alpha=1.0, c_v=1.0, seed=0),
        model="HuggingFaceTB/SmolLM2-135M-Instruct",
        layer=3,
        positions="p2+s2",
        loss="lang",
        hyperparameters={},
        concepts=["owls"],
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = embedded_dir.parent
    before = {p.name: p.stat().st_mtime_ns for p in [embedded_dir, *embedded_dir.iterdir()]}
    siblings = sorted(p.name for p in root.iterdir())
    for env in ({}, {"PROSV_MODELS_ROOT": str(root)}):  # the default cache, then the variable naming it
        if not env and root != Path.home() / ".cache" / "prosv" / "models":
            continue  # the suite runs with another cache: only the variable can point at it
        run = subprocess.run(
            [sys.executable, "-m", "prosv.cli", "generate", "--vector", str(vec), "--max-new-tokens", "3", "Hi"],
            capture_output=True,
            text=True,
            cwd=elsewhere,
            timeout=600,
            env={**{k: v for k, v in os.environ.items() if k != "PROSV_MODELS_ROOT"}, **env},
        )
        assert run.returncode == 0, run.stderr
        assert "steering: method sv" in run.stdout and "--- unsteered:" in run.stdout
    assert list(elsewhere.iterdir()) == [], "nothing (no resources/, no model) is written to the working directory"
    assert {p.name: p.stat().st_mtime_ns for p in [embedded_dir, *embedded_dir.iterdir()]} == before
    assert sorted(p.name for p in root.iterdir()) == siblings, "no second conversion next to the first"
