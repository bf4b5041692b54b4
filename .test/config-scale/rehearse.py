"""The full-size rehearsal: every stage of the paper config on all 500 Concept500 concepts, with a tiny
random-weight Gemma-2 and a fault-injecting judge on loopback, then what it measured.

    .venv/bin/python .test/config-scale/rehearse.py                 # --cores all
    .venv/bin/python .test/config-scale/rehearse.py --profile profiles/slurm-ci   # through SLURM
    .venv/bin/python .test/config-scale/rehearse.py --inputs-only   # just write the inputs
    .venv/bin/python .test/config-scale/rehearse.py --ci            # with CI's further cuts

Steps: write the inputs once (prosv.rehearsal, under <workdir>/inputs), write a copy of config.yaml
that points at them, at <workdir>/results and at the judge's port, time a dry run (workflow parse and
DAG), start the judge server (tests/judge_server.py, in a thread of this process), run snakemake,
and write <workdir>/results/rehearsal.json: wall time, job counts, per-rule times and peak memory
from the benchmark files, the judge's and the server's counters, requests per second, and overhead
per concept.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONFIG = HERE / "config.yaml"
API_KEY_ENV = "PROSV_REHEARSAL_JUDGE_KEY"
sys.path.insert(0, str(REPO / "tests"))  # the loopback judge server lives beside the tests that use it

from judge_server import RATE_LIMITED, SERVER_ERROR, SLOW, Faults, FaultyJudgeServer  # noqa: E402

# per attempt: 5% 429 (Retry-After 0.2 s), 3% 500, 1% a reply slower than the judge's 1 s timeout
FAULTS = Faults(rate_limited=0.05, server_error=0.03, slow=0.01, retry_after_s=0.2, slow_s=30.0, seed=12)
# CI's rehearsal: the same 500 concepts, stages, shards, judge and faults, with the per-concept work cut
# further (one training pair, 2 new tokens; 2 instructions stay, the fewest the factor grid takes) so
# that it fits in CI's hour; the structure, not the model work, is what the rehearsal tests
CI_CUTS = {
    "train": {"max_examples": 1},
    "evaluate": {"max_new_tokens": 2},
}
# rules whose jobs load the model (the rest read and write tables)
MODEL_RULES = {
    "prepare_data",
    "train",
    "train_locate",
    "generate",
    "generate_grid",
    "generate_baseline",
    "generate_locate",
    "scaling",
    "utility",
    "robustness",
    "compare_loreft",
}


def ensure_inputs(inputs: Path, seed: int = 0) -> Path:
    """The rehearsal's data and model folder under ``inputs`` (written once; ``inputs.json`` marks them done)."""
    if not (inputs / "inputs.json").is_file():
        from prosv.rehearsal import write_rehearsal_inputs

        write_rehearsal_inputs(inputs, REPO / "data", seed=seed)
    return inputs


