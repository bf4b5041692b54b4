"""Long jobs that are killed keep their work: training resumes from its checkpoint to the same bytes.

The job runs in a real subprocess that is sent SIGKILL once it has written a checkpoint; the
rerun must go on from that checkpoint (it says so in its log) and end with a vector file and loss
log identical, byte for byte, to those of a run that was never stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from prosv.training import Example, TrainConfig, train
from prosv.training.checkpoint import Checkpoint, run_fingerprint

JOB = r"""
import logging
import sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from prosv.training import Example, TrainConfig, train
from prosv.vectors import save_vectors

logging.basicConfig(level=logging.INFO)
torch.set_num_threads(1)
model_dir, out, checkpoint, every = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
tok = AutoTokenizer.from_pretrained(model_dir)
tok.padding_side = "left"
model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
for p in model.parameters():
    p.requires_grad_(False)
data = [[Example(f"Tell me about item {i} of set {k}.", f"Set {k} item {i} is " + "very " * (i % 4) + "nice.")
         for i in range(12)] for k in range(3)]
cfg = TrainConfig(positions="p2+s2", epochs=40, batch_size=3, micro_batch_size=9, c_alpha=2, eta_alpha=0.05,
                  c_v=1, eta_v=0.01, seed=7)
result = train(model, tok, 2, data, cfg, progress=False, checkpoint=checkpoint or None, checkpoint_every_s=every)
save_vectors(out, result.module, model="tiny", layer=2, positions=cfg.positions, loss=cfg.loss, hyperparameters={})
result.losses.to_parquet(out + ".losses.parquet")
"""


def _job(tiny_dir, out: Path, checkpoint: Path | None, every: float = 0.0):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", JOB, str(tiny_dir), str(out), str(checkpoint or ""), str(every)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def test_a_killed_training_resumes_from_its_checkpoint_to_identical_files(tiny_dir, tmp_path):
    whole = _job(tiny_dir, tmp_path / "whole.safetensors", None)
    assert whole.wait(timeout=600) == 0, whole.stdout.read()

    checkpoint = tmp_path / "resumed.safetensors.checkpoint"
    killed = _job(tiny_dir, tmp_path / "resumed.safetensors", checkpoint)
    deadline = time.monotonic() + 300
    saved_step = None
    while time.monotonic() < deadline and killed.poll() is None:
        if checkpoint.is_file():
            saved_step = torch.load(checkpoint, weights_only=False)["step"]
            if saved_step >= 5:
                break
        time.sleep(0.05)
    assert killed.poll() is None, "the job finished before it could be killed: give it more steps"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "resumed.safetensors").exists()

    rerun = subprocess.run(
        [sys.executable, "-c", JOB, str(tiny_dir), str(tmp_path / "resumed.safetensors"), str(checkpoint), "1e9"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr
    resumed_from = int(rerun.stderr.split("resuming")[1].split("from step")[1].split()[0])
    assert resumed_from >= saved_step >= 5  # went on from the checkpoint, not from step 0
    assert (tmp_path / "resumed.safetensors").read_bytes() == (tmp_path / "whole.safetensors").read_bytes()
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "resumed.safetensors.losses.parquet"),
        pd.read_parquet(tmp_path / "whole.safetensors.losses.parquet"),
    )


def test_a_checkpoint_of_another_run_is_ignored(tiny_model, tokenizer, tmp_path, caplog):
    data = [[Example(f"q{i}", f"answer number {i}") for i in range(4)]]
    cfg = TrainConfig(positions="p2+s2", epochs=2, batch_size=2, seed=3)
    path = tmp_path / "run.checkpoint"
    first = train(tiny_model, tokenizer, 1, data, cfg, progress=False, checkpoint=path, checkpoint_every_s=0)
    assert path.is_file()  # written before the last step, kept for the caller to remove
    other = TrainConfig(positions="p2+s2", epochs=2, batch_size=2, seed=4)
    with caplog.at_level("WARNING"):
        second = train(tiny_model, tokenizer, 1, data, other, progress=False, checkpoint=path, checkpoint_every_s=1e9)
    assert "checkpoint of another run" in caplog.text
    fresh = train(tiny_model, tokenizer, 1, data, other, progress=False)
    runs = {"first": first, "second": second, "fresh": fresh}
    v = {name: run.module.state_tensors()["v"] for name, run in runs.items()}
    assert torch.equal(v["second"], v["fresh"])  # trained from the start, as with no checkpoint
    assert not torch.equal(v["first"], v["second"])


@pytest.mark.parametrize("change", ["examples", "names"])
def test_the_fingerprint_tells_runs_apart(change):
    cfg = TrainConfig()
    encoded = [[("a", 1)], [("b", 2)]]
    base = run_fingerprint(cfg, 3, ["x", "y"], encoded)
    assert base == run_fingerprint(cfg, 3, ["x", "y"], [list(e) for e in encoded])
    if change == "examples":
        assert base != run_fingerprint(cfg, 3, ["x", "y"], [[("a", 1)], [("b", 3)]])
    else:
        assert base != run_fingerprint(cfg, 3, ["y", "x"], encoded)
    assert Checkpoint(None, base).load() is None and not Checkpoint(None, base).due()


GENERATE_JOB = r"""
import logging
import sys
import pandas as pd
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from prosv import experiments as X
from prosv.jobs import concepts_in_parts

