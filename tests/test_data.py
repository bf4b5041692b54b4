"""Tests for prosv.data on small files in the exact real formats. The hub is never contacted."""

from __future__ import annotations

import json
import socket
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from prosv import data as D

REPO_DATA = Path(__file__).resolve().parents[1] / "data"


# ------------------------------------------------------------------------------------------
# helpers


def write_jsonl(path: Path, records) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Offline everywhere: env flags set, and any socket connection fails loudly."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def concept_record(cid=0, **over):
    rec = {
        "concept_id": cid,
        "concept": f"concept number {cid}",
        "genre": "text",
        "split": "dev",
        "keywords": ["alpha", "beta"],
        "steering_instruction": "Talk about the concept.",
        "suppression_instruction": "Do not mention the concept.",
    }
    rec.update(over)
    return rec


@pytest.fixture
def embedded_dir(tmp_path):
    root = tmp_path / "data"
    write_jsonl(root / "concepts.jsonl", [concept_record(0), concept_record(1, genre="code", split="eval")])
    write_jsonl(
        root / "instructions" / "train.jsonl", [{"instruction_id": i, "instruction": f"train q {i}"} for i in range(4)]
    )
    write_jsonl(
        root / "instructions" / "eval.jsonl",
        [{"instruction_id": f"e{i}", "instruction": f"eval q {i}"} for i in range(12)],
    )
    write_jsonl(
        root / "concepts" / "exemplars.jsonl",
        [{"concept_id": c, "instruction": f"q{i}", "response": f"r{c}{i}"} for c in (0, 1) for i in range(3)],
    )
    write_jsonl(
        root / "utility" / "arithmetic.jsonl",
        [
            {"id": 0, "question": "2+3?", "answer": 5, "steps": 1},
            {"id": 1, "question": "(2+5)*6?", "answer": 42, "steps": 2},
        ],
    )
    write_jsonl(
        root / "utility" / "multiple_choice.jsonl",
        [
            {
                "id": "m1",
                "question": "Capital of France?",
                "choices": ["Rome", "Paris", "Oslo", "Bern"],
                "answer": "B",
                "subject": "geography",
            }
        ],
    )
    return root


# ------------------------------------------------------------------------------------------
# embedded readers


def test_load_embedded_valid(embedded_dir):
    out = D.load_embedded(embedded_dir)
    assert list(out["concepts"].columns[:7]) == [
        "concept_id",
        "concept",
        "genre",
        "split",
        "keywords",
        "steering_instruction",
        "suppression_instruction",
    ]
    assert out["concepts"]["concept_id"].dtype == "int64"
    assert out["concepts"]["keywords"].iloc[0] == ["alpha", "beta"]
    assert len(out["instructions_eval"]) == 12 and len(out["instructions_train"]) == 4
    assert out["arithmetic"]["answer"].tolist() == [5, 42] and out["arithmetic"]["steps"].tolist() == [1, 2]
    assert out["multiple_choice"]["choices"].iloc[0][1] == "Paris"
    assert D.read_concepts(embedded_dir / "concepts.jsonl", split="eval")["concept_id"].tolist() == [1]


@pytest.mark.parametrize(
    "record, needle",
    [
        ({k: v for k, v in concept_record().items() if k != "keywords"}, "missing key(s) ['keywords']"),
        (concept_record(concept_id="0"), "'concept_id' should be an integer"),
        (concept_record(genre="poetry"), "'genre' should be one of"),
        (concept_record(keywords="alpha"), "'keywords' should be a non-empty list"),
        (concept_record(concept_id=True), "'concept_id' should be an integer"),
    ],
)
def test_concepts_schema_errors_name_file_line_and_problem(tmp_path, record, needle):
    path = write_jsonl(tmp_path / "concepts.jsonl", [concept_record(5), record])
    with pytest.raises(D.DataValidationError) as err:
        D.read_concepts(path)
    msg = str(err.value)
    assert str(path) in msg and "line 2" in msg and needle in msg


