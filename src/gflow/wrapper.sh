# gflow job wrapper, run by bash with an empty environment.
# Arguments: RUN_DIR LOG MODE, where MODE is "file" (output to the log only)
# or "tee" (output to the log, shown in the tmux pane; stdin from the pane).
# Writes RUN_DIR/pid first and RUN_DIR/result (the job's exit code) last;
# the daemon reads both, so the job never has to call back into gflow.
d=$1
log=$2
mode=$3
. "$d/env" 2>/dev/null
printf '%s\n' "$$" > "$d/pid"
# A job with a cgroup v2 memory limit joins its cgroup before its command starts.
if [ -s "$d/cgroup" ]; then
    read -r cg < "$d/cgroup"
    if ! { printf '%s\n' "$$" > "$cg/cgroup.procs"; } 2>/dev/null; then
        printf 'gflow: cannot enter memory cgroup %s\n' "$cg" >> "$log"
        printf '1\n' > "$d/result.tmp" && command -p mv -f "$d/result.tmp" "$d/result"
        exit 1
    fi
fi
trap ':' INT TERM HUP
if [ "$mode" = tee ]; then
    # The pane shows the log as it grows; the job keeps the pane as its stdin. Output
    # goes straight to the log, so a background child that keeps it open cannot hold
    # the job's end back.
    command -p tail -f -n +1 "$log" &
    follow=$!
    /bin/bash "$d/job.sh" >> "$log" 2>&1
    rc=$?
    kill "$follow" 2>/dev/null
else
    /bin/bash "$d/job.sh" >> "$log" 2>&1 < /dev/null
    rc=$?
fi
printf '%s\n' "$rc" > "$d/result.tmp" && command -p mv -f "$d/result.tmp" "$d/result"
exit "$rc"
