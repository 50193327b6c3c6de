# gflow job wrapper, run by bash with an empty environment.
# Arguments: RUN_DIR LOG MODE, where MODE is "file" (output to the log only)
# or "tee" (output to the log, shown in the tmux pane; stdin from the pane).
# Writes RUN_DIR/pid first and RUN_DIR/result (the job's exit code) last;
# the daemon reads both, so the job never has to call back into gflow.
# The result is one write of a few bytes, done before the wrapper exits; readers
# take an empty or unfinished file for "no result yet".
__gflow_dir=$1
__gflow_log=$2
__gflow_mode=$3
. "$__gflow_dir/env" 2>/dev/null
printf '%s\n' "$$" > "$__gflow_dir/pid"
# A job with a cgroup v2 memory limit joins its cgroup before its command starts.
if [ -s "$__gflow_dir/cgroup" ]; then
    read -r __gflow_cg < "$__gflow_dir/cgroup"
    if ! { printf '%s\n' "$$" > "$__gflow_cg/cgroup.procs"; } 2>/dev/null; then
        printf 'gflow: cannot enter memory cgroup %s\n' "$__gflow_cg" >> "$__gflow_log"
        printf '1\n' > "$__gflow_dir/result"
        exit 1
    fi
fi
trap ':' INT TERM HUP
if [ "$__gflow_mode" = tee ]; then
    # The pane shows the log as it grows; the job keeps the pane as its stdin. Output
    # goes straight to the log, so a background child that keeps it open cannot hold
    # the job's end back.
    command -p tail -f -n +1 "$__gflow_log" &
    __gflow_follow=$!
    /bin/bash "$__gflow_dir/job.sh" >> "$__gflow_log" 2>&1
    __gflow_rc=$?
    kill "$__gflow_follow" 2>/dev/null
else
    /bin/bash "$__gflow_dir/job.sh" >> "$__gflow_log" 2>&1 < /dev/null
    __gflow_rc=$?
fi
printf '%s\n' "$__gflow_rc" > "$__gflow_dir/result"
exit "$__gflow_rc"