def test_empty_file_and_blank_lines(tmp_path):
    path = write_jsonl(tmp_path / "eval.jsonl", ["", "   "])
    with pytest.raises(D.DataValidationError, match="empty"):
        D.read_instructions(path=path)
    assert str(path) in str(pytest.raises(D.DataValidationError, D.read_instructions, path=path).value)


def test_duplicate_ids(tmp_path):
    path = write_jsonl(
        tmp_path / "eval.jsonl", [{"instruction_id": 3, "instruction": "a"}, {"instruction_id": 3, "instruction": "b"}]
    )
    with pytest.raises(D.DataValidationError, match=r"(?s)duplicate instruction_id.*3 \(lines 1 and 2\)"):
        D.read_instructions(path=path)


def test_invalid_json_and_mixed_id_types(tmp_path):
    bad = write_jsonl(tmp_path / "a.jsonl", ['{"id": 1, "question": "q", "answer": 1, "steps": 1}', "{not json"])
    with pytest.raises(D.DataValidationError, match="line 2: not valid JSON"):
        D.read_arithmetic(bad)
    mixed = write_jsonl(
        tmp_path / "i.jsonl", [{"instruction_id": 1, "instruction": "a"}, {"instruction_id": "2", "instruction": "b"}]
    )
    with pytest.raises(D.DataValidationError, match="mixes types"):
        D.read_instructions(path=mixed)


def test_utility_schema_errors(tmp_path):
    arith = write_jsonl(tmp_path / "arith.jsonl", [{"id": 1, "question": "q", "answer": 2.5, "steps": 1}])
    with pytest.raises(D.DataValidationError, match="'answer' should be an integer"):
        D.read_arithmetic(arith)
    arith = write_jsonl(tmp_path / "arith2.jsonl", [{"id": 1, "question": "q", "answer": 2, "steps": "1+1=2"}])
    with pytest.raises(D.DataValidationError, match="'steps' should be a positive integer"):
        D.read_arithmetic(arith)
    mc = write_jsonl(
        tmp_path / "mc.jsonl", [{"id": 1, "question": "q", "choices": ["a", "b", "c"], "answer": "A", "subject": "s"}]
    )
    with pytest.raises(D.DataValidationError, match="exactly 4"):
        D.read_multiple_choice(mc)
    mc2 = write_jsonl(
        tmp_path / "mc2.jsonl", [{"id": 1, "question": "q", "choices": list("abcd"), "answer": "E", "subject": "s"}]
    )
    with pytest.raises(D.DataValidationError, match="'answer' should be one of"):
        D.read_multiple_choice(mc2)


def test_exemplar_concepts_must_exist(embedded_dir):
    write_jsonl(embedded_dir / "concepts" / "exemplars.jsonl", [{"concept_id": 9, "instruction": "q", "response": "r"}])
    with pytest.raises(D.DataValidationError, match=r"concept_id\(s\) \[9\]"):
        D.load_embedded(embedded_dir)


# ------------------------------------------------------------------------------------------
# AxBench


