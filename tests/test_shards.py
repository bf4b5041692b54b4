"""Shards (config key concepts_per_job): how a split is cut, and merges that equal one job's files."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from prosv.interventions import LayeredSteering, LoReFT, SteeringVectors
from prosv.jobs import concept_shards, merge_training
from prosv.judges import merge_ratings, save_ratings
from prosv.vectors import VectorFileError, load_vectors, merge_vector_files, save_vectors


def test_concept_shards_cut_in_order():
    assert concept_shards([4, 5, 6, 9, 12], None) == [[4, 5, 6, 9, 12]]
    assert concept_shards([4, 5, 6, 9, 12], 2) == [[4, 5], [6, 9], [12]]
    assert concept_shards([4, 5], 10) == [[4, 5]]
    with pytest.raises(ValueError, match="concepts_per_job"):
        concept_shards([1], 0)


def _module(kind: str, rows: torch.Tensor):
    """A module whose concept k is row k of ``rows`` (so a merge's order is visible in its tensors)."""
    k, n = rows.shape
    if kind == "sv":
        return SteeringVectors(rows[:, 0] + 1.0, rows)
    if kind == "layered":
        return LayeredSteering((3, 5), [SteeringVectors(rows[:, 0] + i, rows * (i + 1)) for i in range(2)])
    return LoReFT(k, n, rank=2, seed=int(rows[0, 0].abs() * 100))


def _save(path, module, concepts, layer=3):
    return save_vectors(
        path,
        module,
        model="tiny",
        layer=layer,
        positions="p2+s2",
        loss="lang",
        hyperparameters={"eta_alpha": 1.0},
        concepts=concepts,
        extra={"concept_names": [f"concept {c}" for c in concepts]},
    )


@pytest.mark.parametrize("kind", ["sv", "layered", "loreft"])
def test_merged_shards_equal_the_whole_file(kind, tmp_path):
    torch.manual_seed(0)
    rows = torch.randn(5, 8)
    layer = (3, 5) if kind == "layered" else 3
    whole = _module(kind, rows)
    _save(tmp_path / "whole.safetensors", whole, [4, 5, 6, 9, 12], layer)
    # the shards hold the same concepts' tensors, cut 2 + 3
    tensors = whole.state_tensors()
    axis = 1 if kind == "layered" else 0
    paths = []
    for i, (lo, hi) in enumerate([(0, 2), (2, 5)]):
        part = {key: t.narrow(axis, lo, hi - lo) for key, t in tensors.items()}
        module = (
            LayeredSteering.from_state(part, layer)
            if kind == "layered"
            else (LoReFT if kind == "loreft" else SteeringVectors).from_state(part)
        )
        paths.append(_save(tmp_path / f"{i}.safetensors", module, [4, 5, 6, 9, 12][lo:hi], layer))
    merged = merge_vector_files(paths, tmp_path / "merged.safetensors")
    a, b = load_vectors(tmp_path / "whole.safetensors"), load_vectors(merged)
    assert b.concepts == [4, 5, 6, 9, 12]
    assert json.loads(b.metadata["concept_names"]) == [f"concept {c}" for c in [4, 5, 6, 9, 12]]
    for key, t in a.module.state_tensors().items():
        torch.testing.assert_close(b.module.state_tensors()[key], t, rtol=0, atol=1e-6)
    if kind != "loreft":  # LoReFT's orthogonal parametrisation recomputes R on load; steering vectors are exact
        assert merged.read_bytes() == (tmp_path / "whole.safetensors").read_bytes()


def test_one_shard_merges_to_the_same_bytes(tmp_path):
    path = _save(tmp_path / "0.safetensors", _module("sv", torch.randn(3, 4)), [1, 2, 3])
    merged = merge_vector_files([path], tmp_path / "merged.safetensors")
    assert merged.read_bytes() == path.read_bytes()


def test_shards_of_different_runs_are_not_merged(tmp_path):
    a = _save(tmp_path / "a.safetensors", _module("sv", torch.randn(2, 4)), [1, 2])
    b = save_vectors(
        tmp_path / "b.safetensors", _module("sv", torch.randn(2, 4)), model="tiny", layer=3, positions="all",
        loss="lang", hyperparameters={"eta_alpha": 1.0}, concepts=[3, 4],
    )  # fmt: skip
    with pytest.raises(VectorFileError, match=r"b.safetensors: cannot be merged .*positions"):
        merge_vector_files([a, b], tmp_path / "m.safetensors")
    twice = _save(tmp_path / "c.safetensors", _module("sv", torch.randn(2, 4)), [2, 5])
    with pytest.raises(VectorFileError, match="a concept twice"):
        merge_vector_files([a, twice], tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_merged_loss_logs_are_one_jobs_table(tmp_path):
    """One job logs step by step, concepts in order; shards are merged back into that order."""

    def log(concepts):
        return pd.DataFrame(
            [
                {"concept": c, "concept_index": i, "step": s, "loss": float(10 * s + c)}
                for s in range(3)
                for i, c in enumerate(concepts)
            ]
        )

    whole = log([4, 5, 6])
    vectors, losses = [], []
    for i, concepts in enumerate([[4, 5], [6]]):
        losses.append(tmp_path / f"{i}.losses.parquet")
        log(concepts).to_parquet(losses[-1])  # shard-local concept indices, from 0
        vectors.append(_save(tmp_path / f"{i}.safetensors", _module("sv", torch.randn(len(concepts), 4)), concepts))
    merge_training(vectors, losses, tmp_path / "m.safetensors", tmp_path / "m.losses.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "m.losses.parquet"), whole)


def test_merged_ratings_sum_the_counters_and_keep_one_jobs_order(tmp_path):
    rows = pd.DataFrame({"sample_id": range(6), "factor": [0.5, 1.0] * 3, "concept_score": [0, 1, 2, 2, 1, 0]})
    whole = rows.sort_values(["factor", "sample_id"], kind="stable", ignore_index=True)
    paths = []
    for i, part in enumerate([rows.iloc[:4], rows.iloc[4:]]):
        path = tmp_path / f"{i}.parquet"
        frame = part.copy()
        frame.attrs["judge_stats"] = {"calls": 10 * (i + 1), "errors": i, "seconds": 1.25}
        save_ratings(frame, path)
        paths.append(path)
    stats_path = merge_ratings(paths, tmp_path / "merged.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "merged.parquet"), whole)
    meta = json.loads(stats_path.read_text())
    assert meta["stats"] == {"calls": 30, "errors": 1, "seconds": 2.5} and meta["n_responses"] == 6
