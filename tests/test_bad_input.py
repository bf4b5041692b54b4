"""The catalogue of guarded mistakes: what a user can get wrong, and what prosv says instead of going on.

One test per mistake, grouped as in issue 15. The rule everywhere: bad input is one clear line that
names the file or key and the problem (`prosv: error: ...`, exit status 2, no traceback unless
`--debug`), and nothing already computed is replaced by the output of a failed or diverged run.
The position grammar's properties are in test_position_properties.py.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import make_tiny_model

from prosv.models import load_model
from prosv.training import Example, TrainConfig, TrainingError, train
from prosv.vectors import VectorFileError, load_vectors, save_vectors

REPO = Path(__file__).resolve().parents[1]
PAIRS = REPO / "tests" / "data" / "lighthouse_pairs.parquet"


def prosv(*args, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "prosv.cli", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def one_line_error(proc, *fragments: str) -> str:
    """The single `prosv: error:` line of a failed command, holding every fragment."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("prosv: error: ")]
    assert len(lines) == 1, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def tiny_folder(root: Path, tokenizer, *, layers: int = 4, hidden: int = 64, seed: int = 0) -> Path:
    make_tiny_model(tokenizer, layers=layers, hidden=hidden, seed=seed).save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory, tokenizer):
    """Four tiny models: the one vectors are trained on, another of the same shape, a narrower one
    and a shallower one."""
    root = tmp_path_factory.mktemp("models")
    return {
        "trained": tiny_folder(root / "trained", tokenizer),
        "same_width": tiny_folder(root / "same_width", tokenizer, seed=1),
        "narrow": tiny_folder(root / "narrow", tokenizer, hidden=32),
        "shallow": tiny_folder(root / "shallow", tokenizer, layers=2),
    }


def toy_pairs(n: int = 6) -> list[Example]:
    return [Example(f"Tell me fact {i}.", f"Owls hoot at night, fact {i}.") for i in range(n)]


@pytest.fixture(scope="module")
def vector_file(tiny_dirs, tmp_path_factory):
    """A vector trained on the `trained` tiny model at layer 3 (of 4)."""
    from prosv.jobs import save_training

    model, tokenizer = load_model(str(tiny_dirs["trained"]), device="cpu")
    result = train(model, tokenizer, 3, [toy_pairs()], TrainConfig(epochs=1, batch_size=3), progress=False)
    path = tmp_path_factory.mktemp("vectors") / "owls.safetensors"
    save_training(
        result,
        model,
        method="prosv_lang",
        split="eval",
        vectors=path,
        losses=path.with_suffix(".losses.parquet"),
        hyperparameters=result.config.to_dict(),
        seconds=1.0,
        concepts=["owls"],
    )
    return path


# ------------------------------------------------------------------------------------------------
# 1. training guards


def test_infinite_learning_rate_is_refused_and_the_good_file_kept(tmp_path, vector_file):
    out = tmp_path / "owls.safetensors"
    out.write_bytes(vector_file.read_bytes())
    proc = prosv("train", "--data", str(PAIRS), "--layer", "3", "--eta-alpha", "inf", "--out", str(out))
    one_line_error(proc, "eta_alpha=inf", "finite")
    assert out.read_bytes() == vector_file.read_bytes()


@pytest.mark.parametrize(
    "key,value",
    [
        ("eta_alpha", float("nan")),
        ("eta_v", float("inf")),
        ("eta_v", 0.0),
        ("c_alpha", -1.0),
        ("c_v", float("inf")),
        ("fixed_alpha", float("-inf")),
        ("clip_v", 0.0),
        ("epochs", 0),
        ("batch_size", 2.5),
        ("max_response_tokens", True),
    ],
)
def test_rates_inits_and_budgets_must_be_finite_and_in_range(key, value):
    with pytest.raises(ValueError, match=f"config methods.m: {key}="):
        TrainConfig.from_mapping({key: value}, where="config methods.m")


def test_a_non_finite_parameter_stops_the_concept_naming_it_and_the_step(tiny_model, tokenizer):
    cfg = TrainConfig(optimizer="sgd", eta_alpha=1e20, eta_v=1e20, epochs=2, batch_size=3)
    with pytest.raises(TrainingError, match=r"concept 'owls': v_norm is inf at step 0"):
        train(tiny_model, tokenizer, 1, [toy_pairs()], cfg, progress=False, concept_names=["owls"])


