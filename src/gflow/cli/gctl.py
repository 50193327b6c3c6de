"""gctl: runtime controls — which GPUs gflow hands out, group limits, foreign GPU processes,
quotas and GPU reservations."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gflow.cli import gctl_notify, gctl_quota, gctl_reserve
from gflow.cli.common import (
    EXIT_OK,
    Parser,
    UsageError,
    add_common,
    add_completion,
    client,
    run,
    subcommand,
)

if TYPE_CHECKING:
    from gflow.client import Client

EXAMPLES = """
gctl show-gpus               each GPU: allowed or restricted, and what holds it
gctl set-gpus 0,2            hand out only GPUs 0 and 2 (also: all, 0-3)
gctl set-limit 12 4          at most 4 jobs of array/sweep 12 run at once (0 = no limit)
gctl gpu-process ignore --gpu 0 --pid 4242
                             treat that foreign process as harmless for scheduling
gctl quota set --user alice --max-running-gpus 2
                             alice's running jobs hold at most 2 GPUs at once
gctl reserve create --user bob --gpus 1 --start 14:00 --duration 2h
                             one GPU for bob's jobs only, from 14:00 to 16:00
gctl notifications           mail and webhook deliveries waiting or failed
"""


def build_parser() -> Parser:
    p = Parser("gctl", "Change the scheduler's runtime settings.", EXAMPLES)
    add_common(p)
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    subcommand(sub, "show-gpus", "allowed/restricted state of each GPU", "gctl show-gpus")
    sg = subcommand(
        sub,
        "set-gpus",
        "restrict the GPUs gflow may hand out",
        "gctl set-gpus 0,2\ngctl set-gpus all             lift the restriction",
    )
    sg.add_argument("gpus", metavar="all|0,2|0-3")
    sl = subcommand(
        sub,
        "set-limit",
        "max running jobs of an array or sweep",
        "gctl set-limit 12 4          at most 4 tasks of job 12's group at once (0: no limit)",
    )
    sl.add_argument("job", metavar="JOB_OR_GROUP", type=int)
    sl.add_argument("limit", metavar="N", type=int)
    gp = subcommand(
        sub,
        "gpu-process",
        "ignore foreign GPU processes",
        "gctl gpu-process ignore --gpu 0 --pid 4242\ngctl gpu-process list",
    )
    gp.add_argument("action", choices=["ignore", "unignore", "list"])
    gp.add_argument("--gpu", type=int)
    gp.add_argument("--pid", type=int)
    gctl_quota.add_parser(sub)
    gctl_reserve.add_parser(sub)
    gctl_notify.add_parser(sub)
    add_completion(sub, "gctl")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "completion":
        from gflow.cli.completion import print_completion

        return print_completion("gctl", build_parser(), args.shell)
    api = client(args)
    if args.cmd == "show-gpus":
        return _show_gpus(api)
    if args.cmd == "set-gpus":
        allowed = api.post("/v1/admin/set-gpus", {"gpus": args.gpus})["allowed"]
        if allowed is None:
            print("GPU restriction removed: all GPUs may be used.")
        else:
            print(f"GPU restriction updated: only GPUs {allowed} will be used.")
        return EXIT_OK
    if args.cmd == "quota":
        return gctl_quota.main(api, args)
    if args.cmd == "reserve":
        return gctl_reserve.main(api, args)
    if args.cmd == "notifications":
        return gctl_notify.main(api, args)
    if args.cmd == "set-limit":
        out = api.post("/v1/admin/set-limit", {"job": args.job, "limit": args.limit})
        limit = out["limit"] if out["limit"] is not None else "unlimited"
        print(f"Group {out['group']} ({out['jobs']} jobs): at most {limit} running at once.")
        return EXIT_OK
    return _gpu_process(api, args)


def _show_gpus(api: Client) -> int:
    from gflow.cli.common import table
    from gflow.cli.ginfo import gpu_use

    gpus = api.post("/v1/admin/show-gpus", {})["gpus"]
    if not gpus:
        print("No GPUs.")
        return EXIT_OK
    rows = [
        [str(g["index"]), "allowed" if g["allowed"] else "restricted", gpu_use(g)] for g in gpus
    ]
    print(table(["GPU", "ACCESS", "STATE"], rows))
    return EXIT_OK


def _gpu_process(api: Client, args: argparse.Namespace) -> int:
    if args.action != "list" and (args.gpu is None or args.pid is None):
        raise UsageError(f"gctl gpu-process {args.action} needs --gpu N and --pid PID")
    out = api.post(
        "/v1/admin/gpu-process",
        {"action": args.action, "gpu": args.gpu, "pid": args.pid},
    )
    if not out["ignored"]:
        print("No ignored GPU processes.")
    for gpu, pid in out["ignored"]:
        print(f"GPU {gpu}\tpid {pid}\tignored")
    return EXIT_OK


def entry() -> None:
    run("gctl", main)


if __name__ == "__main__":
    entry()
