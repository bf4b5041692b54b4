"""Wall time and peak memory of one training job versus the number of concepts K.

Each K runs in a fresh process (`python benchmarks/scaling.py --worker K`) that loads the model,
then trains K concepts (2 examples each, one epoch, micro-batches of 32 rows) in one train()
call. Reported: the train() wall time, seconds per concept, the resident set after the model
load, and the peak resident set during train() (the high-water mark VmHWM, the per-process peak
that ru_maxrss reports, reset through /proc/self/clear_refs after the load so the load's own
transient peak does not hide it). No target: it shows whether time per concept falls with K and
how memory grows with K.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import Check, Result

PER_CONCEPT = 2


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) / 1024


def _peak_mib() -> float:
    """Peak resident set: the process's VmHWM, which clear_refs can reset.

    ru_maxrss cannot be relied on here: the kernel also folds the peak into it whenever a thread
    exits (torch's and the loaders' worker threads do), and that copy is never reset.
    """
    try:
        return _status_mib("VmHWM")
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _reset_peak() -> bool:
    """Set the peak-RSS mark to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(k: int) -> dict:
    """Runs in the subprocess: one train() of k concepts, times and peak memory as a dict."""
    from common import LAYER, MODEL, concept_datasets, setup_torch

    from prosv.models import load_model
    from prosv.training import TrainConfig, train

    setup_torch()
    t = time.perf_counter()
    model, tokenizer = load_model(MODEL)
    load_s = time.perf_counter() - t
    datasets = concept_datasets(k, PER_CONCEPT)
    cfg = TrainConfig(positions="p2+s2", epochs=1, batch_size=PER_CONCEPT, micro_batch_size=32, max_response_tokens=32)
    gc.collect()
    after_load = _status_mib("VmRSS")
    reset = _reset_peak()
    t = time.perf_counter()
    train(model, tokenizer, LAYER, datasets, cfg, progress=False)
    return {
        "k": k,
        "load_s": load_s,
        "train_s": time.perf_counter() - t,
        "rss_after_load_mib": after_load,
        "peak_train_mib": _peak_mib(),
        "peak_reset": reset,
    }


def run(model, tokenizer, quick: bool) -> Result:
    ks = (1, 4, 16) if quick else (1, 4, 16, 64)
    res = Result("scaling", "one training job versus number of concepts K", __doc__)
    res.headers = [
        "K",
        "train s",
        "s per concept",
        "RSS after load MiB",
        "peak RSS in train() MiB",
        "growth MiB",
        "model load s",
    ]
    rows = []
    for k in ks:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", str(k)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(f"scaling worker K={k} failed:\n{proc.stderr[-2000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(r)
        res.rows.append(
            [
                k,
                r["train_s"],
                r["train_s"] / k,
                r["rss_after_load_mib"],
                r["peak_train_mib"],
                r["peak_train_mib"] - r["rss_after_load_mib"],
                r["load_s"],
            ]
        )
    first, last = rows[0], rows[-1]
    res.checks.append(
        Check(
            f"s per concept, K={last['k']} / K={first['k']}",
            (last["train_s"] / last["k"]) / (first["train_s"] / first["k"]),
            "",
            None,
        )
    )
    res.checks.append(
        Check(
            f"peak RSS in train(), K={last['k']} minus K={first['k']} (MiB)",
            last["peak_train_mib"] - first["peak_train_mib"],
            "",
            None,
            "{:.0f}",
        )
    )
    if not all(r["peak_reset"] for r in rows):
        res.notes.append("/proc/self/clear_refs was not writable: peak RSS includes the model load's own peak")
    res.notes.append(
        f"{PER_CONCEPT} examples per concept (~40 prompt + 32 response tokens), 1 epoch, "
        "micro_batch_size 32; one process per K, run one after the other"
    )
    return res


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(worker(int(sys.argv[2]))))
    else:
        sys.exit("usage: scaling.py --worker K (run the benchmarks with benchmarks/run.py)")