def test_a_rate_beyond_float32_is_a_training_error_not_a_crash(tiny_dirs, tmp_path):
    # Adam's step of 1e38 overflows inside torch; prosv names the concept and the step instead
    data = tmp_path / "pairs.parquet"
    pd.DataFrame(
        {"instruction": [e.instruction for e in toy_pairs()], "response": [e.response for e in toy_pairs()]}
    ).to_parquet(data)
    args = ["train", "--model", str(tiny_dirs["trained"]), "--data", str(data), "--layer", "1"]
    proc = prosv(*args, "--eta-alpha", "1e38", "--epochs", "1", "--out", str(tmp_path / "v.safetensors"))
    one_line_error(proc, "concept 'concept'", "optimizer step failed at step 0")
    assert not (tmp_path / "v.safetensors").exists()


def test_batch_to_batch_noise_is_not_divergence_and_a_runaway_is():
    from prosv.training.loop import DIVERGENCE_RATIO, _DivergenceWatch

    def flags(losses, unsteered, steps_per_epoch):
        watch = _DivergenceWatch(["c"], [steps_per_epoch], [len(losses)])
        rows = [{"step": s, "loss": x, "unsteered_loss": u} for s, (x, u) in enumerate(zip(losses, unsteered))]
        return [watch.update(0, row) for row in rows]

    # an easy first batch, then three hard ones and an easy one, each epoch; steering helps a little on
    # every batch: single steps reach 1.6x the first step, and that is no divergence
    batches = [1.0, 1.6, 1.6, 1.6, 0.9] * 4
    assert not any(flags([0.95 * u for u in batches], batches, 5))
    # two steps cannot tell a runaway from Adam's first step (the .test config trains two steps per run)
    assert not any(flags([3.8, 4.9], [3.8, 3.8], 2))
    # a run that starts far above the unsteered model (a large init) and comes down is not diverged either
    assert not any(flags([5.0, 4.0, 3.2, 2.9, 2.9, 2.9], [2.2] * 6, 3))
    # a runaway as at layer 20 with --eta-alpha 1e6 --eta-v 1e3: 1.3x the unsteered loss on every batch,
    # below the loss of its (hard) first batch
    unsteered = [3.3, 2.2, 2.1, 2.4, 2.2, 2.0, 2.0, 3.3, 2.6, 2.1]
    runaway = [3.3] + [1.3 * u for u in unsteered[1:]]
    got = flags(runaway, unsteered, 3)

    # reference: a step is flagged when its last three losses, against the unsteered losses of those
    # steps, are over the ratio and over the first step's
    def reference(losses):
        def over(s):
            ratio = sum(losses[s - 2 : s + 1]) / sum(unsteered[s - 2 : s + 1])
            return ratio > DIVERGENCE_RATIO and ratio > losses[0] / unsteered[0]

        return [s >= 3 and over(s) for s in range(len(losses))]

    assert got == reference(runaway) == [False] * 3 + [True] * 7
    # a run that runs away and comes back is flagged where it was over the limit only
    back = runaway[:6] + [0.9 * u for u in unsteered[6:]]
    assert flags(back, unsteered, 3) == reference(back) and reference(back)[-1] is False


@pytest.mark.slow
def test_a_diverging_run_is_reported_and_never_replaces_the_good_vector(embedded_dir, tmp_path):
    out = tmp_path / "v.safetensors"
    common = ["--threads", "1", "train", "--data", str(PAIRS), "--limit", "8", "--layer", "20", "--epochs", "2"]
    common += ["--batch-size", "4"]
    good = prosv(*common, "--out", str(out))
    assert good.returncode == 0, good.stderr[-2000:]
    before = out.read_bytes()
    bad = prosv(*common, "--eta-alpha", "1e6", "--eta-v", "1e3", "--out", str(out))
    line = one_line_error(bad, str(out), "not written", "concept 'concept' diverged: at step")
    assert "x the unsteered model's" in line and "WARNING" in bad.stderr  # the log says it as it happens
    assert out.read_bytes() == before


