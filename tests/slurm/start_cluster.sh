#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster on this machine (as root).
#
# Used by tests/test_slurm.py (and CI) to run Snakemake workflows through
# snakemake-executor-plugin-slurm against a *real* slurmctld/slurmd.
#
# What it does (idempotent: safe to run again while the cluster is up):
#   1. apt-get install slurm-wlm + munge if missing (Debian/Ubuntu)
#   2. create the munge key if missing, start munged (as the munge user)
#   3. write /etc/slurm/slurm.conf: one node (this host, real CPUs, memory
#      a bit under the real memory), one default partition, no accounting,
#      no cgroups (proctrack/linuxproc + task/none)
#   4. start slurmctld + slurmd as root (no systemd needed); if they are
#      already running with the same config, nothing is restarted
#   5. wait until the node is idle and `srun hostname` works; on failure dump
#      the daemon logs and exit non-zero
#
# Environment knobs:
#   SLURM_START_TIMEOUT   seconds to wait for the cluster (default 60)
#   SLURM_PARTITION       partition name (default "debug")
#   SLURM_CLUSTER_NAME    ClusterName (default "prosvtest")
#   SLURM_MEM_RESERVE_MB  memory kept back from RealMemory (default 10 % of
#                         total, at least 512 MB)
#   SLURM_OVERWRITE_CONF=1  replace an /etc/slurm/slurm.conf that this script
#                         did not write (default: refuse, it may be a real cluster)
#
# Stop with tests/slurm/stop_cluster.sh.
set -euo pipefail

TIMEOUT="${SLURM_START_TIMEOUT:-60}"
PARTITION="${SLURM_PARTITION:-debug}"
CLUSTER_NAME="${SLURM_CLUSTER_NAME:-prosvtest}"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm

log() { echo "[start_cluster] $*" >&2; }

dump_diagnostics() {
    log "---- diagnostics ----"
    local f n
    for f in /var/log/munge/munged.log "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" \
             "$LOG_DIR/slurmctld.stdout" "$LOG_DIR/slurmd.stdout"; do
        n=40
        [[ "$f" == *munged.log ]] && n=15
        if [[ -s "$f" ]]; then
            log "== tail -n $n $f"
            tail -n "$n" "$f" >&2 || true
        fi
    done
    log "== processes"
    pgrep -a -x 'munged|slurmctld|slurmd' >&2 || true
    log "== sinfo"
    timeout 10 sinfo -N -l >&2 2>&1 || true
    log "== scontrol show node"
    timeout 10 scontrol show node >&2 2>&1 || true
    log "== $CONF"
    cat "$CONF" >&2 2>/dev/null || true
}

fail() {
    log "ERROR: $*"
    dump_diagnostics
    exit 1
}

if [[ "$(id -u)" -ne 0 ]]; then
    echo "[start_cluster] ERROR: must run as root (starts slurmctld/slurmd/munged)" >&2
    exit 1
fi