def axbench_train_frame(n_pos=72, concepts=(0, 1), n_neg=5) -> pd.DataFrame:
    rows = []
    for cid in concepts:
        for i in range(n_pos):
            rows.append(
                {
                    "input": f"instruction {cid}-{i}",
                    "output": f"answer about concept {cid} #{i}",
                    "output_concept": f"concept {cid} description",
                    "concept_genre": "text" if cid == 0 else "code",
                    "category": "positive",
                    "dataset_category": "instruction",
                    "concept_id": cid,
                }
            )
    for i in range(n_neg):
        rows.append(
            {
                "input": f"neg instruction {i}",
                "output": f"plain answer {i}",
                "output_concept": "EEEEE",
                "concept_genre": "text",
                "category": "negative",
                "dataset_category": "instruction",
                "concept_id": -1,
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture
def concept500_dir(tmp_path):
    folder = tmp_path / "concept500" / "prod_2b_l10_v1" / "generate"
    folder.mkdir(parents=True)
    axbench_train_frame().to_parquet(folder / "train_data.parquet", index=False)
    write_jsonl(
        folder / "metadata.jsonl",
        [
            {
                "concept_id": cid,
                "concept": f"meta concept {cid}",
                "ref": f"https://www.neuronpedia.org/gemma-2-2b/10-gemmascope-res-16k/{100 + cid}",
                "concept_genres_map": {f"meta concept {cid}": [genre]},
            }
            for cid, genre in ((0, "text"), (1, "code"))
        ],
    )
    return tmp_path / "concept500"


def test_concept500_tidy_frame(concept500_dir):
    df = D.load_axbench_concept500(concept500_dir, subset="2b_l10")
    assert tuple(df.columns) == D.TIDY_AXBENCH_COLUMNS
    assert len(df) == 2 * 72 + 5
    pos0 = D.concept_positives(df, 0, expected=D.AXBENCH_POSITIVES_PER_CONCEPT)
    assert len(pos0) == 72
    assert set(pos0["concept"]) == {"meta concept 0"}  # metadata wins over output_concept
    assert pos0["instruction"].iloc[3] == "instruction 0-3" and pos0["response"].iloc[3] == "answer about concept 0 #3"
    assert set(D.concept_positives(df, 1)["genre"]) == {"code"}
    neg = df[df["category"] == "negative"]
    assert (neg["concept_id"] == -1).all() and neg["concept"].isna().all()
    # the generate folder itself works too, and negatives can be dropped
    only_pos = D.load_axbench_concept500(concept500_dir / "prod_2b_l10_v1" / "generate", include_negatives=False)
    assert set(only_pos["category"]) == {"positive"}
    with pytest.raises(D.DataValidationError, match="expected 70"):
        D.concept_positives(df, 0, expected=70)
    with pytest.raises(KeyError):
        D.concept_positives(df, 7)


def test_concept500_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="subset"):
        D.load_axbench_concept500(tmp_path)


def test_axbench_hub_local_layout(tmp_path):
    f = tmp_path / "2b" / "l10" / "train" / "data.parquet"
    f.parent.mkdir(parents=True)
    frame = axbench_train_frame(n_pos=4)
    frame["concept_id"] = frame["concept_id"].astype(str)  # hub copies may store ids as text
    frame.to_parquet(f, index=False)
    df = D.load_axbench_hub(local_path=tmp_path)
    assert tuple(df.columns) == D.TIDY_AXBENCH_COLUMNS
    assert df["concept_id"].dtype == "int64"
    assert D.concept_positives(df, 1)["concept"].iloc[0] == "concept 1 description"
    assert df.loc[df["concept_id"] == 1, "genre"].iloc[0] == "code"
    assert len(D.load_axbench_hub(local_path=f)) == len(df)


def make_hf_cache(cache: Path, repo_id: str, files: dict[str, bytes]) -> None:
    """Lay out a Hugging Face hub cache entry by hand, as `hf download` would leave it."""
    repo_dir = cache / ("datasets--" + repo_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    for rel, content in files.items():
        p = repo_dir / "snapshots" / commit / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)


def test_axbench_hub_from_prepopulated_cache(tmp_path):
    buf = tmp_path / "x.parquet"
    axbench_train_frame(n_pos=3).to_parquet(buf, index=False)
    cache = tmp_path / "hfcache"
    make_hf_cache(cache, "pyvene/axbench-concept10", {"2b/l10/train/data.parquet": buf.read_bytes()})
    df = D.load_axbench_hub("pyvene/axbench-concept10", cache_dir=cache)
    assert len(D.concept_positives(df, 0)) == 3


def test_axbench_hub_offline_error(tmp_path):
    with pytest.raises(D.DatasetUnavailableError) as err:
        D.load_axbench_hub("pyvene/axbench-concept16k", model="2b", layer=20, cache_dir=tmp_path)
    msg = str(err.value)
    assert "pyvene/axbench-concept16k" in msg and "2b/l20/train/data.parquet" in msg
    assert "offline" in msg and "local_path=" in msg and "HF_HUB_OFFLINE=1" in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chained traceback


# ------------------------------------------------------------------------------------------
# contrastive pairs


def test_contrastive_reference_layout(tmp_path):
    folder = tmp_path / "prod_2b_l10_v1" / "generate"
    folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "concept_id": [0, 0, 1],
            "output_concept": ["c0", "c0", "c1"],
            "positive_input": ["p0", "p1", "p2"],
            "negative_input": ["n0", "n1", "n2"],
            "positive_output": ["with concept 0", "with concept 0b", "with concept 1"],
            "negative_output": ["neutral 0", "neutral 0b", "neutral 1"],
        }
    ).to_parquet(folder / "contrast_train_data.parquet", index=False)
    other = tmp_path / "prod_9b_l20_v1" / "generate"
    other.mkdir(parents=True)
    pd.DataFrame({"concept_id": [0], "instruction": ["x"], "chosen": ["y"], "rejected": ["z"]}).to_parquet(
        other / "contrast_train_data.parquet", index=False
    )
    with pytest.raises(D.DataValidationError, match="several folders"):
        D.load_contrastive_pairs(tmp_path)
    df = D.load_contrastive_pairs(tmp_path, subset="2b_l10")
    assert tuple(df.columns) == D.CONTRASTIVE_COLUMNS
    assert df["instruction"].tolist() == ["n0", "n1", "n2"]
    assert df["chosen"].iloc[2] == "with concept 1" and df["rejected"].iloc[2] == "neutral 1"
    assert df["concept"].tolist() == ["c0", "c0", "c1"]
    one = D.load_contrastive_pairs(tmp_path, subset="2b_l10", concept_id=0)
    assert len(one) == 2


