# gflow job wrapper, run by bash with an empty environment.
# Arguments: RUN_DIR LOG MODE, where MODE is "file" (output to the log only)
# or "tee" (output to the log and to the tmux pane, stdin from the pane).
# Writes RUN_DIR/pid first and RUN_DIR/result (the job's exit code) last;
# the daemon reads both, so the job never has to call back into gflow.
d=$1
log=$2
mode=$3
. "$d/env" 2>/dev/null
printf '%s\n' "$$" > "$d/pid"
trap ':' INT TERM HUP
if [ "$mode" = tee ]; then
    { trap ':' INT TERM HUP; /bin/bash "$d/job.sh"; } 2>&1 | command -p tee -i -a "$log"
    rc=${PIPESTATUS[0]}
else
    /bin/bash "$d/job.sh" >> "$log" 2>&1 < /dev/null
    rc=$?
fi
printf '%s\n' "$rc" > "$d/result.tmp" && command -p mv -f "$d/result.tmp" "$d/result"
exit "$rc"
