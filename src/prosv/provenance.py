"""What made a run: device, dtype, torch and transformers versions, and the CPU features that decide
the default dtype and hence the numbers (bf16 on CPUs with native bf16, fp32 elsewhere).

Recorded in every job log, every vector file's metadata and SUMMARY.md, so two runs that disagree
can say why. Nothing here changes between two runs on the same machine (no timestamps, no load), so
vector files stay byte-identical for identical runs.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from pathlib import Path

# the x86 features that matter here: AVX2 is the floor torch's CPU kernels assume; AVX512-BF16 and
# AMX multiply bf16 in hardware (without them bf16 is emulated and prosv runs in fp32)
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
FIELDS = (
    "device",
    "dtype",
    "torch",
    "transformers",
    "python",
    "cpu",
    "cores",
    "cpu_flags",
    "kernels",
    "native_bf16",
)


@lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset]:
    """(model name, flags) from /proc/cpuinfo; ("", {}) where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "", frozenset()
    name, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not name:
            name = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return name, flags


def cpu_flags() -> list[str]:
    """Which of :data:`CPU_FLAGS` this CPU has."""
    have = _cpuinfo()[1]
    return [f for f in CPU_FLAGS if f in have]


def kernels() -> str:
    """The instruction set torch's CPU kernels dispatch to (``AVX512``, ``AVX2``, ``DEFAULT``...). It is the
    CPU's best unless ATEN_CPU_CAPABILITY lowers it, which is how an AVX2-only machine is reproduced on a
    newer one (with ONEDNN_MAX_CPU_ISA=AVX2 for oneDNN's matmuls)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def cpu_has_native_bf16() -> bool:
    """True when bf16 is multiplied in hardware: the CPU has AVX512-BF16 or AMX and torch's kernels use
    AVX512 (at ATEN_CPU_CAPABILITY=avx2 bf16 is emulated: on the 2-core AMD EPYC a 512x576x1536 bf16
    matmul took 5x its fp32 time, 11x its time at AVX512)."""
    return any(f in _cpuinfo()[1] for f in NATIVE_BF16_FLAGS) and kernels().startswith("AVX512")


def cores() -> int:
    """CPU cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _device_name(device) -> str:
    import torch

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def describe(device=None, dtype=None) -> dict[str, str]:
    """The provenance record: device, dtype, versions, CPU, cores, CPU features, torch's kernel level,
    native bf16."""
    import torch
    import transformers

    name = _cpuinfo()[0] or platform.processor() or platform.machine()
    record = {
        "device": _device_name(device) if device is not None else "",
        "dtype": str(dtype).removeprefix("torch.") if dtype is not None else "",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cpu": name,
        "cores": str(cores()),
        "cpu_flags": " ".join(cpu_flags()) or "none of " + " ".join(CPU_FLAGS),
        "kernels": kernels(),
        "native_bf16": "yes" if cpu_has_native_bf16() else "no",
    }
    return {k: v for k, v in record.items() if v != ""}


def of_model(model) -> dict[str, str]:
    """The provenance record of a loaded model (its parameters' device and dtype)."""
    p = next(model.parameters())
    return describe(p.device, p.dtype)


def line(record: dict[str, str]) -> str:
    """One log line: ``device cpu, dtype bfloat16, torch 2.13.0, ...``."""
    return ", ".join(f"{k} {v}" for k, v in record.items())


def recorded(vector_files) -> list[dict[str, str]]:
    """The distinct provenance records in vector files' metadata (read without torch), in file order."""
    import json

    from safetensors import safe_open

    out = []
    for path in vector_files:
        with safe_open(str(path), framework="numpy") as f:
            raw = (f.metadata() or {}).get("provenance")
        record = json.loads(raw) if raw else None
        if record and record not in out:
            out.append(record)
    return out


def combined(records: list[dict[str, str]]) -> dict[str, str]:
    """One record from several: a key whose values differ lists them all (``bfloat16 / float32``)."""
    seen = dict.fromkeys(k for r in records for k in r)
    keys = sorted(seen, key=lambda k: FIELDS.index(k) if k in FIELDS else len(FIELDS))  # the record's order
    return {k: " / ".join(dict.fromkeys(r[k] for r in records if k in r)) for k in keys}
