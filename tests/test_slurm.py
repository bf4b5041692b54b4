"""Run Snakemake workflows through a real single-node SLURM cluster.

The cluster (slurmctld + slurmd + munged on this machine) is started by
``tests/slurm/start_cluster.sh`` and jobs are submitted by
snakemake-executor-plugin-slurm with ``--profile profiles/slurm-ci``
(squeue status queries, no account, no GPU).

Opt-in, because it installs packages and starts daemons as root:

    sudo PROSV_TEST_SLURM=1 .venv/bin/python -m pytest -m slurm tests/test_slurm.py

(also enabled when ``CI`` is set and the tests run as root). Set
``PROSV_SLURM_KEEP_CLUSTER=1`` to leave a cluster that the tests started
running afterwards; a cluster that was already up is never stopped.

To run another workflow on the cluster, add a test that uses the
``slurm_cluster`` fixture and ``run_snakemake_on_slurm``, e.g.::

    def test_dot_test_config_on_slurm(slurm_cluster, tmp_path):
        run_snakemake_on_slurm(SNAKEFILE, tmp_path, "--configfile", str(REPO / ".test" / "config.yaml"))
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SLURM_DIR = REPO / "tests" / "slurm"
START_SCRIPT = SLURM_DIR / "start_cluster.sh"
STOP_SCRIPT = SLURM_DIR / "stop_cluster.sh"
DEMO_SNAKEFILE = SLURM_DIR / "demo" / "Snakefile"
CI_PROFILE = REPO / "profiles" / "slurm-ci"

# start_cluster.sh may have to apt-get install slurm-wlm first
CLUSTER_START_TIMEOUT_S = 900
SNAKEMAKE_TIMEOUT_S = 600


def _skip_reason() -> str | None:
    if not (os.environ.get("PROSV_TEST_SLURM") == "1" or os.environ.get("CI")):
        return (
            "SLURM integration test is opt-in: set PROSV_TEST_SLURM=1 (or CI) "
            "and run as root; it installs slurm-wlm/munge and starts daemons"
        )
    if os.geteuid() != 0:
        return "SLURM integration test must run as root (starts slurmctld/slurmd/munged)"
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        return "SLURM integration test needs slurm installed or apt-get to install it"
    return None


def _clean_env() -> dict[str, str]:
    """Environment for SLURM/Snakemake calls, without an enclosing job's SLURM_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    # make sure the venv that runs pytest (and so snakemake) comes first
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _cluster_running() -> bool:
    """True if slurmctld and slurmd already run here (e.g. started by CI or a
    previous session). Checked by process name: sinfo would block ~10 s
    retrying when no controller is up."""
    for name in ("slurmctld", "slurmd"):
        if subprocess.run(["pgrep", "-x", name], capture_output=True).returncode != 0:
            return False
    return True


def snakemake_cmd() -> list[str]:
    """The snakemake of the interpreter running the tests (same venv, same plugin)."""
    exe = Path(sys.executable).parent / "snakemake"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "snakemake"]


