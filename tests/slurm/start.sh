#!/usr/bin/env bash
# Start a real single-node SLURM on loopback for the tests: munge, MariaDB + slurmdbd
# (so that sacct works), slurmctld and slurmd. Needs root on Debian/Ubuntu; anywhere
# else it says why and exits 0 (the SLURM test then skips, printing the reason).
# The daemons write their PID files to $WORDLENS_SLURM_STATE (default
# /tmp/wordlens-slurm); tests/slurm/stop.sh stops exactly those processes.
set -euo pipefail

STATE=${WORDLENS_SLURM_STATE:-/tmp/wordlens-slurm}
say() { echo "slurm-setup: $*"; }

if [ "$(id -u)" != 0 ]; then say "not root: SLURM not started"; exit 0; fi
if [ ! -f /etc/debian_version ]; then say "not Debian/Ubuntu: SLURM not started"; exit 0; fi
if [ -f "$STATE/ready" ] && sinfo -h >/dev/null 2>&1; then say "already running"; exit 0; fi

export DEBIAN_FRONTEND=noninteractive
say "installing packages"
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge slurmdbd \
    slurm-wlm-mysql-plugin mariadb-server mariadb-client >/dev/null

rm -rf "$STATE"
mkdir -p "$STATE"/{state,spool,mysql-run,run}
chown slurm:slurm "$STATE/state" "$STATE/spool"
chmod 755 "$STATE"
chmod 1777 "$STATE/run"   # PID and log files of daemons running as munge, mysql and slurm
RUN=$STATE/run
NODE=$(hostname -s)

# munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
runuser -u munge -- /usr/sbin/munged --pid-file="$RUN/munged.pid"
for _ in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done

# MariaDB for slurmdbd, bound to loopback
chown mysql:mysql "$STATE/mysql-run"
if [ ! -d /var/lib/mysql/mysql ]; then mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null; fi
setsid -f /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --bind-address=127.0.0.1 --port=3306 \
    --socket="$STATE/mysql-run/mysqld.sock" --pid-file="$RUN/mariadb.pid" --skip-name-resolve \
    >"$RUN/mariadb.log" 2>&1
for _ in $(seq 100); do [ -S "$STATE/mysql-run/mysqld.sock" ] && break; sleep 0.2; done
mariadb --socket="$STATE/mysql-run/mysqld.sock" -e "
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'wordlens-test';
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'wordlens-test';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"

mkdir -p /etc/slurm
cat >/etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=wordlens-test
StorageLoc=slurm_acct_db
PidFile=$RUN/slurmdbd.pid
LogFile=$RUN/slurmdbd.log
CONF
chown slurm:slurm /etc/slurm/slurmdbd.conf && chmod 600 /etc/slurm/slurmdbd.conf
/usr/sbin/slurmdbd
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/6819) 2>/dev/null && break; sleep 0.2; done

NODELINE=$(slurmd -C | head -1 | sed -E 's/RealMemory=([0-9]+)/RealMemory=\1/')
MEM=$(echo "$NODELINE" | sed -E 's/.*RealMemory=([0-9]+).*/\1/')
NODELINE=$(echo "$NODELINE" | sed -E "s/RealMemory=[0-9]+/RealMemory=$((MEM * 95 / 100))/")
cat >/etc/slurm/slurm.conf <<CONF
ClusterName=wordlens
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=300
MailProg=/bin/true
ReturnToService=2
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$RUN/slurmctld.log
SlurmdLogFile=$RUN/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
$NODELINE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
sacctmgr -i add cluster wordlens >/dev/null 2>&1 || true
/usr/sbin/slurmctld
/usr/sbin/slurmd -N "$NODE"
for _ in $(seq 150); do
    state=$(sinfo -h -o %T 2>/dev/null | head -1)
    [ "$state" = idle ] && break
    sleep 0.2
done
if [ "$(sinfo -h -o %T 2>/dev/null | head -1)" != idle ]; then
    say "the node did not come up: $(sinfo 2>&1 | tail -2)"; exit 1
fi
touch "$STATE/ready"
say "SLURM is up (node $NODE, partition debug); state in $STATE"
