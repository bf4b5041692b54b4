"""`prosv plan`: job counts against Snakemake's own dry run, judge requests against a hand count,
tokens and price from the judge's settings, and the command's output and errors."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from prosv.cli import main
from prosv.judges.llm import SYSTEM_PROMPT, OpenAIJudge
from prosv.plan import (
    ACCELERATORS,
    CHARS_PER_TOKEN,
    DEFAULT_ACCELERATOR,
    DEFAULT_BANDWIDTH_EFFICIENCY,
    DEFAULT_MFU,
    KNOWN_SHAPES,
    TYPICAL_PROMPT_TOKENS,
    ModelDims,
    compute_section,
    count_compute,
    load_config,
    make_plan,
    model_dims,
)

REPO = Path(__file__).resolve().parents[1]
TEST_CONFIG = REPO / ".test" / "config" / "config.yaml"
PAPER_CONFIG = REPO / "config" / "paper" / "gemma-2-2b-it_L10.yaml"

# rules whose jobs hang on the location choice: a dry run before the locate checkpoint cannot list them,
# except the baselines' and those of a method whose location is fixed (FSSV when one layer is searched)
AFTER_CHOICE = {
    "train",
    "merge_vectors",
    "generate",
    "generate_grid",
    "merge_ratings",
    "merge_grid_ratings",
}
# the location search's rules, up to and including the checkpoint (its judge jobs rate ratings/locate/),
# and the data step's, which run before it
LOCATION_SEARCH = {
    "prepare_model",
    "prepare_concepts",
    "prepare_data",
    "merge_pairs",
    "train_locate",
    "generate_locate",
    "locate",
}


def dry_run(config: Path) -> str:
    """What `snakemake -n --configfile config` prints."""
    # the API judge's key is only checked to be set; a dry run sends nothing
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PROSV_JUDGE_API_KEY="unused")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run."""
    counts = {}
    for line in output.split("Job stats:")[-1].splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def job_outputs(output: str) -> list[tuple[str, list[str]]]:
    """(rule, output files) of every job a dry run lists, in its order (inputs before outputs)."""
    jobs = []
    for rule, body in re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):\n(.*?)(?=\n\[|\n\n|\Z)", output, re.M | re.S):
        files = re.search(r"^\s+output: (.*)$", body, re.M)
        jobs.append((rule, files.group(1).split(", ") if files else []))
    return jobs


def write_config(tmp_path: Path, base: Path = TEST_CONFIG, **changes) -> Path:
    """A copy of `base` with dotted keys replaced (None removes a key); results under `tmp_path`."""
    cfg = yaml.safe_load(base.read_text())
    cfg["results"] = str(tmp_path / "results")
    for dotted, value in changes.items():
        node = cfg
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path = tmp_path / f"config{len(list(tmp_path.glob('config*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("config", [TEST_CONFIG, REPO / "config" / "config.yaml", PAPER_CONFIG], ids=lambda p: p.stem)
def test_jobs_before_the_location_choice_match_a_dry_run(config, tmp_path):
    cfg = load_config(config)
    plan = make_plan(cfg)
    methods = cfg["methods"]
    # a method's jobs need no choice when its positions are its own and one layer is searched
    fixed = {m for m, spec in methods.items() if spec["positions"] != "located" and len(cfg["layers"]) == 1}
    posthoc = {m for m, spec in methods.items() if spec.get("posthoc_factor")}
    # every method has the same jobs per rule (the grid's: every posthoc method): the fixed ones' share
    # (not merge_vectors: its merged file is read by utility, robustness and the figures, after the choice)
    share = {rule: len(fixed) / len(methods) for rule in ("train", "generate")}
    share |= dict.fromkeys(("generate_grid", "merge_grid_ratings"), len(fixed & posthoc) / max(len(posthoc), 1))
    expected = {rule: n for rule, n in plan.jobs.items() if rule not in AFTER_CHOICE}
    expected |= {rule: round(plan.jobs[rule] * share[rule]) for rule in share if rule in plan.jobs}
    expected["judge"] -= sum(round(s.judge_jobs * (1 - share[s.rule])) for s in plan.judged if s.rule in share)
    # the baselines need no location: they are listed, and run while the location search trains
    expected["merge_ratings"] = len(fixed) + len(cfg["evaluate"]["baselines"])
    assert job_counts(dry_run(write_config(tmp_path, config))) == {rule: n for rule, n in expected.items() if n}


def test_every_job_past_the_location_choice_matches_a_dry_run(tmp_path):
    """With the location search's files in place (empty, and a choice at the first layer), Snakemake
    lists every job after the checkpoint too: the sharded main table included."""
    config = write_config(tmp_path, REPO / "config" / "config.yaml", concepts_per_job=3)  # 4 concepts: 2 shards
    cfg = load_config(config)
    for rule, files in job_outputs(dry_run(config)):
        if rule in LOCATION_SEARCH or (rule == "judge" and "/ratings/locate/" in files[0]):
            for name in files:  # one after another: every output newer than its inputs
                path = Path(name)
                path.parent.mkdir(parents=True, exist_ok=True)
                choice = {"layer": cfg["layers"][0], "positions": "p2+s2"}
                path.write_text(json.dumps(choice) if path.name == "choice.json" else "")
                time.sleep(0.01)
    plan = make_plan(cfg)
    expected = {rule: n for rule, n in plan.jobs.items() if rule not in LOCATION_SEARCH}
    expected["judge"] -= len(cfg["layers"]) * len(set(cfg["locate"]["positions"]))  # the location search's are done
    methods = len(cfg["methods"])
    assert expected["train"] == methods * 2 and expected["merge_vectors"] == methods  # sharded: the check bites
    assert job_counts(dry_run(config)) == expected


def test_utility_and_robustness_run_one_job_per_shard_in_a_dry_run(tmp_path):
    """Their first concepts in shards of concepts_per_job, each stage merged once, as the plan counts."""
    changes = {"concepts_per_job": 1, "utility.concepts": 3, "robustness.concepts": 2}
    config = write_config(tmp_path, REPO / "config" / "config.yaml", **changes)
    output = dry_run(config)
    counts = job_counts(output)
    assert counts["utility"] == 3 and counts["robustness"] == 2
    assert counts["merge_utility"] == counts["merge_robustness_ratings"] == 1
    shards = sorted(Path(f).name for rule, files in job_outputs(output) if rule == "utility" for f in files)
    assert shards == ["0.parquet", "1.parquet", "2.parquet"]
    plan = make_plan(load_config(config))
    for rule in ("utility", "robustness", "merge_utility", "merge_robustness_ratings"):
        assert plan.jobs[rule] == counts[rule], rule


def small_config(tmp_path: Path, **changes) -> dict:
    """Two methods (one `located`, one FSSV with the factor grid), one baseline, three evaluation and
    two development concepts, two instructions each: small enough to count by hand."""
    settings = {
        "layers": [5, 10],
        "data.dev_concepts": [0, 1],
        "data.eval_concepts": [4, 5, 6],
        "methods": {
            "prosv_lang": {"positions": "located", "loss": "lang"},
            "fssv_lang": {"positions": "all", "loss": "lang", "posthoc_factor": True},
        },
        "locate.positions": ["all", "p2+s2", "all"],  # a repeat is searched once
        "evaluate.instructions_per_concept": 2,
        "evaluate.factor_grid": [0.5, 1.0],
        "evaluate.baselines": ["unsteered"],
        "scaling": {
            "concepts": 5,
            "c_alpha": [1, 2],
            "eta_alpha": [0.1],
            "fixed_alpha": None,
            "sgd_c_alpha": [],
            "transfer": None,
        },
        "robustness": {"concepts": 2, "fssv_factors": [1.0, 0.5]},
        "task_steering.in_default": False,
    }
    return load_config(write_config(tmp_path, **{**settings, **changes}))


# by hand, for small_config: (stage, responses)
SMALL_RESPONSES = {
    # the .test config's writer: 5 concepts x 4 instructions x 2 attempts, + 4 hand-written exemplars each
    "training data (at most)": 5 * 4 * 2 + 5 * 4,
    "main table: learned factor": 2 * 3 * 2,  # methods x evaluation concepts x instructions
    "main table: factor grid": 1 * 3 * 2 * 2,  # ... x factors, for the one posthoc method
    "main table: baselines": 1 * 3 * 2,
    "location search": 2 * 2 * 2 * 2,  # layers x distinct placements x development concepts x instructions
    "scaling study": 3 * 2 * 2,  # cells (base + 2x1 grid) x development concepts (5 asked, 2 there) x instructions
    "robustness": (1 + 2) * 2 * 2,  # factors (located: 1; FSSV: 1.0 and 0.5) x concepts x instructions
}


def test_judge_requests_match_a_hand_count(tmp_path):
    plan = make_plan(small_config(tmp_path))
    assert {s.name: s.responses for s in plan.judged} == SMALL_RESPONSES
    assert plan.judge["requests"] == 3 * sum(SMALL_RESPONSES.values()) == 390  # one per response and axis
    # one judge job per generation file: 2 learned + 1 grid + 1 baseline + 2 layers x 2 placements
    # + scaling + robustness
    assert plan.jobs["judge"] == 10
    assert plan.jobs["train_locate"] == plan.jobs["generate_locate"] == 2 * 2
    assert "task_train" not in plan.jobs


def test_sharding_multiplies_jobs_but_not_requests(tmp_path):
    whole = make_plan(small_config(tmp_path))
    sharded = make_plan(small_config(tmp_path, concepts_per_job=1))  # three shards of one concept
    assert sharded.judge["requests"] == whole.judge["requests"]
    assert sharded.judge["input_tokens"] == whole.judge["input_tokens"]
    assert (whole.jobs["train"], sharded.jobs["train"]) == (2, 6)
    assert (whole.jobs["generate_grid"], sharded.jobs["generate_grid"]) == (1, 3)
    assert (whole.jobs["generate_baseline"], sharded.jobs["generate_baseline"]) == (1, 3)
    assert whole.jobs["merge_vectors"] == sharded.jobs["merge_vectors"] == 2
    assert whole.jobs["merge_ratings"] == sharded.jobs["merge_ratings"] == 2 + 1  # methods + baselines
    assert whole.jobs["merge_grid_ratings"] == sharded.jobs["merge_grid_ratings"] == 1
    # the robustness attack's 2 concepts: 2 shards of generation and judging, one merge
    assert (whole.jobs["robustness"], sharded.jobs["robustness"]) == (1, 2)
    assert whole.jobs["merge_robustness_ratings"] == sharded.jobs["merge_robustness_ratings"] == 1
    # main-table files x extra shards, and the attack's extra shard
    assert sharded.jobs["judge"] - whole.jobs["judge"] == (2 + 1 + 1) * (3 - 1) + 1


def test_the_paper_config_in_shards(tmp_path):
    """30 evaluation concepts in jobs of 7: five shards of each per-concept stage."""
    plan = make_plan(load_config(write_config(tmp_path, PAPER_CONFIG, concepts_per_job=7)))
    methods, posthoc, baselines, layers, placements = 4, 1, 2, 2, 9
    assert plan.jobs["train"] == plan.jobs["generate"] == methods * 5
    assert plan.jobs["generate_grid"] == posthoc * 5 and plan.jobs["generate_baseline"] == baselines * 5
    # utility's 10 concepts in 2 shards, robustness's 15 in 3 (each generated and judged per shard)
    assert plan.jobs["utility"] == 2 and plan.jobs["robustness"] == 3
    # + the location search's variants, scaling, robustness
    assert plan.jobs["judge"] == (methods + posthoc + baselines) * 5 + layers * placements + 1 + 3
    # 4 learned x 30 x 10; grid 30 x 10 x 14 factors (the schema's default grid); 2 baselines x 30 x 10
    responses = {s.name: s.responses for s in plan.judged}
    assert responses["main table: learned factor"] == 1200 and responses["main table: factor grid"] == 4200
    assert responses["main table: baselines"] == 600
    assert responses["location search"] == 2 * 9 * 3 * 10
    assert responses["scaling study"] == (1 + 6 * 5 + 1 + 2 + 2) * 3 * 10  # base, grid, fixed, 2 sgd, 2 transfer
    assert responses["robustness"] == (1 + 3 + 1 + 3) * 15 * 10


def test_tokens_follow_the_rubric_the_responses_and_max_tokens(tmp_path):
    plan = make_plan(small_config(tmp_path))
    requests, responses = plan.judge["requests"], plan.judge["requests"] // 3
    longer_answers = make_plan(small_config(tmp_path, **{"evaluate.max_new_tokens": 8 + 10}))
    assert longer_answers.judge["input_tokens"] - plan.judge["input_tokens"] == pytest.approx(requests * 10, abs=1)
    own_prompt = "x" * 400
    prompted = make_plan(small_config(tmp_path, **{"judge.system_prompt": own_prompt}))
    per_request = (len(own_prompt) - len(SYSTEM_PROMPT)) / CHARS_PER_TOKEN
    assert prompted.judge["input_tokens"] - plan.judge["input_tokens"] == pytest.approx(
        responses * 3 * per_request, abs=1
    )
    # the answer budget is the judge's own default unless the config sets it
    default = inspect.signature(OpenAIJudge.__init__).parameters["max_tokens"].default
    assert plan.judge["output_tokens"] == requests * default
    assert make_plan(small_config(tmp_path, **{"judge.max_tokens": 100})).judge["output_tokens"] == requests * 100


def test_price_is_the_tokens_at_the_rates_and_zero_for_the_offline_judge(tmp_path):
    api = {"judge": {"kind": "openai", "base_url": "http://localhost:1/v1", "model": "m"}}
    plan = make_plan(small_config(tmp_path, **api), price_per_million_input=2.0, price_per_million_output=8.0)
    expected = plan.judge["input_tokens"] * 2.0 / 1e6 + plan.judge["output_tokens"] * 8.0 / 1e6
    assert plan.price["total_usd"] == pytest.approx(expected) and expected > 0
    offline = make_plan(small_config(tmp_path), price_per_million_input=2.0, price_per_million_output=8.0)
    assert offline.price["total_usd"] == 0 and offline.judge["requests"] == plan.judge["requests"]


def test_the_command_prints_the_table_and_json(capsys):
    assert main(["plan", "--configfile", str(TEST_CONFIG)]) == 0
    out = capsys.readouterr().out
    plan = make_plan(load_config(TEST_CONFIG))
    for rule, n in plan.jobs.items():
        assert re.search(rf"^{rule}\s+{n}$", out, re.M), rule
    assert f"judge requests: {plan.judge['requests']:,}" in out and "price: $0" in out
    assert main(["plan", "--configfile", str(TEST_CONFIG), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["jobs"] == plan.jobs and data["judge"]["requests"] == plan.judge["requests"]


def test_a_missing_config_is_a_one_line_error(tmp_path):
    missing = tmp_path / "nope.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "prosv.cli", "plan", "--configfile", str(missing)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"prosv: error: {missing}: file not found"


@pytest.mark.parametrize(
    "change,message",
    [
        ({"evaluate.max_new_tokens": 0}, "config key 'evaluate.max_new_tokens'"),
        ({"robustness.concepts": 9}, "config key 'robustness.concepts'"),
        ({"model": None}, "'model' is a required property"),
    ],
)
def test_a_bad_config_names_the_key(tmp_path, capsys, change, message):
    path = write_config(tmp_path, **change)
    assert main(["plan", "--configfile", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"prosv: error: {path}: ")
    assert message in err and len(err.splitlines()) == 1


# --- model compute ----------------------------------------------------------------------------------


def test_the_known_gemma_shape_has_its_published_parameter_count():
    """Gemma-2-2B-it: 2,614,341,888 parameters with the (tied) embedding, counted here from the shape
    of its config.json, matrix by matrix."""
    d, ff, layers, vocab, q, kv = 2304, 9216, 26, 256000, 8 * 256, 4 * 256
    per_block = d * q + 2 * d * kv + q * d + 3 * d * ff + 4 * d  # q, k, v, o, gated MLP, four norms
    by_hand = vocab * d + layers * per_block + d  # embedding (= LM head), blocks, final norm
    assert by_hand == 2_614_341_888
    dims = KNOWN_SHAPES["google/gemma-2-2b-it"]
    assert dims.total_params == by_hand
    # a decode step reads the blocks and the tied head once: everything but the final norm, in bf16
    assert dims.decode_weight_bytes == 2 * (by_hand - d)


def test_the_embedded_model_shape_comes_from_its_config():
    from prosv.models import embedded_model_dir

    if not (embedded_model_dir("smollm2-135m") / "config.json").is_file():
        pytest.skip("the embedded model is not converted here")
    dims, source = model_dims("smollm2-135m")
    assert source == "config.json"
    # SmolLM2-135M: 30 blocks of width 576, 9 heads of 64 with 3 KV heads, MLP 1536, vocabulary 49152, tied
    per_block = 576 * 576 + 2 * 576 * 192 + 576 * 576 + 3 * 576 * 1536 + 2 * 576
    assert dims.total_params == 49152 * 576 + 30 * per_block + 576 == 134_515_008


# a small shape: the counts below do not depend on it, the FLOPs do
TINY = ModelDims(
    num_layers=12,
    hidden_size=64,
    intermediate_size=128,
    num_heads=4,
    num_kv_heads=2,
    head_dim=16,
    vocab_size=1000,
    tied_embeddings=True,
)


def stages_of(config) -> dict:
    return {s.name: s.total for s in count_compute(config, TINY)}


def test_tokens_of_a_small_config_match_a_hand_count(tmp_path):
    """small_config on the test config: 6 training pairs a concept (4 written + 4 exemplars, capped by
    train.max_examples = 6), responses of 16 tokens, prompts of TYPICAL_PROMPT_TOKENS, 1 epoch."""
    stages = stages_of(small_config(tmp_path, **{"layers": [5, 10]}))
    p, r, length = TYPICAL_PROMPT_TOKENS, 16, TYPICAL_PROMPT_TOKENS + 16
    main = stages["main table: training"]  # 2 lang methods x 3 concepts x 6 pairs, each once cached
    assert main.prefix_tokens == 2 * 18 * length
    assert main.forward_tokens == 2 * (18 + 18 * 1) * length  # the reference pass and one epoch
    assert main.backward_tokens == 2 * 18 * length
    assert main.head_positions == 2 * (18 + 18) * r
    # the location search: 2 variants (all, p2+s2) of 2 concepts, each its own job and prefix cache
    locate = stages["location search: training"]
    assert locate.prefix_tokens == 2 * 2 * 12 * length and locate.backward_tokens == 2 * 2 * 12 * length
    # generation: 3 concepts x 2 instructions = 6 prompts, one batch (batch_size 8), 8 new tokens
    learned = stages["main table: learned factor"]
    assert learned.prefill_tokens == 2 * 6 * p and learned.decoded_tokens == 2 * 6 * 8
    assert learned.decode_steps == 2 * (8 - 1)
    grid = stages["main table: factor grid"]  # one posthoc method, 2 factors, a generate() call each
    assert grid.decoded_tokens == 2 * 6 * 8 and grid.decode_steps == 2 * 7
    # the location search: a job per variant, 4 prompts each, one batch: 2 layers x 2 variants
    assert stages["location search: generation"].decode_steps == 2 * 2 * 7
    assert stages["robustness"].decoded_tokens == 3 * 2 * 2 * 8  # runs (1 + 2) x concepts x instructions


def test_doubling_max_new_tokens_doubles_the_decoded_tokens(tmp_path):
    short = stages_of(small_config(tmp_path))
    long = stages_of(small_config(tmp_path, **{"evaluate.max_new_tokens": 16}))
    for name, work in short.items():
        if name == "utility":  # its tasks have their own answer budgets
            assert long[name].decoded_tokens == work.decoded_tokens
        else:
            assert long[name].decoded_tokens == 2 * work.decoded_tokens, name
        assert long[name].compute_flops >= work.compute_flops
    assert sum(w.decoded_tokens for w in short.values()) > 0


def test_sharding_changes_the_hours_per_job_not_the_total(tmp_path):
    # one batch per concept (2 instructions, batch_size 2), so shards cut no batch in two
    aligned = {"evaluate.batch_size": 2}
    whole = compute_section(small_config(tmp_path, **aligned))
    sharded = compute_section(small_config(tmp_path, concepts_per_job=1, **aligned))
    by_name = {s["name"]: s for s in whole["stages"]}
    for stage in sharded["stages"]:
        before = by_name[stage["name"]]
        assert stage["gpu_hours"] == pytest.approx(before["gpu_hours"], rel=1e-9), stage["name"]
        assert stage["compute_flops"] == pytest.approx(before["compute_flops"], rel=1e-9)
    train = {s["name"]: s for s in sharded["stages"]}["main table: training"]
    assert (by_name["main table: training"]["jobs"], train["jobs"]) == (2, 6)
    assert train["max_hours_per_job"] == pytest.approx(by_name["main table: training"]["max_hours_per_job"] / 3)


def test_hours_follow_the_mfu_for_training_and_the_bandwidth_for_decoding():
    config = load_config(PAPER_CONFIG)
    base = {s["name"]: s for s in compute_section(config)["stages"]}
    slow = {s["name"]: s for s in compute_section(config, mfu=DEFAULT_MFU / 2)["stages"]}
    halved = compute_section(config, bandwidth_efficiency=DEFAULT_BANDWIDTH_EFFICIENCY / 2)
    narrow = {s["name"]: s for s in halved["stages"]}
    training, decoding = base["main table: training"], base["main table: learned factor"]
    assert slow["main table: training"]["gpu_hours"] == pytest.approx(2 * training["gpu_hours"])
    assert narrow["main table: training"]["gpu_hours"] == pytest.approx(training["gpu_hours"])
    # a decode step of Gemma-2-2B at batch 32 is bound by memory: half the bandwidth, (almost) twice the time
    chip = ACCELERATORS[DEFAULT_ACCELERATOR]
    decode_s = decoding["decode_bytes"] / (chip.bandwidth * DEFAULT_BANDWIDTH_EFFICIENCY)
    prefill_s = decoding["compute_flops"] / (chip.peak_flops * DEFAULT_MFU)
    assert decoding["gpu_hours"] * 3600 == pytest.approx(decode_s + prefill_s)
    assert narrow["main table: learned factor"]["gpu_hours"] * 3600 == pytest.approx(2 * decode_s + prefill_s)


def test_the_command_prints_the_compute_table_and_json(capsys):
    assert main(["plan", "--configfile", str(PAPER_CONFIG), "--accelerator", "h100", "--mfu", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "model compute on one NVIDIA H100 SXM (projection: MFU 0.3" in out
    assert re.search(r"^main table: training\s+4\s", out, re.M)
    assert main(["plan", "--configfile", str(PAPER_CONFIG), "--json"]) == 0
    compute = json.loads(capsys.readouterr().out)["compute"]
    assert compute["parameters"] == KNOWN_SHAPES["google/gemma-2-2b-it"].total_params
    assert compute["gpu_hours"] == pytest.approx(sum(s["gpu_hours"] for s in compute["stages"]))
    assert main(["plan", "--configfile", str(PAPER_CONFIG), "--mfu", "0"]) == 2
    assert "--mfu: must be in (0, 1]" in capsys.readouterr().err