logging.basicConfig(level=logging.INFO)
torch.set_num_threads(1)
model_dir, out = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(model_dir)
tok.padding_side = "left"
model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
prompts = pd.DataFrame(
    [{"concept_id": c, "user_turn": f"Say something about topic {c}, take {i}.", "sample_id": 3 * c + i}
     for c in range(8) for i in range(3)]
)
gen = dict(max_new_tokens=24, temperature=1.0, seed=5, batch_size=6, progress=False)
respond = lambda part: X.baseline_responses(model, tok, part, None, "unsteered", **gen)
result = concepts_in_parts(prompts, respond, out, rows_per_part=6, fingerprint={"gen": gen})
result.to_parquet(out)
"""


def test_a_killed_generation_keeps_its_finished_concepts(tiny_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def job(out):
        return subprocess.Popen(
            [sys.executable, "-c", GENERATE_JOB, str(tiny_dir), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    whole = job(tmp_path / "whole.parquet")
    assert whole.wait(timeout=600) == 0, whole.stderr.read()
    out = tmp_path / "resumed.parquet"
    parts = Path(f"{out}.parts")
    killed = job(out)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and killed.poll() is None and len(list(parts.glob("*.parquet"))) < 2:
        time.sleep(0.02)
    assert killed.poll() is None, "the job finished before it could be killed"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    done = len(list(parts.glob("*.parquet")))
    assert 2 <= done < 4 and not out.exists()  # 8 concepts in parts of 2

    rerun = job(out)
    assert rerun.wait(timeout=600) == 0
    assert f"resumed: {done} of 4 parts were already done" in rerun.stderr.read()
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(tmp_path / "whole.parquet"))


def test_parts_of_other_settings_are_thrown_away(tmp_path):
    from prosv.jobs import concepts_in_parts

    prompts = pd.DataFrame({"concept_id": [0, 0, 1, 1, 2], "sample_id": range(5)})
    calls = []

    def respond(part):
        calls.append(list(part.sample_id))
        return part.assign(response=[f"r{i}" for i in part.sample_id])

    out = tmp_path / "g.parquet"
    first = concepts_in_parts(prompts, respond, out, rows_per_part=2, fingerprint={"t": 1})
    assert calls == [[0, 1], [2, 3], [4]]
    again = concepts_in_parts(prompts, respond, out, rows_per_part=2, fingerprint={"t": 1})
    assert len(calls) == 3  # all from the parts
    pd.testing.assert_frame_equal(again, first)
    concepts_in_parts(prompts, respond, out, rows_per_part=2, fingerprint={"t": 2})
    assert len(calls) == 6  # other settings: computed again
    concepts_in_parts(prompts.iloc[:4], respond, out, rows_per_part=2, fingerprint={"t": 2})
    assert len(calls) == 8  # other prompts: computed again
