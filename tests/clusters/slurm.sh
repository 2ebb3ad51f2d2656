#!/usr/bin/env bash
# A one-node Slurm on this machine, for the tests: install | start | stop | status.
#
#   tests/clusters/slurm.sh install   # Debian's slurm-wlm and munge (needs root and apt)
#   tests/clusters/slurm.sh start     # munged, slurmctld, slurmd; waits until the node is IDLE
#   tests/clusters/slurm.sh stop      # stops the daemons by their pid files
#
# Settings that work without systemd or cgroups (see the README, "On a Slurm,
# Grid Engine or PBS cluster"); state is wiped at each start so that no job of
# an earlier run is restored.
set -euo pipefail

ETC=/etc/slurm
RUN=/run/parallelize-slurm
HOST=$(hostname -s)

install_packages() {
    if command -v sbatch >/dev/null && command -v slurmctld >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null \
        || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null; }
}

write_conf() {
    local mem
    mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    mkdir -p "$ETC" /var/spool/slurmctld /var/spool/slurmd "$RUN"
    cat >"$ETC/slurm.conf" <<CONF
ClusterName=parallelize
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1
MinJobAge=300
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$RUN/slurmctld.log
SlurmdLogFile=$RUN/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=8 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return 0
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "munged did not start" >&2
    return 1
}

start() {
    stop >/dev/null 2>&1 || true
    write_conf
    start_munge
    rm -rf /var/spool/slurmctld/* /var/spool/slurmd/*
    /usr/sbin/slurmctld
    /usr/sbin/slurmd
    for _ in $(seq 150); do
        if scontrol show node "$HOST" 2>/dev/null | grep -q "State=IDLE" \
            && scontrol show node "$HOST" 2>/dev/null | grep -q "SlurmdStartTime=[0-9]"; then
            return 0
        fi
        sleep 0.2
    done
    echo "the Slurm node did not become IDLE; see $RUN/slurmctld.log and $RUN/slurmd.log" >&2
    return 1
}

stop() {
    for name in slurmd slurmctld; do
        if [ -f "$RUN/$name.pid" ]; then
            kill "$(cat "$RUN/$name.pid")" 2>/dev/null || true
            rm -f "$RUN/$name.pid"
        fi
    done
}

status() {
    scontrol show node "$HOST" | head -5
}

case "${1:-}" in
    install) install_packages ;;
    start | stop | status) "$1" ;;
    *) echo "usage: slurm.sh install|start|stop|status" >&2; exit 2 ;;
esac
