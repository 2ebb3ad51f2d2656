#!/usr/bin/env bash
# A one-node Grid Engine on this machine, for the tests: install | start | stop | status | env.
#
#   tests/clusters/sge.sh install   # Debian's gridengine-master, -exec, -client, preseeded (root, apt)
#   tests/clusters/sge.sh start     # sge_qmaster, the configuration below, sge_execd; waits until
#                                   # the queue all.q@<host> is up (a no-op when it already is)
#   tests/clusters/sge.sh stop      # stops both daemons by their pid files
#   tests/clusters/sge.sh env       # prints the "export SGE_ROOT=... SGE_CELL=..." a client needs
#   tests/clusters/sge.sh status    # the queue and the host as Grid Engine sees them
#
# What a bare Debian install lacks, and is set here (facts in /work/shared/CLUSTERS.md):
# host_aliases (else every client fails: 'client IP resolved to host name "localhost"'),
# min_uid/min_gid 0 (jobs may run as root), schedule_interval 0:0:1 (the default 15 s
# makes the first job wait 17 s), the host as submit and exec host, a parallel
# environment "smp", and a queue all.q with 8 slots (so small arrays run at once, as
# the test Slurm declares 8 CPUs) and no load threshold (a busy 2-core machine would
# otherwise put the queue in alarm and nothing would start). The queue's shell and
# shell_start_mode stay the defaults (/bin/sh, posix_compliant), as on real clusters:
# the dialect runs a script as the command "/bin/bash SCRIPT" (qsub -b y -shell no).
set -euo pipefail

export SGE_ROOT=/var/lib/gridengine
export SGE_CELL=default
COMMON=$SGE_ROOT/$SGE_CELL/common
SPOOL=/var/spool/gridengine
WORK=/run/parallelize-sge
HOST=$(hostname)
QUEUE=all.q
SLOTS=8

install_packages() {
    if command -v qsub >/dev/null && [ -x /usr/sbin/sge_qmaster ] && [ -x /usr/sbin/sge_execd ] \
        && [ -f "$COMMON/bootstrap" ]; then
        return 0
    fi
    # shared/* are the templates every gridengine package asks; with them preseeded the
    # master's postinst creates the cell (init_cluster) and exec's writes act_qmaster.
    debconf-set-selections <<SEED
gridengine-common shared/gridenginemaster string $HOST
gridengine-common shared/gridenginecell string $SGE_CELL
gridengine-common shared/gridengineconfig boolean true
SEED
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gridengine-master gridengine-exec gridengine-client >/dev/null
}

