#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the cluster tests (tests/test_cluster.py).
#
#   bash tests/cluster/slurm.sh start   # install (Debian packages) and start munge + SLURM
#   bash tests/cluster/slurm.sh stop    # stop every daemon this script started, by PID
#   bash tests/cluster/slurm.sh test    # start, run the cluster tests, stop (also on failure)
#
# Needs root and apt-get (or slurmctld, slurmd, slurm-client and munge already installed).
# The configuration, state and logs live in $GMMLAB_SLURM_DIR (default /tmp/gmmlab-slurm); the
# clients find it through SLURM_CONF=$GMMLAB_SLURM_DIR/slurm.conf, which `start` prints.
# One partition 'debug' with this machine's CPUs and memory (minus 1 GB); no accounting
# (sacct fails, as on many small clusters), proctrack/linuxproc and task/none (no cgroups).
set -euo pipefail
DIR=${GMMLAB_SLURM_DIR:-/tmp/gmmlab-slurm}
PIDS=$DIR/started.pids

start() {
  if [ "$(id -u)" != 0 ]; then echo "slurm.sh: starting SLURM needs root" >&2; exit 2; fi
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
      || ! command -v sinfo >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || { echo "slurm.sh: no apt-get to install SLURM" >&2; exit 2; }
    packages=(slurmctld slurmd slurm-client munge)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null \
      || { apt-get update -q >/dev/null \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null; }
  fi
  [ -f "$PIDS" ] && stop
  mkdir -p "$DIR/state" "$DIR/spool"
  local host memory
  host=$(hostname)
  memory=$(awk '/MemTotal/ {print int($2 / 1024) - 1024}' /proc/meminfo)
  cat > "$DIR/slurm.conf" <<CONF
ClusterName=gmmlab
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
NodeName=$host CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  : > "$PIDS"
  if [ ! -S /run/munge/munge.socket.2 ]; then
    [ -f /etc/munge/munge.key ] || /usr/sbin/mungekey --create
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
    cat /run/munge/munged.pid >> "$PIDS"
  fi
  slurmctld -f "$DIR/slurm.conf"
  slurmd -f "$DIR/slurm.conf"
  for _ in $(seq 50); do
    [ -s "$DIR/slurmctld.pid" ] && [ -s "$DIR/slurmd.pid" ] \
      && SLURM_CONF="$DIR/slurm.conf" sinfo --noheader --format=%t 2>/dev/null | grep -q idle && break
    sleep 0.2
  done
  cat "$DIR/slurmctld.pid" "$DIR/slurmd.pid" >> "$PIDS"
  SLURM_CONF="$DIR/slurm.conf" sinfo --noheader --format=%t | grep -q idle \
    || { echo "slurm.sh: the node did not come up; see $DIR/slurmctld.log and slurmd.log" >&2; stop; exit 1; }
  echo "slurm.sh: one-node cluster up ($(nproc) CPUs, ${memory} MB); export SLURM_CONF=$DIR/slurm.conf"
}

stop() {
  [ -f "$PIDS" ] || return 0
  while read -r pid; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done < "$PIDS"
  rm -f "$PIDS"
  echo "slurm.sh: stopped the daemons it started"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  test)
    start
    trap stop EXIT
    cd "$(dirname "$0")/../.."
    SLURM_CONF="$DIR/slurm.conf" .venv/bin/python -m pytest -m cluster tests/test_cluster.py \
      tests/test_launchers.py
    ;;
  *) echo "usage: $0 start | stop | test" >&2; exit 2 ;;
esac