def write_config(workdir: Path, base_url: str, cuts: dict | None = None) -> Path:
    """config.yaml with its inputs, results and judge cache under ``workdir``, the judge at ``base_url``,
    and ``cuts`` ({section: {key: value}}, e.g. CI_CUTS) over the config's own values."""
    cfg = yaml.safe_load(CONFIG.read_text())
    for section, values in (cuts or {}).items():
        cfg[section].update(values)
    inputs, results = workdir / "inputs", workdir / "results"
    cfg["model"] = str(inputs / "model")
    cfg["results"] = str(results)
    cfg["data"].update(
        axbench_path=str(inputs / "concept500"),
        contrastive_path=str(inputs / "concept500"),
        alpaca_eval_path=str(inputs / "alpaca_eval.json"),
    )
    cfg["utility"].update(tiny_gsm8k_path=str(inputs / "tinyGSM8k"), tiny_mmlu_path=str(inputs / "tinyMMLU"))
    cfg["judge"].update(base_url=base_url, cache=str(results / "judge_cache.sqlite"))
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def snakemake_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    src = str(REPO / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    env.update({API_KEY_ENV: "rehearsal", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def snakemake(*args: str, timeout: float = 3600) -> tuple[float, str]:
    """Run snakemake from the repository root; (seconds, its output). Fails with the output's tail."""
    exe = Path(sys.executable).parent / "snakemake"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "snakemake"]
    start = time.monotonic()
    proc = subprocess.run([*cmd, *args], cwd=REPO, env=snakemake_env(), capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - start
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{out[-8000:]}")
    return seconds, out


def job_counts(output: str) -> Counter:
    """Jobs per rule from every 'Job stats' table of a run (a checkpoint adds a second one)."""
    counts: Counter = Counter()
    for block in output.split("Job stats:")[1:]:
        table = block.split("\n\n")[0]
        for line in table.splitlines():
            m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if m and m.group(1) != "total":
                counts[m.group(1)] = max(counts[m.group(1)], int(m.group(2)))
    return counts


def executed_jobs(output: str) -> Counter:
    """Jobs per rule that a run started ('rule X:' / 'localrule X:' / 'checkpoint X:' headers)."""
    return Counter(re.findall(r"^\s*(?:local)?(?:rule|checkpoint) (\w+):$", output, re.M))


def benchmarks(results: Path) -> pd.DataFrame:
    """Every benchmark file of the run: rule (the folder or file stem), name, s, max_rss (MB)."""
    rows = []
    for path in sorted((results / "benchmarks").rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        rel = path.relative_to(results / "benchmarks")
        rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem.split(".")[0]  # utility.0.tsv: shard 0
        rows.append(
            {"rule": rule, "name": str(rel), "s": float(table["s"].iloc[0]), "max_rss": table["max_rss"].iloc[0]}
        )
    frame = pd.DataFrame(rows)
    frame["max_rss"] = pd.to_numeric(frame["max_rss"], errors="coerce")
    return frame


def judged_stats(results: Path) -> list[dict]:
    """The counters of every judge job (ratings files with their own generation file; merged tables
    would count their shards twice)."""
    out = []
    for path in sorted((results / "ratings").rglob("*.parquet.judge_stats.json")):
        rated = path.with_name(path.name.removesuffix(".judge_stats.json"))
        generation = results / "generations" / rated.relative_to(results / "ratings")
        if generation.is_file():
            out.append(json.loads(path.read_text())["stats"])
    return out


def startup_seconds(config: Path, rounds: int = 3) -> float:
    """What a model job costs before it computes anything: a fresh interpreter that imports prosv's job
    module and loads the configured model (median of ``rounds``)."""
    code = (
        "import yaml, sys; from prosv.jobs import load_configured_model; "
        "load_configured_model(yaml.safe_load(open(sys.argv[1])))"
    )
    times = []
    for _ in range(rounds):
        start = time.monotonic()
        subprocess.run(
            [sys.executable, "-c", code, str(config)], check=True, env=snakemake_env(), capture_output=True, cwd=REPO
        )
        times.append(time.monotonic() - start)
    return sorted(times)[len(times) // 2]


def measure(results: Path, wall: float, run_output: str, startup_s: float, cores: int, n_concepts: int) -> dict:
    bench = benchmarks(results)
    model = bench[bench.rule.isin(MODEL_RULES)]
    compute = float((model.s - startup_s).clip(lower=0).sum())
    stats = judged_stats(results)
    total = {k: sum(s.get(k, 0) for s in stats) for k in stats[0]} if stats else {}
    attempts = total.get("calls", 0) + total.get("retries", 0)
    largest = bench.loc[bench.max_rss.idxmax()] if bench.max_rss.notna().any() else None
    return {
        "wall_s": round(wall, 1),
        "jobs": dict(executed_jobs(run_output)),
        "per_rule": {
            rule: {"jobs": int(len(g)), "s_total": round(g.s.sum(), 1), "s_max": round(g.s.max(), 1)}
            for rule, g in bench.groupby("rule")
        },
        "peak_rss_mb": None if largest is None else {"job": largest["name"], "max_rss": float(largest.max_rss)},
        "model_job_startup_s": round(startup_s, 2),
        "model_jobs": int(len(model)),
        "model_compute_s": round(compute, 1),
        "overhead_s_per_concept": round((wall - compute / cores) / n_concepts, 3),
        "judge": total,
        "judge_jobs": len(stats),
        "judge_requests_per_s": round(attempts / total["seconds"], 1) if total.get("seconds") else None,
    }


def rehearse(
    workdir: Path, *, profile: str | None = None, cores: str = "all", cuts: dict | None = None, timeout: float = 3600
) -> dict:
    """Write the inputs, run the rehearsal against the faulty judge (with ``cuts`` over the config, see
    write_config), and return (and store) what it measured."""
    workdir = Path(workdir).resolve()
    ensure_inputs(workdir / "inputs")
    with FaultyJudgeServer(FAULTS) as server:
        config = write_config(workdir, server.base_url, cuts)
        cfg = yaml.safe_load(config.read_text())
        n_concepts = len(cfg["data"]["dev_concepts"]) + len(cfg["data"]["eval_concepts"])
        parse_s, dry = snakemake("-n", "--configfile", str(config))
        executor = ["--profile", profile] if profile else ["--cores", cores]
        wall, out = snakemake(*executor, "--configfile", str(config), timeout=timeout)
        seen = server.counts()
    parallel = (os.cpu_count() or 1) if profile or cores == "all" else int(cores)  # jobs side by side
    again_s, again = snakemake("-n", "--configfile", str(config))  # the whole DAG built, nothing left to run
    once = [p for p, n in seen["answers"].items() if n == 1]
    report = {
        "executor": profile or f"--cores {cores}",
        "cuts": cuts or {},
        "concepts": n_concepts,
        "dry_run_s": round(parse_s, 1),
        "dry_run_jobs_before_checkpoint": sum(job_counts(dry).values()),
        "second_dry_run_s": round(again_s, 1),
        "second_run_is_a_no_op": "Nothing to be done" in again,
        "dag_jobs": sum(executed_jobs(out).values()),
        **measure(workdir / "results", wall, out, startup_seconds(config), parallel, n_concepts),
        "server": {
            "outcomes": dict(seen["outcomes"]),
            "answered": seen["answered"],
            "attempts": sum(seen["attempts"].values()),
            "distinct_prompts": len(seen["attempts"]),
            "hung_up": seen["hung_up"],
            "max_in_flight": seen["max_in_flight"],
            # two judge jobs running at once may both miss the shared cache for one prompt and both
            # send it: each is then a request of its own, counted by its job and answered once
            "prompts_sent_by_two_jobs": sum(n > 1 for n in seen["answers"].values()),
            "retry_after_min_margin_s": round(
                min((m for p in once for m in seen["retry_after_by_prompt"].get(p, [])), default=0.0), 3
            ),
        },
    }
    (workdir / "results" / "rehearsal.json").write_text(json.dumps(report, indent=2) + "\n")
    (workdir / "results" / "rehearsal.log").write_text(out)
    return report


FAULT_KINDS = (RATE_LIMITED, SERVER_ERROR, SLOW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=REPO / "resources" / "rehearsal")
    parser.add_argument("--profile", help="a snakemake profile (e.g. profiles/slurm-ci) instead of --cores")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--inputs-only", action="store_true", help="write the inputs and stop")
    parser.add_argument("--ci", action="store_true", help="CI's further cuts (CI_CUTS) over the config")
    args = parser.parse_args()
    if args.inputs_only:
        print(ensure_inputs(args.workdir.resolve() / "inputs"))
        return
    cuts = CI_CUTS if args.ci else None
    print(json.dumps(rehearse(args.workdir, profile=args.profile, cores=args.cores, cuts=cuts), indent=2))


if __name__ == "__main__":
    main()