alive() { # alive PIDFILE: the daemon named in it is running
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

qmaster_pidfile() { echo "$SPOOL/qmaster/qmaster.pid"; }

execd_pidfiles() { # execd names its spool folder as it resolves itself ("localhost" here)
    ls "$SPOOL"/execd/*/execd.pid 2>/dev/null || true
}

execd_alive() {
    local f
    for f in $(execd_pidfiles); do
        alive "$f" && return 0
    done
    return 1
}

wait_for() { # wait_for TENTHS COMMAND...: true once COMMAND succeeds
    local n=$1
    shift
    for _ in $(seq "$n"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

qc() { # qc ARGS...: qconf, its chatter kept in a log and shown only when it fails
    qconf "$@" >>"$WORK/qconf.log" 2>&1 || {
        echo "qconf $* failed:" >&2
        tail -5 "$WORK/qconf.log" >&2
        return 1
    }
}

set_attr() { # set_attr FILE NAME VALUE: rewrite "NAME <old>" as "NAME VALUE"
    sed -i -E "s|^($2[[:space:]]+).*|\\1$3|" "$1"
}

configure() {
    mkdir -p "$WORK"
    if [ "$(qconf -sconf global | awk '$1 == "min_uid" {print $2}')" != 0 ] \
        || [ "$(qconf -sconf global | awk '$1 == "min_gid" {print $2}')" != 0 ]; then
        qconf -sconf global >"$WORK/global" # -Mconf takes the configuration's name from the file's
        set_attr "$WORK/global" min_uid 0
        set_attr "$WORK/global" min_gid 0
        qc -Mconf "$WORK/global"
    fi
    if [ "$(qconf -ssconf | awk '$1 == "schedule_interval" {print $2}')" != 0:0:1 ]; then
        qconf -ssconf >"$WORK/scheduler"
        set_attr "$WORK/scheduler" schedule_interval 0:0:1
        qc -Msconf "$WORK/scheduler"
    fi
    qconf -ss 2>/dev/null | grep -qx "$HOST" || qc -as "$HOST"
    if ! qconf -se "$HOST" >/dev/null 2>&1; then
        printf '%s\n' "hostname $HOST" "load_scaling NONE" "complex_values NONE" "user_lists NONE" \
            "xuser_lists NONE" "projects NONE" "xprojects NONE" "usage_scaling NONE" \
            "report_variables NONE" >"$WORK/exechost"
        qc -Ae "$WORK/exechost"
    fi
    if ! qconf -sp smp >/dev/null 2>&1; then
        printf '%s\n' "pe_name smp" "slots 999" "user_lists NONE" "xuser_lists NONE" \
            "start_proc_args NONE" "stop_proc_args NONE" 'allocation_rule $pe_slots' \
            "control_slaves FALSE" "job_is_first_task TRUE" "urgency_slots min" \
            "accounting_summary FALSE" "qsort_args NONE" >"$WORK/pe"
        qc -Ap "$WORK/pe"
    fi
    local verb=-Mq
    if qconf -sq "$QUEUE" >"$WORK/queue" 2>/dev/null; then
        if grep -qE "^hostlist +$HOST\$" "$WORK/queue" && grep -qE "^slots +$SLOTS\$" "$WORK/queue" \
            && grep -qE '^load_thresholds +NONE$' "$WORK/queue" && grep -qE '^pe_list +smp$' "$WORK/queue"; then
            return 0
        fi
    else
        verb=-Aq
        qconf -sq >"$WORK/queue" # with no name: the template
        set_attr "$WORK/queue" qname "$QUEUE"
    fi
    set_attr "$WORK/queue" hostlist "$HOST"
    set_attr "$WORK/queue" slots "$SLOTS"
    set_attr "$WORK/queue" load_thresholds NONE
    set_attr "$WORK/queue" pe_list smp
    qc "$verb" "$WORK/queue"
}

queue_up() { # the queue instance reports a load and no state (u: execd unheard, a: alarm, d/E/s...)
    local out
    out=$(qstat -f -xml -q "$QUEUE@$HOST" 2>/dev/null) || return 1
    grep -q '<load_avg>' <<<"$out" && ! grep -q '<state>' <<<"$out"
}

start() {
    [ -f "$COMMON/bootstrap" ] || {
        echo "Grid Engine is not installed (or its cell $SGE_CELL was not created): tests/clusters/sge.sh install" >&2
        return 1
    }
    # The cell names its master and resolves client names; both follow this host's name.
    [ "$(cat "$COMMON/act_qmaster" 2>/dev/null)" = "$HOST" ] || echo "$HOST" >"$COMMON/act_qmaster"
    [ "$(cat "$COMMON/host_aliases" 2>/dev/null)" = "$HOST localhost" ] || echo "$HOST localhost" >"$COMMON/host_aliases"
    if ! alive "$(qmaster_pidfile)"; then
        /usr/sbin/sge_qmaster # daemonizes; as root it runs as the admin user sgeadmin
    fi
    wait_for 100 qstat -g c || {
        echo "sge_qmaster did not answer in 10 s; see $SPOOL/qmaster/messages" >&2
        return 1
    }
    configure
    if ! execd_alive; then
        /usr/sbin/sge_execd
    fi
    wait_for 300 queue_up || {
        echo "the queue $QUEUE@$HOST did not come up in 30 s; see $SPOOL/execd/*/messages" >&2
        qstat -f -q "$QUEUE" >&2 || true
        return 1
    }
}

stop_pidfile() { # stop_pidfile FILE: TERM, then KILL after 20 s
    local pid
    [ -f "$1" ] || return 0
    pid=$(cat "$1")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        # Measured here: sge_execd exits 1-2 s after TERM, sge_qmaster 10 s (a controlled
        # shutdown; qconf -km takes as long). KILL is the last resort: it skips the spool's
        # clean close.
        for _ in $(seq 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

stop() {
    local f
    for f in $(execd_pidfiles); do
        stop_pidfile "$f"
    done
    stop_pidfile "$(qmaster_pidfile)"
}

status() {
    qstat -f -q "$QUEUE"
    qhost -h "$HOST"
}

env_lines() {
    echo "export SGE_ROOT=$SGE_ROOT"
    echo "export SGE_CELL=$SGE_CELL"
}

case "${1:-}" in
    install) install_packages ;;
    start | stop | status) "$1" ;;
    env) env_lines ;;
    *) echo "usage: sge.sh install|start|stop|status|env" >&2; exit 2 ;;
esac