# --------------------------------------------------------------------------
# 1. packages
# --------------------------------------------------------------------------
need_pkgs=()
command -v slurmctld >/dev/null 2>&1 || need_pkgs+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || need_pkgs+=(slurmd)
command -v sbatch >/dev/null 2>&1 || need_pkgs+=(slurm-client)
command -v munged >/dev/null 2>&1 || need_pkgs+=(munge)
command -v pgrep >/dev/null 2>&1 || need_pkgs+=(procps)  # pgrep/free/ps (slim images)
if ((${#need_pkgs[@]})); then
    log "installing slurm-wlm munge procps (missing: ${need_pkgs[*]})"
    command -v apt-get >/dev/null 2>&1 || { log "ERROR: no apt-get; install slurm-wlm and munge"; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge procps >/dev/null
fi
log "$(slurmd -V) / $(munged -V 2>&1 | head -n1)"

# --------------------------------------------------------------------------
# 2. munge
# --------------------------------------------------------------------------
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating munge key"
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
    log "starting munged"
    # stale pid/socket files from a killed munged make it refuse to start
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    # munged daemonizes itself; keep our stdio out of it so that callers that
    # capture our output (pytest's subprocess.run) do not wait for EOF forever
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1 ||
            fail "munged failed to start"
    else
        /usr/sbin/munged --force </dev/null >/dev/null 2>&1 || fail "munged failed to start"
    fi
    for _ in $(seq 1 20); do munge_ok && break; sleep 0.5; done
    munge_ok || fail "munge does not work after starting munged"
fi

# --------------------------------------------------------------------------
# 3. slurm.conf
# --------------------------------------------------------------------------
HOST="$(hostname -s)"
NCPUS="$(nproc)"
MEM_TOTAL_MB="$(free -m | awk '/^Mem:/ {print $2}')"
RESERVE_MB="${SLURM_MEM_RESERVE_MB:-$((MEM_TOTAL_MB / 10))}"
if ((RESERVE_MB < 512)); then RESERVE_MB=512; fi
REAL_MEM_MB=$((MEM_TOTAL_MB - RESERVE_MB))
if ((REAL_MEM_MB < 256)); then REAL_MEM_MB=256; fi

# The short hostname must resolve, slurmd identifies itself by it. Use its
# address for NodeAddr (falls back to loopback when it does not resolve).
NODE_ADDR="$(getent hosts "$HOST" | awk '{print $1; exit}')"
if [[ -z "$NODE_ADDR" ]]; then
    log "WARNING: '$HOST' does not resolve, using 127.0.0.1 as its address"
    NODE_ADDR=127.0.0.1
fi

install -d -m 0755 "$CONF_DIR" "$LOG_DIR" "$RUN_DIR" /var/spool/slurmctld /var/spool/slurmd

new_conf="$(mktemp)"
trap 'rm -f "$new_conf"' EXIT
cat >"$new_conf" <<EOF
# Generated by tests/slurm/start_cluster.sh -- single-node test cluster.
# Do not edit by hand: it is rewritten on every start.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$HOST($NODE_ADDR)
# Daemons run as root: no systemd and no slurm user setup needed.
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
# No cgroups (containers, gVisor, CI runners): plain /proc process tracking.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# No accounting / slurmdbd: sacct does not work, use squeue for job status.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
# Keep finished jobs visible to squeue for 5 min. snakemake-executor-plugin-slurm
# polls with squeue only if MinJobAge >= 3 * its first status check delay.
MinJobAge=300
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=$HOST NodeAddr=$NODE_ADDR CPUs=$NCPUS RealMemory=$REAL_MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

# Never clobber a real cluster's configuration.
if [[ -s "$CONF" ]] && ! grep -q '^# Generated by tests/slurm/start_cluster.sh' "$CONF" &&
    [[ "${SLURM_OVERWRITE_CONF:-0}" != 1 ]]; then
    log "ERROR: $CONF exists and was not written by this script; refusing to overwrite"
    log "       it (set SLURM_OVERWRITE_CONF=1 to replace it with the test config)"
    exit 1
fi

conf_changed=0
if ! cmp -s "$new_conf" "$CONF"; then
    conf_changed=1
    install -m 0644 "$new_conf" "$CONF"
    log "wrote $CONF (node $HOST: CPUs=$NCPUS RealMemory=$REAL_MEM_MB, partition $PARTITION)"
fi

# --------------------------------------------------------------------------
# 4. daemons
# --------------------------------------------------------------------------
# pgrep -x matches the process name exactly; slurmd would otherwise match
# slurmctld (and the reverse) with a pattern.
running() { pgrep -x "$1" >/dev/null 2>&1; }

stop_daemon() {
    local name=$1 pidfile="$RUN_DIR/$1.pid" pid
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    [[ -z "$pid" ]] && pid="$(pgrep -x "$name" | head -n1 || true)"
    [[ -z "$pid" ]] && return 0
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

if ((conf_changed)); then
    # New config: restart whatever runs with the old one.
    running slurmd && stop_daemon slurmd
    running slurmctld && stop_daemon slurmctld
fi

if ! running slurmctld; then
    log "starting slurmctld"
    # -c: start clean (no jobs/node state from an earlier run of the test cluster)
    slurmctld -c </dev/null >>"$LOG_DIR/slurmctld.stdout" 2>&1 || fail "slurmctld failed to start"
fi
if ! running slurmd; then
    log "starting slurmd"
    slurmd </dev/null >>"$LOG_DIR/slurmd.stdout" 2>&1 || fail "slurmd failed to start"
fi

# --------------------------------------------------------------------------
# 5. wait until usable
# --------------------------------------------------------------------------
deadline=$((SECONDS + TIMEOUT))
state=""
while ((SECONDS < deadline)); do
    running slurmctld || fail "slurmctld died"
    running slurmd || fail "slurmd died"
    state="$(timeout 5 sinfo -h -n "$HOST" -o '%T' 2>/dev/null | head -n1 || true)"
    case "$state" in
        idle | mixed | allocated | completing) break ;;
        down* | drain* | fail*)
            # e.g. left over from an earlier run; ReturnToService=2 normally
            # handles this, but be explicit.
            timeout 5 scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
case "$state" in
    idle | mixed | allocated | completing) ;;
    *) fail "node $HOST not idle within ${TIMEOUT}s (state: '${state:-no answer}')" ;;
esac

remaining=$((deadline - SECONDS))
if ((remaining < 15)); then remaining=15; fi
out="$(timeout "$remaining" srun -N1 -n1 -t 1 --mem=10 -J start_cluster_check hostname 2>&1)" ||
    fail "test job 'srun hostname' failed: $out"
log "cluster up: node $HOST $state, partition $PARTITION, srun hostname -> $out"
