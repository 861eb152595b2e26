#!/usr/bin/env bash
# Stops the SLURM dev cluster that start.sh started: only the daemons named by
# the pid files in its state folder (never by process name, so a system SLURM,
# munge or MariaDB is never touched). Idempotent. Keeps the state folder, so
# the accounting database (sacct history) and job ids survive a restart;
# `rm -rf "$MUSCLEVISION_SLURM_DIR"` after stopping resets everything.
#
# Environment: MUSCLEVISION_SLURM_DIR (default /tmp/musclevision-slurm).
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/lib.sh
source "$SCRIPT_DIR/lib.sh"
require_root "$@"

export SLURM_CONF="$SLURM_CONF_FILE"
T0="$(now)"

running=()
for d in "${DAEMONS[@]}"; do
    daemon_pid "$d" >/dev/null && running+=("$d")
done

# Removes /etc/slurm/slurm.conf only if it is start.sh's symlink to this
# folder, so clients do not keep pointing at a stopped cluster.
unlink_etc_conf() {
    if [[ -L "$SYSTEM_SLURM_CONF" && "$(readlink -- "$SYSTEM_SLURM_CONF")" == "$SLURM_CONF_FILE" ]]; then
        rm -f -- "$SYSTEM_SLURM_CONF"
    fi
}

if ((${#running[@]} == 0)); then
    for d in "${DAEMONS[@]}"; do rm -f -- "$(pid_file_of "$d")"; done
    unlink_etc_conf
    echo "SLURM dev cluster in $STATE_DIR is not running; nothing to stop."
    exit 0
fi

# Jobs' slurmstepd and user processes are not children of slurmd and would
# outlive it; cancel them through SLURM first (they show as CANCELLED in sacct).
if daemon_pid slurmctld >/dev/null && daemon_pid slurmd >/dev/null; then
    job_ids="$(squeue -h -o '%A' 2>/dev/null | tr '\n' ' ' || true)"
    if [[ -n "${job_ids// /}" ]]; then
        echo "Cancelling jobs: $job_ids"
        # shellcheck disable=SC2086 # word splitting of the id list is wanted
        scancel $job_ids 2>/dev/null || true
        # KillWait is 5 s; allow for the SIGKILL round and the epilog.
        # shellcheck disable=SC2016 # expands in the child shell, on each try
        wait_until 30 bash -c '[[ -z "$(squeue -h -o %A 2>/dev/null)" ]]' ||
            echo "  warning: jobs still listed after 30 s: $(squeue -h -o '%A %T' | tr '\n' ' ')" >&2
    fi
fi

stopped=()
for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    d="${DAEMONS[i]}"
    # MariaDB flushes InnoDB on shutdown; give it longer before SIGKILL.
    grace=30
    [[ "$d" == mariadbd ]] && grace=60
    rc=0
    pid="$(stop_daemon "$d" "$grace")" || rc=$?
    case "$rc" in
        0) stopped+=("$d ($pid)") ;;
        2) die "$d survived SIGKILL (pid file $(pid_file_of "$d"))" "$(log_file_of "$d")" ;;
    esac
done
unlink_etc_conf
echo "Stopped ${stopped[*]} in $(elapsed_since "$T0") s. State kept in $STATE_DIR."
