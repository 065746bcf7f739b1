#!/usr/bin/env bash
# Stop the daemons tests/slurm/start.sh started (by their PID files, checking each
# process's name first), never anything else.
set -u
STATE=${WORDLENS_SLURM_STATE:-/tmp/wordlens-slurm}
[ -d "$STATE" ] || exit 0
stop() {  # pidfile expected-command-name
    local file=$1 name=$2 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file" 2>/dev/null) || return 0
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}
RUN=$STATE/run
stop "$RUN/slurmd.pid" slurmd
stop "$RUN/slurmctld.pid" slurmctld
stop "$RUN/slurmdbd.pid" slurmdbd
stop "$RUN/mariadb.pid" mariadbd
stop "$RUN/munged.pid" munged
rm -f "$STATE/ready"
echo "slurm-setup: stopped"
