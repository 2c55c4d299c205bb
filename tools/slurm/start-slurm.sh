#!/usr/bin/env bash
# A real one-node SLURM (Debian's slurm-wlm 22.05) on loopback, for testing profiles/slurm end to end:
# munged, a private MariaDB, slurmdbd (so that sacct works), slurmctld and slurmd; partitions `cpu`
# (default) and `h100`; a node that advertises an H100 node's resources, with fake GPUs. No systemd,
# cgroups or containers needed. Run as root.
#
#   tools/slurm/start-slurm.sh start    install what is missing, write the configs, start the daemons
#   tools/slurm/start-slurm.sh stop     stop the daemons this script started (by recorded PID only)
#   tools/slurm/start-slurm.sh status   what runs, and sinfo
#
# Configuration (environment):
#   AGORABENCH_SLURM_STATE      state, configs, logs, PID files; wiped on start   [/tmp/agorabench-slurm]
#   AGORABENCH_SLURM_PORT       first of three ports: slurmctld, slurmd, slurmdbd  [6817]
#   AGORABENCH_SLURM_DB_PORT    the private MariaDB's port                         [3307]
#   AGORABENCH_SLURM_CPUS / _MEM_MB / _GPUS   what the node advertises             [64 / 1024000 / 8]
#   AGORABENCH_SLURM_NO_APT=1   never run apt-get (fail if a package is missing)
#   AGORABENCH_SLURM_SMOKE=0    skip the smoke test (one GPU batch job on h100)
#
# The configs are written to the state directory and linked from /etc/slurm (a file already there is moved
# aside to <name>.agorabench-backup and put back by stop). SLURM_CONF is no alternative: the plugin's job
# step drops every SLURM_* variable before its inner srun, which then finds no configuration.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${AGORABENCH_SLURM_STATE:-/tmp/agorabench-slurm}
port=${AGORABENCH_SLURM_PORT:-6817}
db_port=${AGORABENCH_SLURM_DB_PORT:-3307}
node_cpus=${AGORABENCH_SLURM_CPUS:-64}
node_mem_mb=${AGORABENCH_SLURM_MEM_MB:-1024000}
node_gpus=${AGORABENCH_SLURM_GPUS:-8}
cluster=agorabench
account=agorabench
etc=/etc/slurm
conf_files=(slurm.conf gres.conf slurmdbd.conf)
marker=$state/.made-by-agorabench-start-slurm
# The daemons, in the order they are stopped.
daemons=(slurmd slurmctld slurmdbd mariadbd munged)
started=$SECONDS

