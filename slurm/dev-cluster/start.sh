#!/usr/bin/env bash
# Starts a real single-node SLURM cluster (munged, MariaDB, slurmdbd, slurmctld,
# slurmd) on this machine, for tests and laptops. See README.md beside this file.
#
# Idempotent: a running cluster makes this a quick no-op; after a partial
# failure it starts only what is missing. Stop with stop.sh.
# `start.sh --packages-only` installs the Debian packages (munge, MariaDB, SLURM) and starts nothing.
#
# Environment:
#   MUSCLEVISION_SLURM_DIR        state folder (default /tmp/musclevision-slurm)
#   MUSCLEVISION_SLURM_PORT_BASE  slurmctld port; slurmd/slurmdbd use +1/+2 (default 6817)
#   MUSCLEVISION_SLURM_TIMEOUT    seconds to wait for each daemon/job (default 120)
#   MUSCLEVISION_SLURM_LINK_ETC   1 (default): symlink /etc/slurm/slurm.conf to our
#                                 config when no real one exists; 0: never touch /etc
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/lib.sh
source "$SCRIPT_DIR/lib.sh"

PACKAGES=(munge mariadb-server slurmctld slurmd slurm-client slurmdbd)
missing_packages() { # the PACKAGES not installed, one per line
    local p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}
# `start.sh --packages-only`: the Debian packages and nothing else (make test installs them beside its other
# set-up, so the cluster tests start the daemons at once). Nothing to install: done, without asking for root.
if [[ "${1:-}" == "--packages-only" && -z "$(missing_packages)" ]]; then
    exit 0
fi
require_root "$@"

TIMEOUT="${MUSCLEVISION_SLURM_TIMEOUT:-120}"
LINK_ETC="${MUSCLEVISION_SLURM_LINK_ETC:-1}"
CLUSTER=musclevision
PARTITION=dev
ACCOUNT=musclevision
DB_NAME=slurm_acct_db
DB_USER=slurm

# Every SLURM command and daemon below reads this; slurmdbd also finds
# slurmdbd.conf through it (it has no -f flag and looks beside SLURM_CONF).
export SLURM_CONF="$SLURM_CONF_FILE"

T0="$(now)"
# NodeName must equal what slurmd finds for itself, i.e. the short hostname.
NODE="$(hostname -s 2>/dev/null || uname -n)"
NODE="${NODE%%.*}"

node_state() { sinfo -h -n "$NODE" -o '%t' 2>/dev/null; }
node_usable() { [[ "$(node_state)" =~ ^(idle|mix|alloc)$ ]]; }

print_usage_hint() {
    echo "  state folder: $STATE_DIR (logs: $SLURM_DIR/*.log, $MUNGE_DIR/munged.log, $MARIADB_DIR/mariadbd.log)"
    if [[ "$(readlink -- "$SYSTEM_SLURM_CONF" 2>/dev/null || true)" == "$SLURM_CONF_FILE" ]]; then
        echo "  $SYSTEM_SLURM_CONF -> $SLURM_CONF_FILE, so plain sinfo/sbatch/sacct work; to be explicit:"
    else
        echo "  SLURM clients need this in their environment:"
    fi
    echo "    export SLURM_CONF=$SLURM_CONF_FILE    # or: source $ENV_FILE"
}

# --- packages ---------------------------------------------------------------
install_packages() {
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]})); then
        echo "Installing Debian packages: ${missing[*]} ..."
        t="$(now)"
        # Without a policy-rc.d the packages' postinst would start *system* munged,
        # MariaDB and SLURM daemons (on their default sockets/ports/configs), which
        # we neither want nor own. Deny service starts during our install only.
        policy=/usr/sbin/policy-rc.d
        added_policy=0
        if [[ ! -e "$policy" ]]; then
            printf '#!/bin/sh\nexit 101\n' >"$policy"
            chmod 755 "$policy"
            added_policy=1
            trap '[[ $added_policy == 1 ]] && rm -f "$policy"' EXIT
        fi
        apt_log="$STATE_DIR/apt.log"
        mkdir -p "$STATE_DIR"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >"$apt_log" 2>&1 || die "apt-get update failed" "$apt_log"
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$apt_log" 2>&1 ||
            die "apt-get install ${missing[*]} failed" "$apt_log"
        if ((added_policy)); then
            rm -f "$policy"
            added_policy=0
        fi
        echo "  installed in $(elapsed_since "$t") s (log: $apt_log)"
    fi
}

if [[ "${1:-}" == "--packages-only" ]]; then
    install_packages
    exit 0
fi

