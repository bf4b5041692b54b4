"""Shared pieces of the benchmarks: setup, interleaved timing, data, the machine, results.

Absolute times on a shared machine are noise, so every benchmark measures the variants it
compares side by side in one process: rounds of all variants, the order reversed every other
round, and medians over the rounds. Ratios of those medians are what the benchmarks report.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import prosv  # noqa: F401  (first: sets OMP_WAIT_POLICY=PASSIVE before torch loads OpenMP)

ROOT = Path(__file__).resolve().parent.parent
EXEMPLARS = ROOT / "data" / "concepts" / "exemplars.jsonl"
MODEL = os.environ.get("PROSV_BENCH_MODEL", "smollm2-135m")
LAYER = 10  # N/3 for the 30-layer embedded model


def setup_torch(threads: int = 2) -> None:
    """Fixed thread count on CPU (the numbers in RESULTS.md are for 2 cores) and the allocator
    setting every prosv job makes, unless PROSV_BENCH_MALLOC=default."""
    if not torch.cuda.is_available():
        torch.set_num_threads(threads)
    if os.environ.get("PROSV_BENCH_MALLOC") != "default":
        from prosv.jobs import keep_freed_memory

        keep_freed_memory()


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn) -> float:
    """Wall seconds of one call (device work included)."""
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def interleaved(variants: dict, rounds: int) -> dict[str, list[float]]:
    """Run every variant once per round, the order reversed every other round.

    A variant is a callable returning None (its wall time is recorded) or a list of seconds it
    measured itself (e.g. per-step times): those are recorded instead.
    """
    names = list(variants)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            sync()
            t = time.perf_counter()
            got = variants[name]()
            sync()
            elapsed = time.perf_counter() - t
            out[name].extend(got if isinstance(got, list) else [elapsed])
    return out


def median(xs) -> float:
    return statistics.median(xs) if xs else float("nan")


class StepClock:
    """Times the steps of a training loop through torch's global optimizer step hook.

    `steps` holds the seconds from one `optimizer.step()` to the next: whole training steps when
    the loop makes one optimizer step per step (one concept). The first step's one-off work
    (setup, prefix computation) falls before the first stamp and is left out.

    `between`, if given, runs right after every step and is timed apart (`between_times`), its time
    left out of the steps: the finest interleaving there is, so step i can be compared with the
    `between` calls just before and just after it. Optimizer steps made inside `between` are
    not counted as steps.
    """

    def __init__(self, between=None):
        self.between = between
        self.steps: list[float] = []
        self.between_times: list[float] = []
        self._resume: float | None = None
        self._inside = False
        self._handle = None

    def _hook(self, opt, args, kwargs):
        if self._inside:
            return
        sync()
        now = time.perf_counter()
        if self._resume is not None:
            self.steps.append(now - self._resume)
        if self.between is not None:
            self._inside = True
            try:
                self.between_times.append(timed(self.between))
            finally:
                self._inside = False
        self._resume = time.perf_counter()

    def __enter__(self):
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self._handle = register_optimizer_step_post_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()

    def paired_ratios(self) -> list[float]:
        """step i / mean of the `between` calls on either side of it."""
        b = self.between_times
        return [s / ((b[i] + b[i + 1]) / 2) for i, s in enumerate(self.steps) if i + 1 < len(b)]


def exemplars() -> list[dict]:
    """The 80 hand-written (instruction, response) pairs of data/concepts (20 concepts x 4)."""
    with open(EXEMPLARS) as f:
        return [json.loads(line) for line in f if line.strip()]


def concept_datasets(num_concepts: int, per_concept: int):
    """`num_concepts` training sets of `per_concept` real-looking examples each.

    Concept k takes exemplars in a fixed rotation; once the 80 exemplars are used up, the
    instruction gets a short suffix so every (prompt, response) sequence stays distinct (the
    prefix cache would otherwise compute a repeated sequence only once).
    """
    from prosv.training import Example

    rows = exemplars()
    suffixes = ["", " Keep it short.", " Answer in plain words.", " Be concrete.", " Use simple language."]
    datasets = []
    for k in range(num_concepts):
        exs = []
        for j in range(per_concept):
            i = k * per_concept + j
            row = rows[i % len(rows)]
            suffix = suffixes[(i // len(rows)) % len(suffixes)]
            if i >= len(rows) * len(suffixes):
                suffix += f" (#{i})"
            exs.append(Example(row["instruction"] + suffix, row["response"]))
        datasets.append(exs)
    return datasets


def machine() -> dict[str, str]:
    """What RESULTS.md says about where the numbers come from."""
    import transformers

    from prosv.provenance import kernels

    cpu = platform.processor() or "unknown"
    family = model = ""
    flags: list[str] = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name" and cpu in ("unknown", "x86_64", "i386", ""):
                cpu = value
            elif key == "cpu family" and not family:
                family = value
            elif key == "model" and not model:
                model = value
            elif key == "flags" and not flags:
                flags = value.split()
    except OSError:
        pass
    if family:
        cpu += f" (family {family}, model {model})"
    wide = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    if torch.cuda.is_available():
        device = f"cuda: {torch.cuda.get_device_name(0)}"
    else:
        device = f"cpu, torch threads {torch.get_num_threads()}"
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "cpu features": ", ".join(wide) or "none of avx2, avx512f, avx512_bf16, amx_bf16",
        "torch kernels": kernels(),
        "device": device,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "malloc": (
            "glibc defaults (PROSV_BENCH_MALLOC=default)"
            if os.environ.get("PROSV_BENCH_MALLOC") == "default"
            else "freed memory kept for reuse (prosv.jobs.keep_freed_memory, as in every job)"
        ),
        "load average at start (1, 5, 15 min)": load,
    }


def md_cell(x) -> str:
    """Text for a markdown table cell (a '|' would end the cell)."""
    return str(x).replace("|", "\\|")


@dataclass
class Check:
    """One headline number against its target; `passed` None = reported, no target."""

    label: str
    value: float
    target: str  # e.g. "<= 1.5"
    passed: bool | None
    fmt: str = "{:.3f}"

    def line(self) -> str:
        verdict = {True: "PASS", False: "MISS", None: "INFO"}[self.passed]
        target = f" (target {self.target})" if self.target else ""
        return f"**{verdict}** {self.label}: {self.fmt.format(self.value)}{target}"


@dataclass
class Result:
    name: str
    title: str
    about: str  # what is measured and why (the benchmark's docstring)
    headers: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blocked: str | None = None  # why it could not run at all
    seconds: float = 0.0

    def table(self) -> str:
        if not self.rows:
            return ""

        def cell(x):
            if isinstance(x, float):
                return f"{x:.4g}" if abs(x) < 1000 else f"{x:.0f}"
            return md_cell(x)

        lines = ["| " + " | ".join(map(md_cell, self.headers)) + " |", "|" + "---|" * len(self.headers)]
        lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def markdown(self) -> str:
        parts = [f"## {self.name}: {self.title}", "", self.about.strip(), ""]
        if self.blocked:
            parts += [f"**BLOCKED**: {self.blocked}", ""]
        if self.rows:
            parts += [self.table(), ""]
        parts += [f"- {c.line()}" for c in self.checks]
        parts += [f"- {n}" for n in self.notes]
        parts += ["", f"_took {self.seconds:.0f} s_", ""]
        return "\n".join(parts)

    def text(self) -> str:
        return self.markdown().replace("**", "")
