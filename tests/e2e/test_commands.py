"""What a job runs, with both executors: its words exactly as written, scripts with their
interpreter, and the options a script's header holds."""

from __future__ import annotations

import os

from tests.helpers import Gflow


def test_words_reach_the_program_as_written(gflow: Gflow) -> None:
    data = gflow.work / "table.txt"
    data.write_text("a b c\nd e f\n")
    loop = gflow.submit("sh", "-c", "for i in 1 2 3; do echo $i; done")
    fields = gflow.submit("awk", "{print $NF}", str(data))
    perl = gflow.submit("perl", "-e", "my $x=1; print $x, qq(\\n)")
    assert gflow.wait(loop, fields, perl) == 0
    assert gflow.log(loop) == "1\n2\n3\n"
    assert gflow.log(fields) == "c\nf\n"
    assert gflow.log(perl) == "1\n"


def test_gflow_variables_are_filled_in(gflow: Gflow) -> None:
    tasks = gflow.submit_many("--array", "1-2", "echo", "task=$GFLOW_ARRAY_TASK_ID")
    inner = gflow.submit_many("--array", "3-4", "sh", "-c", "echo inner=$GFLOW_ARRAY_TASK_ID")
    job = gflow.submit(
        "python3",
        "-c",
        "import sys; print(sys.argv[1:])",
        "a b",
        "${GFLOW_JOB_ID}x",
        "\\$GFLOW_JOB_NAME",
        "$HOME",
        "\\$HOME",
        "{x}",
    )
    assert gflow.wait(*tasks, *inner, job) == 0
    assert [gflow.log(t) for t in tasks] == ["task=1\n", "task=2\n"]
    assert [gflow.log(t) for t in inner] == ["inner=3\n", "inner=4\n"]
    assert gflow.log(job).strip() == str(
        ["a b", f"{job}x", "$GFLOW_JOB_NAME", "$HOME", "\\$HOME", "{x}"]
    )


def test_directives_are_read_only_in_the_header(gflow: Gflow) -> None:
    script = gflow.work / "generate.sh"
    script.write_text(
        "#!/bin/bash\n"
        "\n"
        "# GFLOW --name=generator\n"
        "#SBATCH --time=10:00\n"
        "cat > child.sh <<'EOF'\n"
        "#!/bin/bash\n"
        "#SBATCH --array=1-50\n"
        "# GFLOW --gpus=2\n"
        "EOF\n"
        "# GFLOW --priority=99\n"
        "echo generated\n"
    )
    ids = gflow.submit_many(str(script))
    assert len(ids) == 1
    assert gflow.wait(ids[0]) == 0
    row = gflow.job(ids[0])
    assert (row["name"], row["time_limit"], row["gpus"], row["priority"]) == (
        "generator",
        600,
        0,
        10,
    )
    assert row["group_id"] is None
    assert gflow.log(ids[0]) == "generated\n"
    assert "#SBATCH --array=1-50" in (gflow.work / "child.sh").read_text()


def test_a_script_runs_with_the_interpreter_its_shebang_names(gflow: Gflow) -> None:
    train = gflow.work / "train.py"
    train.write_text('#!/usr/bin/env python3\nimport sys\nprint("python", sys.argv[1:])\n')
    traced = gflow.work / "traced.sh"
    traced.write_text('#!/bin/sh -eu\necho "sh $1"\n')
    plain = gflow.work / "plain.sh"
    plain.write_text('[[ -n $BASH_VERSION ]] && echo "bash $1"\n')
    ids = [gflow.submit(str(path), "a b") for path in (train, traced, plain)]
    assert all(not os.access(path, os.X_OK) for path in (train, traced, plain))
    assert gflow.wait(*ids) == 0
    assert [gflow.log(job) for job in ids] == ["python ['a b']\n", "sh a b\n", "bash a b\n"]


def test_a_ported_slurm_script_runs_as_on_slurm(gflow: Gflow) -> None:
    (gflow.work / "out").mkdir()
    script = gflow.work / "port.sh"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH --job-name=ported\n"
        "#SBATCH --array=0-6:3\n"
        "#SBATCH -o out/%x-%A_%a.out\n"
        "#SBATCH --error=out/%j.err\n"
        "#SBATCH -c 4\n"
        "#SBATCH --nodes=1\n"
        'echo "$SLURM_JOB_ID $SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID $SLURM_JOB_NAME"\n'
        'echo "$SLURM_ARRAY_TASK_COUNT $SLURM_ARRAY_TASK_MIN-$SLURM_ARRAY_TASK_MAX:'
        '$SLURM_ARRAY_TASK_STEP $SLURM_CPUS_PER_TASK $SLURM_NTASKS $SLURM_SUBMIT_DIR"\n'
        "echo oops >&2\n"
    )
    gflow.env["SLURM_ARRAY_TASK_ID"] = "99"  # submitted from inside another Slurm job
    ids = gflow.submit_many(str(script))
    assert gflow.wait(*ids) == 0
    first = ids[0]
    for job, task in zip(ids, (0, 3, 6), strict=True):
        out = gflow.work / "out" / f"ported-{first}_{task}.out"
        assert out.read_text() == (f"{job} {first} {task} ported\n3 0-6:3 4 1 {gflow.work}\n")
        assert (gflow.work / "out" / f"{job}.err").read_text() == "oops\n"
        assert gflow.run("gjob", "log", f"{first}_{task}").stdout == out.read_text()
    assert gflow.log(first) == ""  # gflow's own log of the job stays empty
    plain = gflow.submit("sh", "-c", 'echo "$SLURM_JOB_ID [$SLURM_ARRAY_TASK_ID]"')
    missing = gflow.submit("-o", "nowhere/%j.out", "echo", "lost")
    assert gflow.wait(plain) == 0 and gflow.wait(missing) == 1
    assert gflow.log(plain) == f"{plain} []\n"
    said = gflow.run("gjob", "log", str(missing)).stdout
    assert said.startswith(f"gflow: cannot write {gflow.work}/nowhere/{missing}.out")


def test_sbatch_options_gflow_cannot_honour(gflow: Gflow) -> None:
    script = gflow.work / "cluster.sh"
    script.write_text(
        "#!/bin/bash\n#SBATCH --partition=gpu\n#SBATCH -A lab --exclusive\n#SBATCH -n 1\necho ok\n"
    )
    done = gflow.run("gbatch", str(script))
    assert done.stderr.count("\n") == 1
    assert "ignoring #SBATCH options" in done.stderr
    assert "--partition=gpu -A lab --exclusive" in done.stderr
    assert gflow.wait(int(done.stdout.split()[3])) == 0
    before = gflow.queue_json("-a")
    for line in ("#SBATCH --nodes=2", "#SBATCH -N 2-4", "#SBATCH --ntasks=8", "#SBATCH -D /tmp"):
        script.write_text(f"#!/bin/bash\n{line}\necho never\n")
        refused = gflow.run("gbatch", str(script), check=False)
        assert refused.returncode == 2, line
        assert refused.stderr.startswith("gbatch: error: invalid #SBATCH"), refused.stderr
        assert refused.stderr.count("\n") == 1
    assert gflow.queue_json("-a") == before
