# shellcheck shell=bash disable=SC2034 # the variables are used by the sourcing scripts
# Shared by start.sh and stop.sh (sourced, not executed).
#
# Everything the dev cluster owns lives under one state folder so that it can
# coexist with (and never touch) a system SLURM, munge or MariaDB on the same
# machine, and so that `rm -rf` of that folder after stop.sh resets it fully.

STATE_DIR="${MUSCLEVISION_SLURM_DIR:-/tmp/musclevision-slurm}"
# Daemons resolve paths after chdir/daemonizing, so the folder must be absolute.
STATE_DIR="$(realpath -m -- "$STATE_DIR")"
# slurm.conf has no quoting, so a path with blanks cannot be written into it.
if [[ "$STATE_DIR" =~ [[:space:]] ]]; then
    echo "ERROR: MUSCLEVISION_SLURM_DIR must not contain whitespace: '$STATE_DIR'" >&2
    exit 1
fi

# Ports: SLURM's defaults, shiftable when a system SLURM already uses them.
PORT_BASE="${MUSCLEVISION_SLURM_PORT_BASE:-6817}"
SLURMCTLD_PORT="$PORT_BASE"
SLURMD_PORT="$((PORT_BASE + 1))"
SLURMDBD_PORT="$((PORT_BASE + 2))"

# Per-owner subfolders: munged and mariadbd run as their own users and must be
# able to (re)create their pid/socket/log files, while SLURM runs as root.
SLURM_CONF_FILE="$STATE_DIR/slurm.conf"
SLURMDBD_CONF_FILE="$STATE_DIR/slurmdbd.conf"
ENV_FILE="$STATE_DIR/env.sh"
SLURM_DIR="$STATE_DIR/slurm"
MUNGE_DIR="$STATE_DIR/munge"
MARIADB_DIR="$STATE_DIR/mariadb"

MUNGE_SOCKET="$MUNGE_DIR/munge.socket"
MUNGE_KEY="$MUNGE_DIR/munge.key"
MARIADB_SOCKET="$MARIADB_DIR/mariadbd.sock"

# /etc/slurm/slurm.conf is the only place SLURM clients look when SLURM_CONF is
# not in their environment (Debian builds with sysconfdir=/etc/slurm).
SYSTEM_SLURM_CONF="/etc/slurm/slurm.conf"

# Daemons in start order; stop.sh walks this list backwards.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

pid_file_of() {
    case "$1" in
        munged) echo "$MUNGE_DIR/munged.pid" ;;
        mariadbd) echo "$MARIADB_DIR/mariadbd.pid" ;;
        *) echo "$SLURM_DIR/$1.pid" ;;
    esac
}

log_file_of() {
    case "$1" in
        munged) echo "$MUNGE_DIR/munged.log" ;;
        mariadbd) echo "$MARIADB_DIR/mariadbd.log" ;;
        *) echo "$SLURM_DIR/$1.log" ;;
    esac
}

# Succeeds if process $1 is alive (not a zombie) and is named $2.
pid_alive_as() {
    local pid="$1" name="$2" state
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]] || return 1
    # A zombie is dead for our purposes (its parent just has not reaped it).
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ -n "$state" && "$state" != "Z" ]]
}

# Prints the pid of daemon $1 and succeeds only if its pid file names a live
# process with the expected name that belongs to *this* state folder (our
# folder appears in its argv or environment). This guards against pid reuse
# and against ever signalling a system daemon of the same name.
daemon_pid() {
    local name="$1" pid_file pid
    pid_file="$(pid_file_of "$name")"
    # The daemon may delete its pid file at any moment (on exit).
    pid="$(tr -dc '0-9' 2>/dev/null <"$pid_file" || true)"
    [[ -n "$pid" ]] && pid_alive_as "$pid" "$name" || return 1
    grep -qaF -- "$STATE_DIR/" "/proc/$pid/cmdline" 2>/dev/null ||
        grep -qaF -- "$STATE_DIR/" "/proc/$pid/environ" 2>/dev/null ||
        return 1
    echo "$pid"
}

# Stops one daemon by its pid file: SIGTERM, wait, then SIGKILL. Prints the
# pid it stopped; fails with 1 if the daemon was not running and with 2 if it
# survived SIGKILL. Waits on the pid itself, since daemons remove their own
# pid file early in shutdown, and removes a leftover pid file at the end so
# that the next start.sh never trusts a stale one.
stop_daemon() {
    local name="$1" grace="${2:-30}" pid_file pid deadline
    pid_file="$(pid_file_of "$name")"
    if ! pid="$(daemon_pid "$name")"; then
        rm -f -- "$pid_file"
        return 1
    fi
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while pid_alive_as "$pid" "$name"; do
        if ((SECONDS >= deadline)); then
            echo "  $name (pid $pid) ignored SIGTERM for ${grace}s, sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            # shellcheck disable=SC2016 # $1 expands in the child shell
            wait_until 10 bash -c '[[ ! -e /proc/$1 ]] || grep -q "^State:.*Z" /proc/$1/status' _ "$pid" ||
                return 2
            break
        fi
        sleep 0.2
    done
    rm -f -- "$pid_file"
    echo "$pid"
}

# Runs "$@" until it succeeds or $1 seconds pass.
wait_until() {
    local timeout="$1" deadline
    shift
    deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

# Runs "$@" until it succeeds or $2 seconds pass, giving up at once (status
# 2) when daemon $1 has died: no point waiting for an answer from a corpse.
wait_for_daemon() {
    local name="$1" timeout="$2" deadline
    shift 2
    deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ! daemon_pid "$name" >/dev/null; then
            echo "  $name exited while starting up" >&2
            return 2
        fi
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

# Fails with a message and the tail of the log that explains the failure.
die() {
    local message="$1" log="${2:-}"
    echo "ERROR: $message" >&2
    if [[ -n "$log" ]]; then
        if [[ -s "$log" ]]; then
            echo "----- last 25 lines of $log -----" >&2
            tail -n 25 -- "$log" >&2
            echo "-----" >&2
        else
            echo "(log $log is empty or missing)" >&2
        fi
    fi
    exit 1
}

now() { date +%s.%N; }
elapsed_since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# Re-runs the calling script as root: the daemons, apt and runuser need it.
require_root() {
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            exec sudo --preserve-env=MUSCLEVISION_SLURM_DIR,MUSCLEVISION_SLURM_PORT_BASE,MUSCLEVISION_SLURM_TIMEOUT,MUSCLEVISION_SLURM_LINK_ETC \
                "$0" "$@"
        fi
        die "$(basename "$0") must run as root (no sudo found)"
    fi
}
