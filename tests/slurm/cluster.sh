#!/usr/bin/env bash
# A real single-node Slurm 22.05 for gflow's tests: Debian's packages, everything on
# 127.0.0.1, four fake GPUs. Needs root (no init system is assumed).
#   cluster.sh install  install slurmctld, slurmd, slurm-client and munge if missing,
#                       from apt's cache of downloaded packages when it has them
#   cluster.sh start    install if missing, then start munged, slurmctld and slurmd in the
#                       background (their pids in $RUN/started.pids); exit 3 if a Slurm
#                       controller already answers (then nothing is started)
#   cluster.sh stop     cancel every job, then stop exactly the daemons `start` started
#   cluster.sh ping     exit 0 if the controller answers
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN=/run/gflow-slurm
SPOOL=/var/spool/gflow-slurm
LOGS=/var/log/gflow-slurm
PIDS=$RUN/started.pids
PACKAGES=(slurmctld slurmd slurm-client munge)

installed() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
  && command -v sbatch >/dev/null && command -v munged >/dev/null; }

# Not named install: that would shadow install(1), which start uses to copy the configs.
install_slurm() {
  installed && return 0
  [[ $(id -u) == 0 ]] || { echo "installing Slurm needs root" >&2; return 1; }
  command -v apt-get >/dev/null || { echo "no apt-get: install Slurm 22.05 by hand" >&2; return 1; }
  export DEBIAN_FRONTEND=noninteractive
  local keep=(-o APT::Keep-Downloaded-Packages=true -o Binary::apt::APT::Keep-Downloaded-Packages=true)
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then  # no init system: dpkg must not start services
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  apt-get install -y -q --no-install-recommends --no-download "${keep[@]}" "${PACKAGES[@]}" \
    >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${keep[@]}" \
      "${PACKAGES[@]}" >/dev/null
  } || rc=$?
  (( made_policy )) && rm -f /usr/sbin/policy-rc.d
  return $rc
}

ping() { [[ -s /etc/slurm/slurm.conf ]] && timeout 10 scontrol ping 2>/dev/null | grep -q UP; }

ours_alive() {  # the slurmctld this script started still runs (busy, maybe: not answering yet)
  local pid
  pid=$(awk '$1 == "slurmctld" { print $2 }' $PIDS 2>/dev/null)
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

start() {
  install_slurm
  if ping; then echo "a Slurm controller already answers; not starting another"; exit 3; fi
  if ours_alive; then  # never a second controller: it would kill the first one
    for _ in $(seq 300); do ping && break; sleep 0.2; done
    ping || { echo "slurmctld runs but does not answer; see $LOGS/slurmctld.log" >&2; exit 1; }
    echo "the Slurm controller started here answers again"; exit 3
  fi
  mkdir -p $RUN $SPOOL/ctld $SPOOL/d $SPOOL/fakegpu $LOGS /etc/slurm
  install -m 644 "$HERE/slurm.conf" /etc/slurm/slurm.conf
  install -m 644 "$HERE/gres.conf" /etc/slurm/gres.conf
  for i in 0 1 2 3; do
    f=$SPOOL/fakegpu/nvidia$i
    [[ -e $f ]] || mknod -m 666 "$f" c 1 3 2>/dev/null || touch "$f"
  done
  : > $PIDS
  install -d -o munge -g munge -m 755 /run/munge
  install -d -o munge -g munge -m 700 /var/log/munge /var/lib/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 status=none
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  fi
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    setsid setpriv --reuid=munge --regid=munge --init-groups \
      /usr/sbin/munged --foreground --force >$LOGS/munged.out 2>&1 </dev/null &
    echo "munged $!" >> $PIDS
    for _ in $(seq 100); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.05; done
    munge -n | unmunge >/dev/null || { echo "munged does not answer" >&2; exit 1; }
  fi
  setsid /usr/sbin/slurmctld -D -i -c >$LOGS/slurmctld.out 2>&1 </dev/null &
  echo "slurmctld $!" >> $PIDS
  for _ in $(seq 300); do ping && break; sleep 0.1; done
  ping || { echo "slurmctld does not answer; see $LOGS/slurmctld.log" >&2; exit 1; }
  setsid /usr/sbin/slurmd -D -N localhost >$LOGS/slurmd.out 2>&1 </dev/null &
  echo "slurmd $!" >> $PIDS
  local st=""
  for _ in $(seq 150); do
    st=$(sinfo -h -N -n localhost -o %T 2>/dev/null || true)
    [[ $st == idle* || $st == mixed* || $st == allocated* ]] && break
    sleep 0.1
  done
  [[ $st == idle* || $st == mixed* || $st == allocated* ]] || {
    echo "slurmd did not register (node state '$st'); see $LOGS/slurmd.log" >&2; exit 1; }
  echo "Slurm started: $(tr '\n' ' ' < $PIDS)"
}

stop() {
  [[ -s $PIDS ]] || { echo "nothing started by cluster.sh"; return 0; }
  scancel --full -u root 2>/dev/null || true
  tac $PIDS | while read -r name pid; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  done
  rm -f $PIDS
  echo "Slurm stopped"
}

case "${1:-}" in
  install) install_slurm ;;
  start) start ;;
  stop) stop ;;
  ping) ping ;;
  *) echo "usage: cluster.sh install|start|stop|ping" >&2; exit 2 ;;
esac
