# gflow job wrapper, run by bash with an empty environment (under tmux, the pane's, which
# it forgets first).
# Arguments: RUN_DIR LOG MODE [direct], where MODE is "file" (output to the log only)
# or "tee" (output to the log, shown in the tmux pane; stdin from the pane); "direct":
# job.sh ends by exec-ing the job's program, so a subshell runs it (no second bash).
# RUN_DIR/output and RUN_DIR/error, when present, name the files the job's output and
# errors go to instead of the log (sbatch's -o and -e).
# Writes RUN_DIR/pid first and RUN_DIR/result (the job's exit code) last;
# the daemon reads both, so the job never has to call back into gflow.
# Both files exist already at their final size (spaces): each value is one write of
# a few bytes over them, in place ("1<>" does not truncate), so it needs no disk space;
# readers take a file without a newline for "not written yet".
__gflow_dir=$1
__gflow_log=$2
__gflow_mode=$3
__gflow_direct=$4
# Under tmux the wrapper starts with the pane's environment: gflow's tmux client's (PATH,
# TERM, HOME) and what tmux adds. None of it is the job's: it forgets it, as if bash had
# started from an empty one ("env -i" would cost a program more per launch). PATH stays
# for the wrapper, not exported. (tests/e2e/test_lifecycle.py checks the list.)
if [ "$__gflow_mode" = tee ]; then
    unset -v TMUX TMUX_PANE TERM TERM_PROGRAM TERM_PROGRAM_VERSION COLORTERM SHELL HOME
    export -n PATH
fi
printf '%s\n' "$$" 1<> "$__gflow_dir/pid"
# A job with a cgroup v2 memory limit joins its cgroup before its command starts.
if [ -s "$__gflow_dir/cgroup" ]; then
    read -r __gflow_cg < "$__gflow_dir/cgroup"
    if ! { printf '%s\n' "$$" > "$__gflow_cg/cgroup.procs"; } 2>/dev/null; then
        printf 'gflow: cannot enter memory cgroup %s\n' "$__gflow_cg" >> "$__gflow_log"
        printf '1\n' 1<> "$__gflow_dir/result"
        exit 1
    fi
fi
# The signals gflow sends a job's process group (the stop sequence, --signal) are for
# the job: the wrapper waits for the job's end whatever it receives. A trap, unlike an
# ignored signal, is not inherited: the job gets every signal with its usual effect.
__gflow_signals='HUP INT QUIT USR1 USR2 ALRM TERM XCPU'
trap ':' $__gflow_signals
trap '__gflow_stopping=1' INT TERM
__gflow_follow=

# The job's script: in a subshell when it only execs the job's program (its traps are
# reset there as in a new bash, and its variables are not exported), else in a new bash.
__gflow_job() {
    if [ "$__gflow_direct" = direct ]; then
        ( set --; . "$__gflow_dir/job.sh" )
    else
        /bin/bash "$__gflow_dir/job.sh"
    fi
}

# The live processes of the job's group but the wrapper and its follower, in
# __gflow_members (read from /proc; bash builtins only).
__gflow_scan() {
    local stat rest
    __gflow_members=
    for stat in /proc/[0-9]*/stat; do
        { read -r rest < "$stat"; } 2>/dev/null || continue
        rest=${rest##*) }
        set -f; set -- $rest; set +f
        case " $$ $__gflow_follow " in *" ${stat:6:-5} "*) continue ;; esac
        if [ "$3" = "$$" ] && [ "$1" != Z ]; then __gflow_members+=" ${stat:6:-5}"; fi
    done
}

# A job being stopped ends with its last process: what outlives its command (children
# saving their work) gets the rest of the stop sequence, and the job's end waits for it.
# Only then, and only that long, the wrapper looks ten times a second.
__gflow_linger() {
    local pid rest alive
    while __gflow_scan; [ -n "$__gflow_members" ]; do
        alive=1
        while [ -n "$alive" ]; do
            command -p sleep 0.1
            alive=
            for pid in $__gflow_members; do
                { read -r rest < "/proc/$pid/stat"; } 2>/dev/null || continue
                rest=${rest##*) }
                set -f; set -- $rest; set +f
                if [ "$3" = "$$" ] && [ "$1" != Z ]; then alive=1; break; fi
            done
        done
    done
}

# The job's output goes to its log, or to the files its -o and -e name: opened here, as
# the job's user, and emptied first as sbatch does. One that cannot be written fails
# the job, with the reason in the log.
__gflow_out=$__gflow_log __gflow_err=
if [ -s "$__gflow_dir/output" ]; then IFS= read -r __gflow_out < "$__gflow_dir/output"; fi
if [ -s "$__gflow_dir/error" ]; then IFS= read -r __gflow_err < "$__gflow_dir/error"; fi
__gflow_empty() {
    local why
    if ! why=$( { : > "$1"; } 2>&1 ); then
        printf 'gflow: cannot write %s: %s\n' "$1" "${why##*: }" >> "$__gflow_log"
        printf '1\n' 1<> "$__gflow_dir/result"
        exit 1
    fi
}
if [ "$__gflow_out" != "$__gflow_log" ]; then __gflow_empty "$__gflow_out"; fi
if [ -n "$__gflow_err" ]; then __gflow_empty "$__gflow_err"; fi
exec 3>> "$__gflow_out" 4>> "${__gflow_err:-$__gflow_out}"

if [ "$__gflow_mode" = tee ]; then
    # The pane shows the output as it grows; the job keeps the pane as its stdin. Output
    # goes straight to the files, so a background child that keeps them open cannot hold
    # the job's end back. The follower ignores the job's signals; it goes at the end.
    (
        trap '' $__gflow_signals
        PATH=/usr/bin:/bin
        exec tail -q -f -n +1 "$__gflow_out" ${__gflow_err:+"$__gflow_err"}
    ) 3>&- 4>&- &
    __gflow_follow=$!
    __gflow_job >&3 2>&4 3>&- 4>&-
    __gflow_rc=$?
else
    __gflow_job >&3 2>&4 3>&- 4>&- < /dev/null
    __gflow_rc=$?
fi
exec 3>&- 4>&-
if [ -n "$__gflow_stopping" ]; then __gflow_linger; fi
if [ -n "$__gflow_follow" ]; then
    kill -KILL "$__gflow_follow" 2>/dev/null
    # The exit code as the pane's title too, for when tmux cannot tell it.
    printf '\033]2;gflow-exit:%s\033\\' "$__gflow_rc"
fi
printf '%s\n' "$__gflow_rc" 1<> "$__gflow_dir/result"
exit "$__gflow_rc"
