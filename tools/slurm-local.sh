#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, loopback only, for the Slurm executor's tests and
# CI. Uses Debian's packages (Slurm 22.05, munge); installs them with apt-get when missing.
#
# Usage: tools/slurm-local.sh start|stop|status
#   start   install the packages if missing, write /etc/slurm/slurm.conf (the clients' default
#           path, so no environment is needed), start munged, slurmctld and slurmd, and wait until
#           the node is idle. Says so and exits 0 when the cluster is already up.
#   stop    shut the daemons down and wait until they are gone; exits 0 when already down.
#           Jobs still running keep running (their slurmstepd outlives slurmd) and are picked
#           up again by the next start; scancel them first for a clean machine.
#   status  print sinfo; exit 0 when slurmctld answers and slurmd runs, 1 otherwise.
# Environment:
#   TENAS_SLURM_DIR           logs, pid files and Slurm state (default /tmp/tenas-slurm); the
#                             state keeps job ids and finished jobs across stop and start:
#                             remove the folder after stop to start afresh
#   TENAS_SLURM_TIMEOUT       seconds start waits for each daemon (default 60)
#   TENAS_SLURM_REPLACE_CONF  1: back up an /etc/slurm/slurm.conf this script did not write and
#                             replace it (otherwise start refuses to touch it)
# start and stop need root or passwordless sudo.
set -euo pipefail

# Absolute, since slurm.conf names files in it.
dir=$(realpath -m "${TENAS_SLURM_DIR:-/tmp/tenas-slurm}")
timeout_s=${TENAS_SLURM_TIMEOUT:-60}
conf=/etc/slurm/slurm.conf
cgroup_conf=/etc/slurm/cgroup.conf
marker="# Written by tenas tools/slurm-local.sh"
munge_key=/etc/munge/munge.key
munge_pid=/run/munge/munged.pid
node=$(hostname -s)

say() { echo "slurm-local: $*"; }
die() {
    echo "slurm-local: $*" >&2
    exit 1
}

# Re-runs this script under sudo when not root; root is needed to run slurmd and write /etc.
become_root() {
    [ "$(id -u)" -eq 0 ] && return 0
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        exec sudo -n env TENAS_SLURM_DIR="$dir" TENAS_SLURM_TIMEOUT="$timeout_s" \
            TENAS_SLURM_REPLACE_CONF="${TENAS_SLURM_REPLACE_CONF:-}" \
            bash "$(readlink -f "$0")" "$@"
    fi
    die "'$1' needs root: run it as root or give $(id -un) passwordless sudo"
}

# The pid in a pid file; empty when the file is gone (a daemon removes its own as it exits).
read_pid() { cat "$1" 2>/dev/null || true; }
# Whether PID is a live process named NAME. A stale pid file may name another process; a zombie
# counts as gone, since the init of a container can be slow to reap a daemon.
running() {
    local pid=$1 name=$2
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] &&
        ! awk '{exit $3 != "Z"}' "/proc/$pid/stat" 2>/dev/null
}
pid_alive() { running "$(read_pid "$1")" "$2"; } # pid file, process name

# A setting from our slurm.conf, so that stop finds the pid files start used even when
# TENAS_SLURM_DIR differs between the two calls.
conf_value() {
    if [ -f "$conf" ] && grep -qxF "$marker" "$conf"; then
        sed -n "s/^$1=//p" "$conf" | head -n 1
    fi
}
ctld_pid_file() { local v; v=$(conf_value SlurmctldPidFile); echo "${v:-$dir/slurmctld.pid}"; }
slurmd_pid_file() { local v; v=$(conf_value SlurmdPidFile); echo "${v:-$dir/slurmd.pid}"; }