def test_contrastive_generic_chat_layout(tmp_path):
    rows = [
        {
            "concept_id": 3,
            "prompt": [{"role": "user", "content": "Tell me about tea."}],
            "chosen": [{"role": "assistant", "content": "Tea, like a sonnet..."}],
            "rejected": [{"role": "assistant", "content": "Tea is a drink."}],
        }
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    meta = pd.DataFrame({"concept_id": [3], "concept": ["poetry"]})
    df = D.load_contrastive_pairs(path, metadata=meta)
    assert df.iloc[0].to_dict() == {
        "concept_id": 3,
        "concept": "poetry",
        "instruction": "Tell me about tea.",
        "chosen": "Tea, like a sonnet...",
        "rejected": "Tea is a drink.",
    }


def test_contrastive_bad_layout_and_offline(tmp_path):
    with pytest.raises(D.DataValidationError, match="unrecognised layout"):
        D.tidy_contrastive(pd.DataFrame({"concept_id": [1], "text": ["x"]}))
    with pytest.raises(D.DatasetUnavailableError, match="colored-dye/concept500-contrastive"):
        D.load_contrastive_pairs(cache_dir=tmp_path)


# ------------------------------------------------------------------------------------------
# AlpacaEval


def alpaca_records(n):
    return [
        {
            "dataset": "helpful_base",
            "instruction": f"Instruction number {i}?",
            "output": f"out {i}",
            "generator": "text_davinci_003",
        }
        for i in range(n)
    ]


def test_alpaca_eval_local_json_array_and_parquet(tmp_path):
    path = tmp_path / "alpaca_eval.json"
    path.write_text(json.dumps(alpaca_records(30), indent=4))
    df = D.load_alpaca_eval(path)
    assert len(df) == 30 and list(df.columns) == ["dataset", "instruction", "output", "generator"]
    assert df.index.equals(pd.RangeIndex(30))
    # same frame, hence same per-concept sample, as AxBench's pd.read_json(alpaca_eval.json)
    ref = pd.read_json(path)
    assert df.sample(10, random_state=7).index.equals(ref.sample(10, random_state=7).index)
    pq = tmp_path / "a.parquet"
    df.to_parquet(pq)
    assert D.load_alpaca_eval(pq)["instruction"].tolist() == df["instruction"].tolist()


def test_axbench_study_data_one_split_at_a_time_joins_to_the_whole(concept500_dir, tmp_path):
    """The workflow's data step, one job per split, then joined: the same pairs as one call over every
    concept; the concept table carries each split and the AlpacaEval instructions come as they load."""
    from prosv.data.prepare import join_pairs, prepare_pairs, prepare_study_data
    from prosv.files import write_parquet

    alpaca = tmp_path / "alpaca_eval.json"
    alpaca.write_text(json.dumps(alpaca_records(30)))
    cfg = {
        "source": "axbench",
        "axbench_path": str(concept500_dir),
        "axbench_subset": "2b_l10",
        "alpaca_eval_path": str(alpaca),
    }

    def no_model():
        raise AssertionError("the axbench source reads its pairs; no model is loaded")

    whole = prepare_study_data(cfg, [0, 1], [0], no_model)
    parts = [write_parquet(tmp_path / f"{cid}.parquet", prepare_pairs(cfg, [cid], no_model)) for cid in (0, 1)]
    joined = pd.read_parquet(join_pairs(parts, tmp_path / "pairs.parquet"))
    pd.testing.assert_frame_equal(joined, pd.read_parquet(write_parquet(tmp_path / "whole.parquet", whole.pairs)))
    assert joined.groupby("concept_id").size().to_dict() == {0: 72, 1: 72} and joined.neutral_response.isna().all()
    assert whole.concepts.set_index("concept_id").split.to_dict() == {0: "dev", 1: "eval"}
    assert whole.concepts.steering_instruction.str.contains("meta concept").all()
    assert whole.eval_instructions.instruction.tolist() == D.load_alpaca_eval(alpaca).instruction.tolist()


def test_embedded_concept_table_needs_no_model_and_names_a_missing_concept(embedded_dir):
    from prosv.data.prepare import prepare_concepts

    cfg = {"source": "embedded", "data_dir": str(embedded_dir)}
    concepts, instructions = prepare_concepts(cfg, [1, 0], [0])
    assert concepts.set_index("concept_id").split.to_dict() == {0: "dev", 1: "eval"}
    assert instructions.instruction.tolist() == [f"eval q {i}" for i in range(12)]
    with pytest.raises(ValueError, match=r"data.eval_concepts: concepts \[7\] are not in .*concepts.jsonl"):
        prepare_concepts(cfg, [0, 7], [0])


def test_alpaca_eval_bad_files(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps([{"prompt": "a"}]))
    with pytest.raises(D.DataValidationError, match=r"missing column\(s\) \['instruction'\]"):
        D.load_alpaca_eval(p)
    with pytest.raises(FileNotFoundError, match="tatsu-lab/alpaca_eval"):
        D.load_alpaca_eval(tmp_path / "nope.json")


def test_alpaca_eval_offline_error_and_cache(tmp_path):
    with pytest.raises(D.DatasetUnavailableError) as err:
        D.load_alpaca_eval(cache_dir=tmp_path / "empty")
    msg = str(err.value)
    assert "tatsu-lab/alpaca_eval" in msg and "load_alpaca_eval('path/to/alpaca_eval.json')" in msg
    cache = tmp_path / "hf"
    make_hf_cache(cache, "tatsu-lab/alpaca_eval", {"alpaca_eval.json": json.dumps(alpaca_records(805)).encode()})
    df = D.load_alpaca_eval(cache_dir=cache)
    assert len(df) == D.ALPACA_EVAL_SIZE


# ------------------------------------------------------------------------------------------
# tinyBenchmarks


def tiny_gsm8k_rows():
    return pd.DataFrame(
        {
            "question": [
                "Natalia sold clips to 48 friends in April, and half as many in May. How many altogether?",
                "Big number?",
            ],
            "answer": [
                "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72",
                "It is large.\n#### 1,234",
            ],
            "input_formatted": ["...", "..."],
        }
    )


def tiny_mmlu_rows():
    return pd.DataFrame(
        {
            "question": ["Which is a prime?", "2+2?"],
            "subject": ["elementary_mathematics", "elementary_mathematics"],
            "choices": [["4", "6", "7", "9"], ["3", "4", "5", "6"]],
            "answer": [2, 1],
            "input_formatted": ["...", "..."],
        }
    )


def test_tiny_gsm8k_normalised_like_arithmetic(tmp_path):
    folder = tmp_path / "tinyGSM8k" / "main"
    folder.mkdir(parents=True)
    tiny_gsm8k_rows().to_parquet(folder / "test-00000-of-00001.parquet", index=False)
    tiny_gsm8k_rows().iloc[:1].to_parquet(folder / "train-00000-of-00001.parquet", index=False)
    df = D.load_tiny_gsm8k(tmp_path / "tinyGSM8k")  # picks the test split file
    assert tuple(df.columns[:4]) == D.ARITHMETIC_COLUMNS and "solution" in df.columns
    assert df["answer"].tolist() == [72, 1234] and df["answer"].dtype == "int64"
    assert df["steps"].tolist() == [2, 1]
    assert df["solution"].iloc[0].endswith("72 clips.") and "####" not in df["solution"].iloc[0]
    assert df["id"].is_unique
    assert D.parse_gsm8k_answer("x\n#### -5") == (-5, "x")
    with pytest.raises(D.DataValidationError, match="####"):
        D.parse_gsm8k_answer("no separator 5")
    with pytest.raises(D.DataValidationError, match="not an integer"):
        D.parse_gsm8k_answer("x #### 2.5")


def test_tiny_mmlu_normalised_like_multiple_choice(tmp_path):
    path = tmp_path / "tinymmlu.jsonl"
    tiny_mmlu_rows().to_json(path, orient="records", lines=True)
    df = D.load_tiny_mmlu(path)
    assert tuple(df.columns) == D.MULTIPLE_CHOICE_COLUMNS
    assert df["answer"].tolist() == ["C", "B"]
    assert df["choices"].iloc[0] == ["4", "6", "7", "9"]
    # parquet round trip (choices come back as arrays) gives the same result
    pq = tmp_path / "t.parquet"
    tiny_mmlu_rows().to_parquet(pq)
    assert D.load_tiny_mmlu(pq)["choices"].iloc[1] == ["3", "4", "5", "6"]
    bad = tiny_mmlu_rows().assign(answer=[4, 0])
    with pytest.raises(D.DataValidationError, match="index 0-3"):
        D.normalize_tiny_mmlu(bad)


def test_tiny_offline_errors_without_datasets(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # behave as if `datasets` were not installed
    for loader, name in (
        (D.load_tiny_gsm8k, "tinyBenchmarks/tinyGSM8k"),
        (D.load_tiny_mmlu, "tinyBenchmarks/tinyMMLU"),
    ):
        with pytest.raises(D.DatasetUnavailableError) as err:
            loader(cache_dir=tmp_path)
        msg = str(err.value)
        assert name in msg and "offline" in msg and "path/to/" in msg


def test_tiny_uses_datasets_when_installed_and_reports_both_failures(tmp_path, monkeypatch):
    calls = []

    class FakeSplit:
        def to_pandas(self):
            return tiny_mmlu_rows()

    def load_dataset(repo, config, split, revision=None, cache_dir=None):
        calls.append((repo, config, split))
        if repo.endswith("tinyGSM8k"):
            raise ConnectionError("Couldn't reach the Hub (offline)")
        return FakeSplit()

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    df = D.load_tiny_mmlu(cache_dir=tmp_path)
    assert calls == [("tinyBenchmarks/tinyMMLU", "all", "test")]
    assert df["answer"].tolist() == ["C", "B"]
    with pytest.raises(D.DatasetUnavailableError) as err:
        D.load_tiny_gsm8k(cache_dir=tmp_path)
    assert "datasets: ConnectionError" in str(err.value) and "tinyBenchmarks/tinyGSM8k" in str(err.value)


# ------------------------------------------------------------------------------------------
# the real embedded files


@pytest.mark.skipif(
    not (REPO_DATA / "concepts.jsonl").is_file(), reason="data/ not written yet (embedded data files missing)"
)
def test_real_embedded_files_validate():
    out = D.load_embedded(REPO_DATA)
    concepts = out["concepts"]
    assert set(concepts["split"]) <= {"dev", "eval"} and set(concepts["genre"]) <= {"text", "code", "math"}
    assert (concepts["concept_id"] >= 0).all()  # used as the sampling seed
    assert len(out["instructions_eval"]) >= 10  # enough for 10 factor-free instructions per concept
    for cid in concepts["concept_id"]:
        assert (out["exemplars"]["concept_id"] == cid).any(), f"concept {cid} has no exemplars"
    assert out["multiple_choice"]["answer"].isin(list("ABCD")).all()
