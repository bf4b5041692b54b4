"""Runs say what made them: device, dtype, versions and CPU features in job logs and vector files,
and a warning when a CPU without native bf16 makes the model fall back to fp32."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from prosv import provenance as P


def _cpuinfo_flags() -> set[str]:
    """/proc/cpuinfo's flags, read here independently of prosv."""
    try:
        line = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
    except (OSError, StopIteration):
        return set()
    return set(line.split(":", 1)[1].split())


def test_the_record_names_device_dtype_versions_and_cpu_features():
    rec = P.describe(torch.device("cpu"), torch.float32)
    assert rec["device"] == "cpu" and rec["dtype"] == "float32"
    assert rec["torch"] == torch.__version__ and rec["transformers"] == transformers.__version__
    assert rec["cores"] == str(len(os.sched_getaffinity(0)))
    flags = _cpuinfo_flags()
    assert set(rec["cpu_flags"].split()) == {f for f in P.CPU_FLAGS if f in flags} or rec["cpu_flags"].startswith(
        "none"
    )
    native = {"avx512_bf16", "amx_bf16"} & flags and torch.backends.cpu.get_cpu_capability() == "AVX512"
    assert rec["kernels"] == torch.backends.cpu.get_cpu_capability()
    assert rec["native_bf16"] == ("yes" if native else "no")


LOWERED = """
import json, torch
from prosv import models, provenance
print(json.dumps([provenance.describe("cpu"), str(models.default_dtype("cpu"))]))
"""


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() != "AVX512", reason="needs a CPU whose kernels use AVX512")
def test_kernels_lowered_to_avx2_count_as_an_avx2_only_machine():
    """ATEN_CPU_CAPABILITY=avx2 makes torch emulate bf16 even where the CPU has it: the run is then an AVX2-only
    machine's, so auto picks fp32 and the record says why, whatever the CPU's flags."""
    import json

    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    env.pop("PROSV_CPU_DTYPE", None)
    out = subprocess.run(
        [sys.executable, "-c", LOWERED], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    record, dtype = json.loads(out.stdout.splitlines()[-1])
    assert record["kernels"] == "AVX2" and record["native_bf16"] == "no" and dtype == "torch.float32"
    assert "no native bf16" in out.stderr


def _trained(tiny_model, tokenizer):
    from prosv.training import Example, TrainConfig, train

    examples = [Example(f"Say something {i}.", f"Owls hoot {i}.") for i in range(4)]
    cfg = TrainConfig(epochs=1, batch_size=2, seed=0)
    return train(tiny_model, tokenizer, 1, [examples], cfg, concept_names=[7])


def test_vector_files_record_what_made_them_and_stay_byte_identical(tiny_model, tokenizer, tmp_path):
    from prosv.jobs import save_training
    from prosv.models import resolve_model
    from prosv.vectors import load_vectors

    tiny_model.prosv_ref = resolve_model("org/tiny")
    result = _trained(tiny_model, tokenizer)
    paths = []
    for run, seconds in (("a", 1.0), ("b", 2.5)):  # the same run, timed differently
        paths.append(tmp_path / f"{run}.safetensors")
        save_training(
            result,
            tiny_model,
            method="prosv_lang",
            split="eval",
            vectors=paths[-1],
            losses=tmp_path / f"{run}.parquet",
            hyperparameters={"c_alpha": 4},
            seconds=seconds,
            concepts=[7],
            names=["owls"],
        )
    assert paths[0].read_bytes() == paths[1].read_bytes(), "identical runs on one machine give identical files"
    meta = load_vectors(paths[0]).metadata
    rec = meta["provenance"]
    assert rec["device"] == "cpu" and rec["dtype"] == str(next(tiny_model.parameters()).dtype).split(".")[1]
    assert rec["torch"] == torch.__version__ and rec["transformers"] == transformers.__version__
    assert {"cpu", "cores", "cpu_flags", "kernels", "native_bf16"} <= set(rec)
    assert meta["concept_names"] == '["owls"]' and meta["concepts"] == [7]


def test_a_cpu_without_native_bf16_falls_back_to_fp32_with_a_warning(monkeypatch, caplog):
    from prosv import models

    monkeypatch.setattr(P, "_cpuinfo", lambda: ("Old CPU", frozenset({"avx2"})))
    monkeypatch.setattr(models, "_warned_fallback", False)
    monkeypatch.delenv("PROSV_CPU_DTYPE", raising=False)
    with caplog.at_level(logging.WARNING, logger="prosv.models"):
        assert models.default_dtype("cpu") == torch.float32
        assert models.default_dtype("cpu") == torch.float32
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "once per process"
    assert "no native bf16" in warnings[0] and f"up to {models.FP32_COST:.1f}x" in warnings[0]
    caplog.clear()
    monkeypatch.setattr(models, "_warned_fallback", False)
    monkeypatch.setenv("PROSV_CPU_DTYPE", "float32")  # chosen knowingly: no warning
    with caplog.at_level(logging.WARNING, logger="prosv.models"):
        assert models.default_dtype("cpu") == torch.float32
    assert not caplog.records


JOB = """
import sys, types
from prosv import provenance
provenance._cpuinfo = lambda: ("Old CPU", frozenset({"avx2"}))
from prosv.jobs import start_job
start_job(types.SimpleNamespace(log=[sys.argv[1]], threads=1, config={"seed": 1, "device": "cpu"}, rule="train"))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/cpuinfo")
def test_every_job_log_says_what_it_runs_on(tmp_path):
    log = tmp_path / "logs" / "train.log"
    env = dict(os.environ)
    env.pop("PROSV_CPU_DTYPE", None)
    subprocess.run([sys.executable, "-c", JOB, str(log)], check=True, env=env, timeout=300)
    text = log.read_text()
    line = next(x for x in text.splitlines() if "provenance:" in x)
    assert "device cpu, dtype float32" in line and f"torch {torch.__version__}" in line
    assert f"transformers {transformers.__version__}" in line and "cpu Old CPU" in line and "cpu_flags avx2" in line
    assert "native_bf16 no" in line
    assert "WARNING" in text and "no native bf16" in text


def test_records_from_several_files_combine_in_the_record_order():
    a = {"dtype": "bfloat16", "device": "cpu", "torch": "2"}  # as read back: keys sorted
    b = {"device": "cpu", "dtype": "float32", "torch": "2"}
    assert P.combined([a, b]) == {"device": "cpu", "dtype": "bfloat16 / float32", "torch": "2"}
    assert list(P.combined([a])) == ["device", "dtype", "torch"]
