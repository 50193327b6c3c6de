"""ginfo: the machine's GPUs, who holds them, and a summary of the scheduler."""

from __future__ import annotations

from typing import Any

from gflow.cli.common import EXIT_OK, Parser, add_common, client, run, table

EXAMPLES = """
ginfo                        one line per GPU: state and the jobs holding it
ginfo -o json                the same, as JSON
ginfo completion bash        a shell completion script (also zsh, fish)
"""


def gpu_state(gpu: dict[str, Any]) -> str:
    """idle, allocated to job N (name), shared by jobs ..., unmanaged (...), restricted."""
    use = gpu_use(gpu)
    if gpu["allowed"]:
        return use
    return "restricted (gctl set-gpus)" + ("" if use == "idle" else f"; {use}")


def gpu_use(gpu: dict[str, Any]) -> str:
    """What holds a GPU: idle, allocated to job N (name), shared by jobs ..., unmanaged."""
    jobs = gpu["jobs"]
    parts = []
    if jobs and jobs[0]["shared"]:
        used = sum(j["gpu_memory_mb"] or 0 for j in jobs)
        names = ", ".join(f"{j['id']} ({j['name']})" for j in jobs)
        parts.append(f"shared by jobs {names}, {used} MiB declared")
    elif jobs:
        parts.append(f"allocated to job {jobs[0]['id']} ({jobs[0]['name']})")
    if gpu["foreign_pids"]:
        pids = ",".join(map(str, gpu["foreign_pids"]))
        parts.append(f"unmanaged (pid {pids}, {gpu['foreign_mib']} MiB)")
    text = "; ".join(parts) or "idle"
    window = gpu.get("reservation")
    return f"{text}; {reserved_text(window)}" if window else text


def reserved_text(window: dict[str, Any]) -> str:
    """``reserved for alice until 14:00`` (open now) or ``... from 14:00 to 16:00``."""
    import time

    def hm(ts: float) -> str:
        at = time.localtime(ts)
        clock = "%H:%M" if at.tm_sec == 0 else "%H:%M:%S"
        same_day = at[:3] == time.localtime()[:3]
        return time.strftime(clock if same_day else f"%Y-%m-%d {clock}", at)

    who = f"reserved for {window['user']}"
    if window["state"] == "active":
        return f"{who} until {hm(window['end'])}"
    return f"{who} from {hm(window['start'])} to {hm(window['end'])}"


def build_parser() -> Parser:
    p = Parser("ginfo", "Show GPUs and the scheduler's state.", EXAMPLES)
    add_common(p)
    p.add_argument("-o", "--output", choices=["table", "json"], default="table")
    return p


def main(argv: list[str]) -> int:
    if argv[:1] == ["completion"]:
        from gflow.cli.completion import completion_main

        return completion_main("ginfo", build_parser(), argv[1:])
    args = build_parser().parse_args(argv)
    info = client(args).get("/v1/info")
    if args.output == "json":
        import json

        print(json.dumps(info, indent=2))
        return EXIT_OK
    gpus = info["gpus"]
    if gpus:
        rows = [
            [
                str(g["index"]),
                g["name"],
                f"{g['memory_used_mib']}/{g['memory_total_mib']} MiB",
                gpu_state(g),
            ]
            for g in gpus
        ]
        print(table(["GPU", "NAME", "MEMORY", "STATE"], rows))
    else:
        print("No GPUs (CPU jobs only). Set GFLOW_FAKE_GPUS=N to simulate some.")
    st = info["status"]
    jobs = st["jobs"]
    memory = f"{info['memory_mb']} MB" if info["memory_mb"] else "not limited"
    print()
    print(f"Scheduler: executor {info['executor']}, host memory for jobs {memory}")
    print("Jobs:      " + (", ".join(f"{n} {s}" for s, n in sorted(jobs.items())) or "none active"))
    slurm = st.get("slurm")
    if slurm:
        print("Slurm:     " + slurm_text(slurm))
    return EXIT_OK


def slurm_text(slurm: dict[str, Any]) -> str:
    """The Slurm controller's state as gflow last saw it."""
    if slurm.get("reachable", True):
        return "controller reachable"
    why = str(slurm.get("message") or "no answer").removeprefix("Slurm controller unreachable: ")
    return f"controller UNREACHABLE ({why}); states are as last seen, gflow retries"


def entry() -> None:
    run("ginfo", main)


if __name__ == "__main__":
    entry()