def test_save_training_refuses_a_run_that_ended_diverged(tiny_dirs, vector_file, tmp_path):
    from prosv.jobs import save_training

    model, tokenizer = load_model(str(tiny_dirs["trained"]), device="cpu")
    result = train(model, tokenizer, 3, [toy_pairs()], TrainConfig(epochs=2, batch_size=3), progress=False)
    vectors, losses = tmp_path / "v.safetensors", tmp_path / "v.losses.parquet"
    vectors.write_bytes(vector_file.read_bytes())
    args = dict(method="m", split="eval", vectors=vectors, losses=losses, hyperparameters={}, seconds=1.0)
    # as the watch marks a concept over the limit, here from step 1 to the end
    result.losses.loc[1:, "diverged"] = True
    result.extra["divergence"] = {"0": "concept 0 diverged: at step 3 its mean loss ..."}
    with pytest.raises(TrainingError, match="concept 0 diverged: at step 3 .*nothing written"):
        save_training(result, model, **args)
    assert vectors.read_bytes() == vector_file.read_bytes() and not losses.exists()
    # a run that ran away and came back under the limit is kept
    result.losses.loc[result.losses.index[-1], "diverged"] = False
    assert result.diverged == []
    save_training(result, model, **args)
    assert vectors.read_bytes() != vector_file.read_bytes() and pd.read_parquet(losses)["diverged"].sum() == 2


# ------------------------------------------------------------------------------------------------
# 2. vectors know their model


def test_a_vector_on_another_model_of_the_same_width_needs_an_explicit_override(tiny_dirs, vector_file):
    from prosv.vectors import VectorModelMismatch

    other, _ = load_model(str(tiny_dirs["same_width"]), device="cpu")
    with pytest.raises(VectorModelMismatch) as err:
        load_vectors(vector_file, other)
    message = str(err.value)
    assert str(vector_file) in message and "another model" in message and "--allow-other-model" in message
    assert f"trained for {tiny_dirs['trained'].resolve()} (width 64, 4 layers), layer 3" in message
    assert f"the loaded model is {tiny_dirs['same_width'].resolve()} (width 64, 4 layers)" in message
    assert load_vectors(vector_file, other, allow_other_model=True).layer == 3
    same, _ = load_model(str(tiny_dirs["trained"]), device="cpu")
    assert load_vectors(vector_file, same).metadata["model"] == str(tiny_dirs["trained"].resolve())


def test_generate_on_another_model_is_one_line_unless_allowed(tiny_dirs, vector_file):
    args = ["generate", "--vector", str(vector_file), "--model", str(tiny_dirs["same_width"]), "--max-new-tokens", "3"]
    one_line_error(prosv(*args, "Hi"), str(vector_file), "another model", "--allow-other-model")
    allowed = prosv(*args, "--allow-other-model", "Hi")
    assert allowed.returncode == 0 and "--- steered" in allowed.stdout, allowed.stderr[-2000:]


def test_a_vector_of_another_width_cannot_be_applied_even_when_allowed(tiny_dirs, vector_file):
    from prosv.vectors import VectorModelMismatch

    narrow, _ = load_model(str(tiny_dirs["narrow"]), device="cpu")
    with pytest.raises(
        VectorModelMismatch, match=r"\(width 64, 4 layers\), layer 3; .*\(width 32, 4 layers\).*widths differ"
    ):
        load_vectors(vector_file, narrow, allow_other_model=True)
    args = ["generate", "--vector", str(vector_file), "--model", str(tiny_dirs["narrow"]), "--allow-other-model"]
    one_line_error(prosv(*args, "Hi"), "widths differ", "width 32")


def test_a_vector_for_a_layer_the_model_lacks_says_both_depths(tiny_dirs, vector_file):
    from prosv.vectors import VectorModelMismatch

    shallow, _ = load_model(str(tiny_dirs["shallow"]), device="cpu")
    with pytest.raises(VectorModelMismatch, match=r"4 layers\), layer 3; the loaded model is .*2 layers\).*no layer 3"):
        load_vectors(vector_file, shallow, allow_other_model=True)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "nan", "foreign", "wrong width"])