say() { printf '[start-slurm +%ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
fail() {
  say "error: $*"
  exit 1
}

# --- processes: only PIDs we recorded, checked against their command name ---------------------------

# running PID: true if the process exists and is not a zombie (daemons re-parented to a PID 1 that
# reaps late linger as zombies, and kill -0 succeeds on those).
running() {
  local pid=$1 fields
  [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/stat ]] || return 1
  fields=$(</proc/"$pid"/stat) || return 1
  fields=${fields##*) }
  [[ ${fields:0:1} != Z && ${fields:0:1} != X ]]
}

# stop_daemon NAME: TERM (then KILL after 20 s) the PID recorded for NAME, if it still is NAME.
stop_daemon() {
  local name=$1 pidfile=$state/pids/$1 pid comm
  [[ -f $pidfile ]] || return 0
  pid=$(<"$pidfile")
  if running "$pid"; then
    comm=$(<"/proc/$pid/comm")
    if [[ $comm != "${name:0:15}" ]]; then
      say "PID $pid is now '$comm', not $name: leaving it alone"
    else
      say "stopping $name (PID $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 100); do
        running "$pid" || break
        sleep 0.2
      done
      if running "$pid"; then
        say "$name ignored SIGTERM for 20 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
  fi
  rm -f "$pidfile"
}

# adopt NAME PIDFILE SECONDS: wait for the daemon's own PID file, then record the PID as ours.
adopt() {
  local name=$1 pidfile=$2 limit=$3 pid=""
  for _ in $(seq $((limit * 5))); do
    if [[ -s $pidfile ]]; then
      pid=$(<"$pidfile")
      running "$pid" && break
    fi
    pid=""
    sleep 0.2
  done
  [[ -n $pid ]] || fail "$name did not start within ${limit}s; see $state/log/"
  echo "$pid" >"$state/pids/$name"
  say "$name up (PID $pid)"
}

# await SECONDS WHAT COMMAND...: poll COMMAND every 0.2 s until it succeeds, or fail.
await() {
  local limit=$1 what=$2
  shift 2
  for _ in $(seq $((limit * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  fail "gave up after ${limit}s waiting for $what"
}

# --- configuration -----------------------------------------------------------------------------------

render() { # render TEMPLATE OUTPUT
  sed -e "s|@STATE@|$state|g" -e "s|@HOST@|$host|g" -e "s|@CLUSTER@|$cluster|g" \
    -e "s|@CTLD_PORT@|$port|g" -e "s|@SLURMD_PORT@|$((port + 1))|g" -e "s|@DBD_PORT@|$((port + 2))|g" \
    -e "s|@DB_PORT@|$db_port|g" -e "s|@DB_PASS@|$db_pass|g" -e "s|@CPUS@|$node_cpus|g" \
    -e "s|@MEM_MB@|$node_mem_mb|g" -e "s|@GPUS@|$node_gpus|g" -e "s|@LAST_GPU@|$((node_gpus - 1))|g" \
    "$here/$1" >"$2"
}

install_missing() {
  local wanted=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server) missing=() p
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ ${AGORABENCH_SLURM_NO_APT:-0} == 1 ]] && fail "missing packages (AGORABENCH_SLURM_NO_APT=1): ${missing[*]}"
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout -s KILL 300 apt-get update -qq
  timeout -s KILL 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >"/tmp/start-slurm-apt.log" 2>&1 ||
    {
      tail -n 20 /tmp/start-slurm-apt.log >&2
      fail "apt-get install failed (log: /tmp/start-slurm-apt.log)"
    }
}

fresh_state() {
  if [[ -e $state ]]; then
    [[ -f $marker ]] || fail "$state exists and was not made by this script; set AGORABENCH_SLURM_STATE"
    rm -rf "$state"
  fi
  mkdir -p "$state"/{etc,spool/ctld,spool/d,log,run,pids,gpus,db}
  touch "$marker"
  local k
  for ((k = 0; k < node_gpus; k++)); do ln -s /dev/null "$state/gpus/nvidia$k"; done
  db_pass=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  render slurm.conf.in "$state/etc/slurm.conf"
  render gres.conf.in "$state/etc/gres.conf"
  render slurmdbd.conf.in "$state/etc/slurmdbd.conf"
  chmod 600 "$state/etc/slurmdbd.conf"
  render mariadb.cnf.in "$state/etc/mariadb.cnf"
}

# link_configs: /etc/slurm/<name> -> our rendered file, moving a foreign file aside first.
link_configs() {
  local name target
  mkdir -p "$etc"
  for name in "${conf_files[@]}"; do
    target=$etc/$name
    if [[ -e $target || -L $target ]] && [[ $(readlink "$target") != "$state/etc/$name" ]]; then
      [[ -e $target.agorabench-backup ]] && fail "$target.agorabench-backup exists already; restore it by hand"
      mv "$target" "$target.agorabench-backup"
      say "moved $target aside to $target.agorabench-backup"
    fi
    ln -sfn "$state/etc/$name" "$target"
  done
}

# unlink_configs: remove our links from /etc/slurm and put back what was there before.
unlink_configs() {
  local name target
  for name in "${conf_files[@]}"; do
    target=$etc/$name
    [[ -L $target && $(readlink "$target") == "$state/etc/$name" ]] && rm -f "$target"
    if [[ -e $target.agorabench-backup && ! -e $target ]]; then
      mv "$target.agorabench-backup" "$target"
      say "restored $target"
    fi
  done
  return 0
}

# --- daemons -----------------------------------------------------------------------------------------

start_munge() {
  if timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; then
    say "a munged already answers: using it (it is not ours, stop leaves it running)"
    return 0
  fi
  if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey -c -k /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 600 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged
  adopt munged /run/munge/munged.pid 10
  await 10 "a munge round trip" bash -c 'munge -n | unmunge'
}

start_database() {
  local cnf=$state/etc/mariadb.cnf sock=$state/db/mysqld.sock
  timeout -s KILL 120 mariadb-install-db --defaults-file="$cnf" --user=root --skip-test-db \
    --auth-root-authentication-method=socket >"$state/log/mariadb-install.log" 2>&1 ||
    fail "mariadb-install-db failed (log: $state/log/mariadb-install.log)"
  nohup mariadbd --defaults-file="$cnf" >"$state/log/mariadbd.out" 2>&1 </dev/null &
  adopt mariadbd "$state/run/mariadbd.pid" 60
  await 60 "MariaDB to answer" mariadb-admin --socket="$sock" -u root ping
  timeout 30 mariadb --socket="$sock" -u root -e "
    CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$db_pass';
    CREATE USER 'slurm'@'localhost' IDENTIFIED BY '$db_pass';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

start_slurmdbd() {
  slurmdbd
  adopt slurmdbd "$state/run/slurmdbd.pid" 30
  await 60 "slurmdbd to answer sacctmgr" timeout 10 sacctmgr -n list cluster
  timeout 30 sacctmgr -i add cluster "$cluster" >/dev/null
  timeout 30 sacctmgr -i add account "$account" Description=agorabench Organization=agorabench >/dev/null
  timeout 30 sacctmgr -i add user "$(id -un)" Account="$account" DefaultAccount="$account" >/dev/null
}

start_slurm() {
  local node_state=""
  slurmctld
  adopt slurmctld "$state/run/slurmctld.pid" 30
  await 30 "slurmctld to answer" bash -c 'timeout 5 scontrol ping | grep -q UP'
  slurmd
  adopt slurmd "$state/run/slurmd.pid" 30
  for _ in $(seq 150); do
    node_state=$(timeout 5 sinfo -h -N -n "$host" -p cpu -o %T 2>/dev/null | head -n 1 || true)
    [[ $node_state == idle || $node_state == mixed ]] && break
    sleep 0.2
  done
  if [[ $node_state != idle && $node_state != mixed ]]; then
    timeout 5 scontrol show node "$host" >&2 || true
    fail "node $host is '$node_state', not idle (log: $state/log/slurmd.log)"
  fi
}

# One batch job on h100 asking for a GPU: it must start, see CUDA_VISIBLE_DEVICES and complete.
smoke_test() {
  local job job_state=""
  # shellcheck disable=SC2016  # $CUDA_VISIBLE_DEVICES is expanded in the job, not here
  job=$(timeout 10 sbatch --parsable -p h100 -t 1 --gpus=1 -o "$state/log/smoke-%j.out" \
    --wrap 'test -n "${CUDA_VISIBLE_DEVICES:-}"') || fail "sbatch refused the smoke test"
  for _ in $(seq 300); do
    job_state=$(timeout 5 squeue -h --states=all -j "$job" -o %T 2>/dev/null || true)
    case $job_state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
    sleep 0.2
  done
  [[ $job_state == COMPLETED ]] || fail "smoke test job $job ended '$job_state'"
  say "smoke test passed (job $job on h100 with a GPU)"
}

do_start() {
  ((EUID == 0)) || fail "run as root (the daemons run as root, munged as user munge)"
  ((node_gpus >= 1)) || fail "AGORABENCH_SLURM_GPUS must be at least 1"
  do_stop
  install_missing
  host=$(hostname -s)
  getent hosts "$host" >/dev/null || say "warning: '$host' does not resolve; add '127.0.0.1 $host' to /etc/hosts if slurmd fails"
  fresh_state
  link_configs
  start_munge
  start_database
  start_slurmdbd
  start_slurm
  [[ ${AGORABENCH_SLURM_SMOKE:-1} == 0 ]] || smoke_test
  timeout 5 sinfo >&2 || true
  say "ready in $((SECONDS - started)) s; stop with: $0 stop"
}

do_stop() {
  [[ -d $state/pids ]] || return 0
  if [[ -f $state/pids/slurmctld ]] && running "$(<"$state/pids/slurmctld")"; then
    local jobs
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null | tr '\n' ' ' || true)
    if [[ -n ${jobs// /} ]]; then
      say "cancelling jobs $jobs"
      # shellcheck disable=SC2086  # one argument per job id
      timeout 10 scancel $jobs || true
      sleep 2
    fi
  fi
  local d
  for d in "${daemons[@]}"; do stop_daemon "$d"; done
  unlink_configs
}

do_status() {
  local f
  for f in "$state"/pids/*; do
    [[ -e $f ]] || continue
    if running "$(<"$f")"; then echo "$(basename "$f"): running, PID $(<"$f")"; else echo "$(basename "$f"): gone"; fi
  done
  if [[ -e $etc/slurm.conf ]]; then timeout 5 sinfo 2>&1 || true; else echo "no $etc/slurm.conf: not running"; fi
}

case ${1:-} in
  start) do_start ;;
  stop)
    do_stop
    say "stopped"
    ;;
  status) do_status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