# --- already running? -------------------------------------------------------
all_running=1
for d in "${DAEMONS[@]}"; do
    daemon_pid "$d" >/dev/null || all_running=0
done
if ((all_running)) && node_usable; then
    echo "SLURM dev cluster '$CLUSTER' already running (node $NODE: $(node_state)); nothing to do."
    print_usage_hint
    exit 0
fi

install_packages

# --- state folder -----------------------------------------------------------
# munged refuses directories writable by others or owned by other users, so
# the folder chain is root-owned 0755 and each daemon gets its own subfolder.
mkdir -p "$STATE_DIR" "$SLURM_DIR/statesave" "$SLURM_DIR/spool" "$MUNGE_DIR" "$MARIADB_DIR"
chown root:root "$STATE_DIR" "$SLURM_DIR"
chmod 755 "$STATE_DIR" "$SLURM_DIR"
chown munge:munge "$MUNGE_DIR"
chmod 755 "$MUNGE_DIR" # clients (any user) must reach the socket inside
chown mysql:mysql "$MARIADB_DIR"
chmod 750 "$MARIADB_DIR"

# Unix socket paths are limited to 107 bytes; fail early with a clear reason.
for s in "$MUNGE_SOCKET" "$MARIADB_SOCKET"; do
    ((${#s} < 100)) || die "socket path too long ($s); set a shorter MUSCLEVISION_SLURM_DIR"
done

# --- config files -----------------------------------------------------------
# Written to a temp file and moved only when changed, so running daemons are
# restarted only if their configuration really changed.
CPUS="$(nproc)"
mem_total_mb="$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)"
# Slightly below the total: slurmd drains a node that reports less memory
# than configured, and the kernel's figure wobbles a little.
REAL_MEMORY="$((mem_total_mb * 95 / 100))"
TRUE_BIN="$(type -P true)"

DB_PASS_FILE="$SLURM_DIR/db-password"
if [[ ! -s "$DB_PASS_FILE" ]]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$DB_PASS_FILE")
fi
DB_PASS="$(cat "$DB_PASS_FILE")"

config_changed=0
install_config() { # $1 target, $2 mode; content on stdin
    local target="$1" mode="$2" tmp
    tmp="$(mktemp "$target.XXXXXX")"
    cat >"$tmp"
    chmod "$mode" "$tmp"
    if [[ -f "$target" ]] && cmp -s "$tmp" "$target"; then
        rm -f "$tmp"
    else
        mv -f "$tmp" "$target"
        config_changed=1
    fi
}

install_config "$SLURM_CONF_FILE" 644 <<EOF
# Generated by $SCRIPT_DIR/start.sh; edits are overwritten on the next start.
ClusterName=$CLUSTER
# NodeAddr/SlurmctldHost address 127.0.0.1: the short hostname may not
# resolve (laptops, containers), and this cluster never leaves the machine.
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root

AuthType=auth/munge
CredType=cred/munge
# Our own munged, so a system munge (other key) is never involved.
AuthInfo=socket=$MUNGE_SOCKET

StateSaveLocation=$SLURM_DIR/statesave
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/slurmctld.log
SlurmdLogFile=$SLURM_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# No cgroups/systemd in containers: track processes via /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
MpiDefault=none
SwitchType=switch/none
MailProg=$TRUE_BIN

# Cores are the only consumable resource, so --mem requests never block
# scheduling on this small node.
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Trust the CPUs/RealMemory below even where hardware detection differs
# (containers often see more CPUs than nproc allows).
SlurmdParameters=config_overrides

# Finished jobs leave squeue fast (sacct keeps them) and scancel'ed jobs die fast.
MinJobAge=5
KillWait=5
InactiveLimit=0
Waittime=0
SlurmctldTimeout=30
SlurmdTimeout=60
# A node that went down because its slurmd stopped comes back on registration.
ReturnToService=2

AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$SLURMDBD_PORT
# Not a password: with auth/munge this names the munge socket used for
# slurmdbd connections (AuthInfo only covers slurmctld/slurmd traffic).
AccountingStoragePass=$MUNGE_SOCKET

NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MEMORY State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=UNLIMITED State=UP
EOF

# slurmdbd refuses a slurmdbd.conf readable by others (it holds the password).
install_config "$SLURMDBD_CONF_FILE" 600 <<EOF
# Generated by $SCRIPT_DIR/start.sh; edits are overwritten on the next start.
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$SLURMDBD_PORT
SlurmUser=root
PidFile=$SLURM_DIR/slurmdbd.pid
LogFile=$SLURM_DIR/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
# "localhost" makes the MariaDB client use a unix socket; slurmdbd cannot name
# one, so MYSQL_UNIX_PORT in its environment points it at our mariadbd.
StorageHost=localhost
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF

install_config "$ENV_FILE" 644 <<EOF
# Source this to talk to the MuscleVision SLURM dev cluster.
export SLURM_CONF=$SLURM_CONF_FILE
EOF

# Clients without SLURM_CONF in their environment (e.g. a test runner that
# scrubs its env) only look at /etc/slurm/slurm.conf. A symlink is the only way
# to reach them; we create it only where no real config exists, and stop.sh
# removes it again.
if [[ "$LINK_ETC" == 1 ]]; then
    current_link="$(readlink -- "$SYSTEM_SLURM_CONF" 2>/dev/null || true)"
    if [[ ! -e "$SYSTEM_SLURM_CONF" && ! -L "$SYSTEM_SLURM_CONF" ]] ||
        [[ -L "$SYSTEM_SLURM_CONF" && ! -e "$SYSTEM_SLURM_CONF" ]] ||
        [[ "$current_link" == "$SLURM_CONF_FILE" ]]; then
        mkdir -p "$(dirname "$SYSTEM_SLURM_CONF")"
        ln -sfn -- "$SLURM_CONF_FILE" "$SYSTEM_SLURM_CONF"
    else
        echo "  note: $SYSTEM_SLURM_CONF exists and is not ours; left untouched (use SLURM_CONF)"
    fi
fi

# A config change only reaches running SLURM daemons through a restart.
if ((config_changed)); then
    for d in slurmd slurmctld slurmdbd; do
        if pid="$(stop_daemon "$d" 30)"; then
            echo "  config changed: stopped running $d (pid $pid) to restart it"
        fi
    done
fi

started=()
note_started() { started+=("$1 (pid $(daemon_pid "$1"))"); }

# --- munged -----------------------------------------------------------------
if ! daemon_pid munged >/dev/null; then
    rm -f -- "$(pid_file_of munged)"
    if [[ ! -s "$MUNGE_KEY" ]]; then
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --keyfile="$MUNGE_KEY" >/dev/null
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
        fi
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 600 "$MUNGE_KEY"
    log="$(log_file_of munged)"
    # munged rejects a log file it does not own, and our own redirection of
    # its startup errors below would otherwise create the file as root.
    touch "$log"
    chown munge:munge "$log"
    chmod 640 "$log"
    # munged refuses to run as root; it daemonizes and returns once ready.
    runuser -u munge -- munged \
        --socket="$MUNGE_SOCKET" \
        --key-file="$MUNGE_KEY" \
        --pid-file="$(pid_file_of munged)" \
        --log-file="$log" \
        --seed-file="$MUNGE_DIR/munged.seed" >>"$log" 2>&1 ||
        die "munged failed to start" "$log"
    wait_until "$TIMEOUT" daemon_pid munged || die "munged did not write its pid file" "$log"
    # shellcheck disable=SC2016 # $1 expands in the child shell
    wait_for_daemon munged "$TIMEOUT" bash -c 'munge -S "$1" -n | unmunge -S "$1"' _ "$MUNGE_SOCKET" ||
        die "munged does not answer on $MUNGE_SOCKET" "$log"
    note_started munged
fi

# --- MariaDB ----------------------------------------------------------------
# --no-defaults everywhere: a system /etc/mysql config (datadir, socket, port)
# must not leak into our private instance, which only listens on its socket.
if ! daemon_pid mariadbd >/dev/null; then
    rm -f -- "$(pid_file_of mariadbd)"
    log="$(log_file_of mariadbd)"
    # The marker is written only after a complete initialisation, so an
    # interrupted first run is redone from scratch instead of half-trusted.
    if [[ ! -f "$MARIADB_DIR/initialized" ]]; then
        rm -rf -- "$MARIADB_DIR/data"
        mariadb-install-db --no-defaults --datadir="$MARIADB_DIR/data" --user=mysql \
            --auth-root-authentication-method=socket --skip-test-db \
            >>"$log" 2>&1 ||
            die "mariadb-install-db failed" "$log"
        touch "$MARIADB_DIR/initialized"
    fi
    # setsid: mariadbd does not daemonize itself, and it must outlive this
    # script's session and process group.
    setsid -f mariadbd --no-defaults \
        --datadir="$MARIADB_DIR/data" \
        --socket="$MARIADB_SOCKET" \
        --pid-file="$(pid_file_of mariadbd)" \
        --log-error="$log" \
        --skip-networking \
        --user=mysql \
        --innodb-lock-wait-timeout=900 \
        </dev/null >>"$log" 2>&1
    wait_until "$TIMEOUT" daemon_pid mariadbd || die "mariadbd did not start (no live pid file)" "$log"
    wait_for_daemon mariadbd "$TIMEOUT" mariadb-admin --no-defaults --socket="$MARIADB_SOCKET" -u root ping ||
        die "MariaDB does not answer on $MARIADB_SOCKET" "$log"
    note_started mariadbd
fi
# Re-applied on every start so that a lost password file repairs itself.
mariadb --no-defaults --socket="$MARIADB_SOCKET" -u root >>"$(log_file_of mariadbd)" 2>&1 <<EOF || die "creating the $DB_NAME database/user failed" "$(log_file_of mariadbd)"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
EOF

# --- slurmdbd ---------------------------------------------------------------
# start_slurm_daemon NAME CMD...: start a daemon that forks and writes its pid file, unless it
# already runs (a stale pid file from a crash is removed first).
start_slurm_daemon() {
    local name="$1" log
    shift
    daemon_pid "$name" >/dev/null && return 0
    rm -f -- "$(pid_file_of "$name")"
    log="$(log_file_of "$name")"
    "$@" >>"$log" 2>&1 || die "$name failed to start" "$log"
    wait_until "$TIMEOUT" daemon_pid "$name" || die "$name did not write its pid file" "$log"
    note_started "$name"
}
MYSQL_UNIX_PORT="$MARIADB_SOCKET" start_slurm_daemon slurmdbd slurmdbd
wait_for_daemon slurmdbd "$TIMEOUT" sacctmgr -n -P list cluster ||
    die "slurmdbd does not answer sacctmgr" "$(log_file_of slurmdbd)"

# Registering before slurmctld starts lets it connect to accounting at once;
# the account gives jobs a non-empty Account column in sacct.
sacct_has() { [[ -n "$(sacctmgr -n -P list "$@" 2>/dev/null)" ]]; }
sacct_has cluster "$CLUSTER" format=cluster ||
    sacctmgr -i add cluster "$CLUSTER" >/dev/null ||
    die "sacctmgr add cluster $CLUSTER failed" "$(log_file_of slurmdbd)"
sacct_has account "$ACCOUNT" format=account ||
    sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" \
        Description="MuscleVision dev" Organization=musclevision >/dev/null ||
    die "sacctmgr add account $ACCOUNT failed" "$(log_file_of slurmdbd)"
for u in root ${SUDO_USER:-}; do
    sacct_has user "$u" format=user ||
        sacctmgr -i add user "$u" account="$ACCOUNT" cluster="$CLUSTER" >/dev/null ||
        die "sacctmgr add user $u failed" "$(log_file_of slurmdbd)"
done

# --- slurmctld --------------------------------------------------------------
start_slurm_daemon slurmctld slurmctld -f "$SLURM_CONF_FILE"
wait_for_daemon slurmctld "$TIMEOUT" scontrol ping ||
    die "slurmctld does not answer 'scontrol ping'" "$(log_file_of slurmctld)"

# --- slurmd -----------------------------------------------------------------
start_slurm_daemon slurmd slurmd -f "$SLURM_CONF_FILE"
if ! wait_for_daemon slurmd 20 node_usable; then
    daemon_pid slurmd >/dev/null || die "slurmd died after starting" "$(log_file_of slurmd)"
    # A node drained by an earlier crash (e.g. "Kill task failed") stays
    # drained until resumed; this is a dev cluster, so resume it once.
    scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
    wait_for_daemon slurmd "$TIMEOUT" node_usable ||
        die "node $NODE is '$(node_state)' instead of idle ($(sinfo -h -n "$NODE" -o '%E' 2>/dev/null))" \
            "$(log_file_of slurmd)"
fi

# --- smoke test -------------------------------------------------------------
# Proves the whole path (auth, scheduling, slurmd launch, step completion).
# Skipped when jobs that survived a daemon restart fill the node: it would
# only queue behind them.
if [[ "$(node_state)" == alloc ]]; then
    smoke_note="smoke job skipped (node fully allocated by running jobs)"
else
    t="$(now)"
    (cd "$SLURM_DIR" && timeout "$TIMEOUT" srun --quiet -N1 -n1 -t 1 -J musclevision-smoke true) ||
        die "smoke-test job 'srun true' did not complete within ${TIMEOUT}s" "$(log_file_of slurmd)"
    smoke_note="smoke job ran in $(elapsed_since "$t") s"
fi

if ((${#started[@]})); then
    echo "Started: ${started[*]}"
fi
echo "SLURM dev cluster '$CLUSTER' up in $(elapsed_since "$T0") s: node $NODE ($CPUS CPUs, ${REAL_MEMORY} MB), partition $PARTITION; $smoke_note."
print_usage_hint
