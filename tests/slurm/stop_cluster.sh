#!/usr/bin/env bash
# Stop the single-node test cluster started by tests/slurm/start_cluster.sh.
#   - cancels all jobs, stops slurmd and slurmctld (pid files, else by exact
#     process name), waits for them to exit
#   - STOP_MUNGE=1 also stops munged (default: leave it running, it is cheap
#     and other tools may use it)
set -euo pipefail

RUN_DIR=/run/slurm
log() { echo "[stop_cluster] $*" >&2; }

if [[ "$(id -u)" -ne 0 ]]; then
    log "ERROR: must run as root"
    exit 1
fi

if command -v scancel >/dev/null 2>&1 && pgrep -x slurmctld >/dev/null 2>&1; then
    timeout 10 scancel --full --quiet --user=root >/dev/null 2>&1 || true
fi

stop_daemon() {
    local name=$1 pidfile=$2 pids
    pids="$(cat "$pidfile" 2>/dev/null || true)"
    # fall back to the exact process name (pgrep -x: slurmd != slurmctld)
    if [[ -z "$pids" ]] || ! kill -0 "$pids" 2>/dev/null; then
        pids="$(pgrep -x "$name" || true)"
    fi
    if [[ -z "$pids" ]]; then
        log "$name not running"
        return 0
    fi
    log "stopping $name (pid ${pids//$'\n'/ })"
    # shellcheck disable=SC2086
    kill $pids 2>/dev/null || true
    for _ in $(seq 1 30); do
        # shellcheck disable=SC2086
        kill -0 $pids 2>/dev/null || break
        sleep 0.5
    done
    # shellcheck disable=SC2086
    if kill -0 $pids 2>/dev/null; then
        log "$name did not exit, sending SIGKILL"
        # shellcheck disable=SC2086
        kill -9 $pids 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

stop_daemon slurmd "$RUN_DIR/slurmd.pid"
stop_daemon slurmctld "$RUN_DIR/slurmctld.pid"
if [[ "${STOP_MUNGE:-0}" == 1 ]]; then
    stop_daemon munged /run/munge/munged.pid
fi
log "done"