munge_ok() { command -v munge >/dev/null 2>&1 && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
ctld_up() { command -v scontrol >/dev/null 2>&1 && timeout 15 scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_state() { timeout 15 sinfo -h -n "$node" -o %T 2>/dev/null | head -n 1; }

# Polls CMD until it succeeds; false after SECONDS_MAX seconds. Usage: wait_for SECONDS_MAX CMD...
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.5
    done
}

show_logs_and_die() {
    echo "slurm-local: $*" >&2
    local log
    for log in "$dir/munge/munged.log" "$dir/slurmctld.log" "$dir/slurmctld.out" \
        "$dir/slurmd.log" "$dir/slurmd.out"; do
        if [ -s "$log" ]; then
            echo "---- last lines of $log" >&2
            tail -n 20 "$log" >&2
        fi
    done
    exit 1
}

install_packages() {
    local missing=0 f
    for f in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sinfo /usr/sbin/munged; do
        [ -x "$f" ] || missing=1
    done
    [ "$missing" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 ||
        die "Slurm or munge is missing and there is no apt-get: install Slurm 22.05 and munge"
    say "installing slurmctld slurmd slurm-client munge (log: $dir/apt.log)"
    # Without recommends: 8 packages instead of 42 (plugin -dev packages nothing here uses).
    if ! { apt-get update -q &&
        apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge; } \
        >"$dir/apt.log" 2>&1 </dev/null; then
        tail -n 20 "$dir/apt.log" >&2
        die "apt-get failed; full log in $dir/apt.log"
    fi
}

# MemTotal in MiB less 5%, so that slurmd never finds less memory than configured and drains
# the node.
real_memory_mib() { awk '/^MemTotal:/ {print int($2 / 1024 * 0.95)}' /proc/meminfo; }

write_conf() {
    mkdir -p /etc/slurm
    if [ -e "$conf" ] && ! grep -qxF "$marker" "$conf"; then
        [ "${TENAS_SLURM_REPLACE_CONF:-}" = 1 ] ||
            die "$conf exists and was not written by this script; set TENAS_SLURM_REPLACE_CONF=1 to back it up and replace it"
        local backup
        backup="$conf.before-tenas.$(date +%Y%m%d-%H%M%S)"
        cp -p "$conf" "$backup"
        say "backed up $conf to $backup"
    fi
    cat >"$conf.tmp" <<EOF
$marker
# A single-node cluster on the loopback interface; see the script for how to start and stop it.
ClusterName=tenas-local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
# No cgroups: process tracking by /proc, no task binding, no accounting daemon.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# There is no mail program; slurmctld logs an error at every start without one.
MailProg=/bin/true
# Schedule a submitted batch job at the controller's next one-second tick instead of batching
# submissions for 3 s (the default): submission to start goes from ~2.9 s to ~0.6 s.
SchedulerParameters=batch_sched_delay=0
# Without slurmdbd, scontrol show job is the only record of a finished job: keep it an hour.
MinJobAge=3600
MaxArraySize=100001
MaxJobCount=200000
# slurmd finds its node by the short hostname; the addresses are given, so the name need not
# resolve.
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$(real_memory_mib) State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$conf.tmp" "$conf"
    if [ ! -e "$cgroup_conf" ] || grep -qxF "$marker" "$cgroup_conf"; then
        printf '%s\nConstrainCores=no\n' "$marker" >"$cgroup_conf"
    fi
}

start_munge() {
    munge_ok && return 0
    if [ ! -s "$munge_key" ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of="$munge_key" bs=1024 count=1 status=none
    fi
    mkdir -p /run/munge /var/lib/munge /var/log/munge "$dir/munge"
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge "$dir/munge"
    chmod 700 /etc/munge "$dir/munge"
    chmod 400 "$munge_key"
    # As the munge user, so munged needs no --force (it refuses to run as root without it).
    runuser -u munge -- /usr/sbin/munged --log-file="$dir/munge/munged.log" \
        >"$dir/munge/munged.out" 2>&1 </dev/null ||
        show_logs_and_die "munged did not start"
    wait_for "$timeout_s" munge_ok || show_logs_and_die "munge -n | unmunge still fails after ${timeout_s}s"
}

# Runs a Slurm daemon in the foreground (-D) of its own session, detached from this shell.
start_daemon() {
    setsid -f "/usr/sbin/$1" -D >"$dir/$1.out" 2>&1 </dev/null
}

node_ready() {
    case "$(node_state)" in
        idle | mixed | allocated | completing) return 0 ;;
        *) return 1 ;;
    esac
}

start() {
    if munge_ok && pid_alive "$(ctld_pid_file)" slurmctld && pid_alive "$(slurmd_pid_file)" slurmd &&
        ctld_up; then
        say "already running"
        sinfo
        return 0
    fi
    mkdir -p "$dir/state" "$dir/spool"
    install_packages
    write_conf
    start_munge
    if ! pid_alive "$dir/slurmctld.pid" slurmctld; then
        start_daemon slurmctld
    fi
    wait_for "$timeout_s" ctld_up || show_logs_and_die "slurmctld did not answer scontrol ping within ${timeout_s}s"
    # slurmd registers with slurmctld on start, so it comes second.
    if ! pid_alive "$dir/slurmd.pid" slurmd; then
        start_daemon slurmd
    fi
    if ! wait_for "$timeout_s" node_ready; then
        sinfo -R >&2 || true
        show_logs_and_die "node $node is '$(node_state)', not idle, after ${timeout_s}s"
    fi
    sinfo
    say "up; clients read $conf, so no environment is needed; logs in $dir"
}

# Ends a daemon: SIGTERM (a clean shutdown for all three), then SIGKILL after the timeout.
end_daemon() {
    local pid=$1 name=$2 deadline=$((SECONDS + timeout_s))
    running "$pid" "$name" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while running "$pid" "$name"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "$name (pid $pid) still alive ${timeout_s}s after SIGTERM: killing it"
            kill -KILL "$pid" 2>/dev/null || true
            return 0
        fi
        sleep 0.2
    done
}

slurm_gone() { ! running "$1" slurmctld && ! running "$2" slurmd; }

stop() {
    local ctld_pid slurmd_pid munged_pid
    ctld_pid=$(read_pid "$(ctld_pid_file)")
    slurmd_pid=$(read_pid "$(slurmd_pid_file)")
    munged_pid=$(read_pid "$munge_pid")
    if ctld_up; then
        # Shuts down slurmctld and the slurmd registered with it.
        scontrol shutdown
        wait_for 15 slurm_gone "$ctld_pid" "$slurmd_pid" || true
    fi
    end_daemon "$ctld_pid" slurmctld
    end_daemon "$slurmd_pid" slurmd
    end_daemon "$munged_pid" munged
    say "stopped"
}

status() {
    if ! ctld_up; then
        say "not running"
        return 1
    fi
    sinfo
    # slurmctld notices a dead slurmd only after SlurmdTimeout (300 s).
    if ! pid_alive "$(slurmd_pid_file)" slurmd; then
        say "slurmctld answers but slurmd is not running"
        return 1
    fi
}

case "${1:-}" in
    start)
        become_root "$@"
        start
        ;;
    stop)
        become_root "$@"
        stop
        ;;
    status) status ;;
    *) die "usage: $0 start|stop|status" ;;
esac