@pytest.fixture(scope="session")
def slurm_cluster():
    """Start the single-node test cluster once per test session.

    Yields the output of start_cluster.sh. Stops the cluster at the end of the
    session if this fixture started it (unless PROSV_SLURM_KEEP_CLUSTER=1).
    """
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    # find_spec, not import: importing the plugin runs `scontrol show config`
    # (which blocks ~10 s while no controller is up)
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.fail('snakemake-executor-plugin-slurm is not installed in this environment (pip install -e ".[test]")')

    was_up = _cluster_running()
    try:
        proc = subprocess.run(
            ["bash", str(START_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=CLUSTER_START_TIMEOUT_S,
            env=_clean_env(),
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"start_cluster.sh timed out after {exc.timeout}s:\n{_text(exc.stderr)}")
    if proc.returncode != 0:
        pytest.fail(
            f"start_cluster.sh failed (rc={proc.returncode}):\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    yield proc.stderr + proc.stdout

    if not was_up and os.environ.get("PROSV_SLURM_KEEP_CLUSTER") != "1":
        subprocess.run(["bash", str(STOP_SCRIPT)], capture_output=True, timeout=120)


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def _slurm_logs(workdir: Path) -> str:
    """Contents of the plugin's per-job logs (for failure messages)."""
    logdir = workdir / ".snakemake" / "slurm_logs"
    parts = []
    for log in sorted(logdir.rglob("*.log")) if logdir.is_dir() else []:
        parts.append(f"--- {log.relative_to(workdir)}\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


def run_snakemake_on_slurm(
    snakefile: Path,
    workdir: Path,
    *extra_args: str,
    profile: Path = CI_PROFILE,
    timeout: int = SNAKEMAKE_TIMEOUT_S,
) -> subprocess.CompletedProcess:
    """Run ``snakemake --profile <profile> -s <snakefile> --directory <workdir>``.

    Fails the test (with Snakemake's output and the SLURM job logs) unless it
    exits 0. Requires the ``slurm_cluster`` fixture.
    """
    cmd = [
        *snakemake_cmd(),
        "--profile",
        str(profile),
        "-s",
        str(snakefile),
        "--directory",
        str(workdir),
        *extra_args,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir, env=_clean_env())
    except subprocess.TimeoutExpired as exc:
        queue = subprocess.run(["squeue", "-a", "--states=all"], capture_output=True, text=True, timeout=30).stdout
        pytest.fail(
            f"snakemake timed out after {timeout}s: {' '.join(cmd)}\n"
            f"--- stderr\n{_text(exc.stderr)[-15000:]}\n--- squeue\n{queue}\n"
            f"--- SLURM job logs\n{_slurm_logs(workdir)}"
        )
    if proc.returncode != 0:
        pytest.fail(
            f"snakemake failed (rc={proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout\n{proc.stdout[-5000:]}\n--- stderr\n{proc.stderr[-15000:]}\n"
            f"--- SLURM job logs\n{_slurm_logs(workdir)}"
        )
    return proc


def submitted_slurm_jobs(snakemake_output: str) -> dict[str, Path]:
    """SLURM job id -> plugin log file, from 'submitted with SLURM jobid' lines."""
    return {
        m.group(1): Path(m.group(2))
        for m in re.finditer(r"submitted with SLURM jobid (\d+) \(log: ([^)]+)\)", snakemake_output)
    }


def test_demo_workflow_runs_on_slurm(slurm_cluster, tmp_path):
    proc = run_snakemake_on_slurm(DEMO_SNAKEFILE, tmp_path)
    output = proc.stdout + proc.stderr

    # the result
    summary = tmp_path / "results" / "summary.txt"
    assert summary.read_text() == "a 14\nb 30\n"

    # 5 jobs (numbers x2, square x2, summarize; 'all' is local) went to SLURM ...
    jobs = submitted_slurm_jobs(output)
    assert len(jobs) == 5, output[-5000:]

    # ... each rule saw its own SLURM_JOB_ID inside the job ...
    seen = {}
    for f in sorted((tmp_path / "results").glob("*.jobid")):
        rule, sample, job_id, *rest = f.read_text().split()
        assert job_id.isdigit(), f"{f.name}: no SLURM_JOB_ID in the job: {f.read_text()!r}"
        seen[job_id] = (rule, sample, rest)
    assert set(seen) == set(jobs), (seen, jobs)
    # threads: 2 -> --cpus-per-task=2 (capped at the node's CPUs)
    expected_cpus = min(2, os.cpu_count() or 1)
    assert sorted(r for r, _, rest in seen.values() if rest == [f"cpus={expected_cpus}"]) == [
        "square",
        "square",
    ], seen

    # ... the plugin wrote one log per job (.snakemake/slurm_logs/rule_*/...) ...
    for job_id, log in jobs.items():
        assert log.is_file(), f"missing SLURM log {log}"
        assert tmp_path / ".snakemake" / "slurm_logs" in log.parents
        assert log.name == f"{job_id}.log"

    # ... and slurmctld itself knows them as completed (squeue keeps finished
    # jobs for MinJobAge=300 s; no sacct/accounting involved).
    q = subprocess.run(
        ["squeue", "-h", "--states=all", "-o", "%i %T", "-j", ",".join(jobs)],
        capture_output=True,
        text=True,
        timeout=30,
        env=_clean_env(),
    )
    states = dict(line.split() for line in q.stdout.splitlines() if line.strip())
    assert states == dict.fromkeys(jobs, "COMPLETED"), q.stdout + q.stderr


def test_full_size_rehearsal_runs_on_slurm(slurm_cluster, tmp_path):
    """The real workflow through SLURM: .test/config-scale on all 500 concepts, every job but the
    merges submitted, the judge jobs against the faulty loopback server (tests/test_rehearsal.py
    checks the same run on --cores all). In CI with CI's cuts (the run CI can afford, in place of a
    small config's), with PROSV_TEST_REHEARSAL=1 at the config's own."""
    from test_rehearsal import (
        assert_every_concept_reached_the_final_tables,
        assert_every_fault_was_survived_once,
        load_rehearse,
        rehearsal_cuts,
    )

    rehearse = load_rehearse()
    cuts = rehearsal_cuts(rehearse, in_ci=True)
    before = set((REPO / ".snakemake" / "slurm_logs").glob("rule_*/**/*.log"))
    report = rehearse.rehearse(tmp_path, profile=str(CI_PROFILE), cuts=cuts, timeout=5400)
    assert_every_concept_reached_the_final_tables(tmp_path)
    assert_every_fault_was_survived_once(report)
    assert report["jobs"]["train"] == 8 and report["executor"] == str(CI_PROFILE)
    # every model rule's jobs went through the cluster: the plugin wrote their SLURM logs
    new_logs = set((REPO / ".snakemake" / "slurm_logs").glob("rule_*/**/*.log")) - before
    rules = {p.relative_to(REPO / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_") for p in new_logs}
    assert rehearse.MODEL_RULES | {"judge", "figures"} <= rules, rules