def test_a_damaged_or_foreign_vector_file_is_named_with_its_problem(vector_file, tmp_path, damage):
    from safetensors.torch import save_file

    path = tmp_path / "v.safetensors"
    good = vector_file.read_bytes()
    meta = load_vectors(vector_file).metadata
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x93NUMPY not a safetensors file at all")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "foreign":
        save_file({"weight": torch.zeros(3)}, str(path))
    else:
        tensors = load_vectors(vector_file).module.state_tensors()
        if damage == "nan":
            tensors["v"][0, 0] = float("nan")
        else:
            tensors["v"] = tensors["v"][:, :32].contiguous()
        flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
        save_file(tensors, str(path), metadata=flat)
    expected = {
        "truncated": "truncated or corrupted",
        "garbage": "truncated or corrupted",
        "empty": "truncated or corrupted",
        "nan": "non-finite",
        "foreign": "not a prosv vector file",
        "wrong width": "metadata says width 64, the tensors have 32",
    }[damage]
    with pytest.raises(VectorFileError) as err:
        load_vectors(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_generate_with_a_truncated_vector_file_is_one_line(vector_file, tmp_path):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(vector_file.read_bytes()[:100])
    one_line_error(prosv("generate", "--vector", str(path), "Hi"), str(path), "truncated or corrupted")


# ------------------------------------------------------------------------------------------------
# 3. parse-time checks from the model itself


def _dry_run(tmp_path, **changes):
    from test_workflow import snakemake, write_config

    proc = snakemake("-n", "--configfile", str(write_config(tmp_path, **changes)), check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_an_infinite_rate_in_the_config_is_rejected_at_parse_time(tmp_path):
    status, output = _dry_run(tmp_path, **{"methods.prosv_lang.eta_alpha": float("inf")})
    assert status != 0 and "config methods.prosv_lang: eta_alpha=inf must be a finite number" in output


def test_a_factor_grid_with_one_instruction_per_concept_is_rejected_at_parse_time(tmp_path):
    """Caught before any model work: the grid's select/report split found it only at aggregation."""
    status, output = _dry_run(tmp_path, **{"evaluate.instructions_per_concept": 1})
    assert status != 0 and "config key 'evaluate.instructions_per_concept'" in output
    assert "needs at least 2 instructions per concept, got 1" in output


def test_a_writer_rating_off_the_judges_scale_is_rejected_at_parse_time(tmp_path):
    status, output = _dry_run(tmp_path, **{"data.writer": {"attempts": 2, "min_concept_rating": 3}})
    assert status != 0 and "min_concept_rating" in output and "3" in output


def test_a_layer_beyond_a_local_models_depth_is_rejected_at_parse_time(tiny_dirs, tmp_path):
    status, output = _dry_run(tmp_path, model=str(tiny_dirs["trained"]), layers=[20])
    assert status != 0
    assert "config key 'layers': layer 20 is out of range" in output and "4 decoder layers" in output


def test_a_missing_local_model_folder_is_named_as_missing(tmp_path):
    status, output = _dry_run(tmp_path, model=str(tmp_path / "no" / "such" / "model"))
    assert status != 0
    assert f"config key 'model': model folder '{tmp_path / 'no' / 'such' / 'model'}' does not exist" in output


def test_a_relative_folder_that_looks_like_a_hub_id_is_named_as_missing(tmp_path, monkeypatch):
    from prosv.models import resolve_model

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(KeyError, match="model folder 'models/tiny' does not exist"):
        resolve_model("models/tiny")
    assert resolve_model("someorg/tiny").location == "someorg/tiny"  # no local someorg/: a hub id


def test_a_cached_hub_models_depth_comes_from_its_cached_config(tmp_path):
    """A hub model in the Hugging Face cache (config only, no weights): its own config gives the depth."""
    from transformers import LlamaConfig

    snapshot = tmp_path / "hf" / "hub" / "models--someorg--tiny-chat" / "snapshots" / ("0" * 40)
    LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=6, num_attention_heads=4).save_pretrained(
        snapshot
    )
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    code = (
        "from prosv.models import model_shape; s = model_shape('someorg/tiny-chat'); print(s.num_layers, s.hidden_size)"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.stdout.split() == ["6", "64"], out.stderr[-2000:]


# ------------------------------------------------------------------------------------------------
# 4. command-line errors in one style


@pytest.mark.parametrize(
    "name,content,problem",
    [
        ("missing.parquet", None, "file not found"),
        ("empty.jsonl", "", "file is empty"),
        ("blank.jsonl", "\n  \n", "file is empty"),
        ("notes.jsonl", "these are my notes, not JSON\n", "not a readable jsonl file"),
        ("pairs.json", "{broken", "not a readable json file"),
        ("pairs.parquet", "PAR1 this is no parquet", "not a readable parquet file"),
        ("pairs.txt", "instruction,response", "unsupported file type"),
        ("pairs.csv", "question,answer\nq,a\n", "needs an 'instruction' column"),
    ],
)
def test_bad_training_data_is_one_line_naming_the_file(tmp_path, name, content, problem):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    proc = prosv("train", "--data", str(path), "--layer", "3", "--out", str(tmp_path / "v.safetensors"))
    one_line_error(proc, str(path), problem)


def test_a_model_that_is_not_here_is_one_line(tmp_path):
    proc = prosv("positions", "--model", "gemma-2-2b-it", "Hi", env={"HF_HOME": str(tmp_path)})
    one_line_error(proc, "gemma-2-2b-it", "not available here")


def test_debug_shows_the_traceback_instead(tmp_path):
    proc = prosv("--debug", "train", "--data", str(tmp_path / "missing.parquet"), "--layer", "3", "--out", "v")
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "prosv: error:" not in proc.stderr


def test_generate_json_holds_prompts_texts_vector_factor_and_seed(tiny_dirs, vector_file):
    from prosv.generation import Steering, generate

    prompts = ["Hi there", "Name a bird."]
    args = ["--vector", str(vector_file), "--factor", "0.5", "--seed", "7", "--temperature", "0.8"]
    proc = prosv("generate", *args, "--max-new-tokens", "5", "--json", *prompts)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert (report["vector"], report["factor"], report["seed"], report["concept"]) == (str(vector_file), 0.5, 7, "owls")
    assert [r["prompt"] for r in report["responses"]] == prompts
    # reference: the same generation in this process
    model, tokenizer = load_model(str(tiny_dirs["trained"]), device="cpu")
    vec = load_vectors(vector_file, model)
    steering = Steering(vec.module, vec.layer, vec.positions, rows=[0, 0, -1, -1], factor=0.5)
    outs = generate(model, tokenizer, prompts * 2, steering, max_new_tokens=5, temperature=0.8, seed=7)
    assert [r["steered"] for r in report["responses"]] == [o.text for o in outs[:2]]
    assert [r["unsteered"] for r in report["responses"]] == [o.text for o in outs[2:]]


# ------------------------------------------------------------------------------------------------
# 5. judge errors are visible


def test_judge_on_error_is_documented_and_checked_by_the_schema():
    import jsonschema
    import yaml

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    judge = schema["properties"]["judge"]
    jsonschema.validate({"kind": "openai", "on_error": "zero", "max_retries": 2}, judge)
    with pytest.raises(jsonschema.ValidationError, match="ignore"):
        jsonschema.validate({"kind": "openai", "on_error": "ignore"}, judge)
    with pytest.raises(jsonschema.ValidationError, match="on_eror"):  # a misspelt option, at parse time
        jsonschema.validate({"kind": "openai", "on_eror": "zero"}, judge)
    assert "`judge.on_error`" in (REPO / "config" / "README.md").read_text()


def test_a_judge_server_that_is_down_shows_in_every_table_and_the_summary(tmp_path):
    """The judge's server answers 503 to everything; with on_error: zero every rating is 0, and the
    ratings, the per-concept and main tables and SUMMARY.md all say how many were errors."""
    from test_judges import _Script, _serve
    from test_report import all_tables

    from prosv.judges import make_judge, save_ratings
    from prosv.report import tables as T
    from prosv.report.summary import write_summary

    server = _serve(_Script(fail_first=10**9))
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        judge = make_judge(
            {"kind": "openai", "base_url": url, "model": "m", "on_error": "zero", "max_retries": 0, "cache": False}
        )
        generations = pd.DataFrame(
            {
                "method": "prosv_lang",
                "concept_id": [0, 0, 1, 1],
                "concept": ["owls", "owls", "rain", "rain"],
                "instruction": ["a", "b", "c", "d"],
                "response": ["w", "x", "y", "z"],
            }
        )
        rated = judge.rate_dataframe(generations)
    finally:
        server.shutdown()
        server.server_close()
    assert list(rated["judge_errors"]) == [3] * 4 and list(rated["judge_parse_failures"]) == [0] * 4
    assert list(rated["judge_calls"]) == [3] * 4 and (rated["overall"] == 0).all()
    save_ratings(rated, tmp_path / "ratings.parquet", judge)
    concepts = T.build_concept_scores([pd.read_parquet(tmp_path / "ratings.parquet")])
    assert list(concepts["judge_errors"]) == [6, 6] and list(concepts["judge_calls"]) == [6, 6]
    main = T.build_main_table(concepts, n_boot=200)
    assert (main["judge_calls"].iloc[0], main["judge_errors"].iloc[0]) == (12, 12)

    tables, choice = all_tables()  # a complete run whose main table holds these ratings too
    healthy = tables["main"].assign(judge_calls=300, judge_errors=0, judge_parse_failures=3)
    tables["main"] = pd.concat([healthy, main], ignore_index=True)
    text = write_summary(tables, tmp_path / "SUMMARY.md", choice=choice, n_boot=200)
    assert "## Judge errors and parse failures" in text
    calls = int(tables["main"]["judge_calls"].sum())
    share = 100 * (12 + 3 * len(healthy)) / calls  # under 5% for the table: the failing row still flags it
    assert f"| main | {calls} | 12 | {3 * len(healthy)} | {share:.1f}% | prosv_lang factor_free |" in text
    assert "Warning: more than 5% of the judge's ratings in main" in text

    tables["main"] = healthy  # 1% parse failures: listed, not flagged
    text = write_summary(tables, tmp_path / "SUMMARY.md", choice=choice, n_boot=200)
    assert f"| main | {300 * len(healthy)} | 0 | {3 * len(healthy)} | 1.0% | - | - |" in text
    assert "Warning" not in text


def test_a_judge_answer_without_a_rating_is_a_parse_failure_not_an_error():
    from test_judges import ITEMS, _Script, _serve

    from prosv.judges import OpenAIJudge

    server = _serve(_Script())  # answers every fluency prompt without a rating
    try:
        judge = OpenAIJudge(
            "m", f"http://127.0.0.1:{server.server_address[1]}/v1", requests_per_minute=None, cache=False
        )
        rated = judge.rate_dataframe(pd.DataFrame(ITEMS, columns=["concept", "instruction", "response"]))
    finally:
        server.shutdown()
        server.server_close()
    assert list(rated["judge_parse_failures"]) == [1] * len(ITEMS) and list(rated["judge_errors"]) == [0] * len(ITEMS)
    assert judge.stats.parse_failures == len(ITEMS) and judge.stats.errors == 0


# ------------------------------------------------------------------------------------------------
# 6. files people share


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_vector_files_honour_the_umask(tmp_path, umask, mode):
    from prosv.interventions import SteeringVectors

    module = SteeringVectors(torch.tensor([1.0]), torch.ones(1, 8))
    old = os.umask(umask)
    try:
        path = save_vectors(
            tmp_path / "v.safetensors", module, model="m", layer=0, positions="all", loss="lang", hyperparameters={}
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_identical_runs_write_identical_vector_files(tiny_dirs, tmp_path):
    from prosv.jobs import save_training

    model, tokenizer = load_model(str(tiny_dirs["trained"]), device="cpu")
    paths = []
    for run, seconds in enumerate((1.0, 2.5)):  # the same run, timed differently
        result = train(model, tokenizer, 2, [toy_pairs()], TrainConfig(epochs=1, batch_size=3, seed=5), progress=False)
        path = tmp_path / f"run{run}.safetensors"
        save_training(
            result,
            model,
            method="m",
            split="eval",
            vectors=path,
            losses=tmp_path / f"run{run}.losses.parquet",
            hyperparameters={"seed": 5, "z": 1, "a": 2},
            seconds=seconds,
        )
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
