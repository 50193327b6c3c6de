#!/usr/bin/env bash
# Install gflow into .venv, start a daemon in a throw-away GFLOW_HOME with two fake GPUs,
# run a three-stage pipeline (prepare -> train on a GPU -> evaluate), show it, stop.
# Exits non-zero if the pipeline did not succeed. With GFLOW_BIN=DIR it installs nothing
# and runs the commands in DIR instead (CI points it at an installed wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${GFLOW_BIN:-}" ]; then
    source scripts/bootstrap.sh
    GFLOW_BIN="$PWD/.venv/bin"
fi

export GFLOW_HOME="${GFLOW_HOME:-$(mktemp -d /tmp/gflow-demo.XXXXXX)}"
export GFLOW_FAKE_GPUS="${GFLOW_FAKE_GPUS:-2x24G}"
export PATH="$GFLOW_BIN:$PATH"
work="$GFLOW_HOME/work"
mkdir -p "$work"
cd "$work"
trap 'gflowd down >/dev/null 2>&1; tmux -S "$GFLOW_HOME/tmux.sock" kill-server 2>/dev/null || true' EXIT

echo "== gflowd up (GFLOW_HOME=$GFLOW_HOME, fake GPUs $GFLOW_FAKE_GPUS)"
gflowd up
gflowd status

echo "== submit a pipeline"
gbatch --name prep --time 1 sh -c 'seq 1 5 > data.txt; echo "prepared $(wc -l < data.txt) rows"'
cat > train.sh <<'SH'
#!/bin/bash
# GFLOW --gpus=1
# GFLOW --time=2
echo "training on GPU $CUDA_VISIBLE_DEVICES"
awk '{ s += $1 } END { print s }' data.txt > model.txt
SH
gbatch --name train --depends-on @ train.sh
gbatch --name eval --depends-on @ sh -c 'echo "model says the sum is $(cat model.txt)"'
gqueue -a -t

echo "== wait for the last stage"
status=0
gjob wait @ || status=$?
[ "$status" -eq 0 ] || echo "(the pipeline did not finish cleanly; see the logs below)"
gqueue -a -t -f JOBID,NAME,ST,TIME,NODES,NODELIST,DEPENDENCY
for id in $(gqueue -a -f JOBID | tail -n +2); do
    echo "-- log of job $id"
    gjob log "$id" || true
done
ginfo
exit "$status"
