"""``gctl reserve create|list|get|cancel``: GPUs set aside for one user over a window."""

from __future__ import annotations

import argparse

from gflow.cli.common import EXIT_OK, UsageError, clock, now_local, subcommand, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PROG = "gctl reserve"


def add_parser(sub: Any) -> None:
    r = subcommand(
        sub,
        "reserve",
        "GPU reservations for one user over a time window",
        "gctl reserve create --user alice --gpus 2 --start 14:00 --duration 2h\n"
        "gctl reserve create --user bob --gpu-spec 0,2 --start '2026-05-01 09:00' "
        "--duration 90\n"
        "gctl reserve list             upcoming and active ones (--all: also past)\n"
        "gctl reserve get 3\n"
        "gctl reserve cancel 3",
        description="GPU reservations. During the window the cards go only to jobs of the\n"
        "user; before it, other users' jobs may use them only if their time limit ends before\n"
        "the window opens. The user's own jobs may use them at any time.\n"
        "WHEN: what gbatch --begin takes (14:00, now+1h, 2026-05-01T09:00,\n"
        "'2026-05-01 09:00'), or ISO 8601 with a zone. D: 1h, 30m, 2h30m, 45s, or minutes (90).",
    )
    r.add_argument("action", choices=["create", "list", "get", "cancel"])
    r.add_argument("id", nargs="?", type=int, metavar="ID", help="reservation id (get, cancel)")
    r.add_argument("--user", metavar="U", help="who the GPUs are reserved for")
    cards = r.add_mutually_exclusive_group()
    cards.add_argument("--gpus", type=int, metavar="N", help="any N GPUs (lowest index first)")
    cards.add_argument("--gpu-spec", metavar="0,2", help="these GPUs")
    r.add_argument("--start", metavar="WHEN", help="when the window opens")
    r.add_argument("--duration", metavar="D", help="how long it stays open")
    r.add_argument("--all", action="store_true", help="list ended and cancelled ones too")


def main(api: Any, args: argparse.Namespace) -> int:
    if args.action == "list":
        out = api.post("/v1/admin/reserve", {"action": "list", "all": args.all})
        return _list(out["reservations"])
    if args.action == "create":
        return _create(api, args)
    if args.id is None:
        raise UsageError(f"gctl reserve {args.action} needs a reservation ID", PROG)
    found = api.post("/v1/admin/reserve", {"action": args.action, "id": args.id})
    if args.action == "cancel":
        print(f"Cancelled reservation {found['id']} ({_summary(found)}).")
        return EXIT_OK
    for key, value in (
        ("Reservation", str(found["id"])),
        ("User", found["user"]),
        ("GPUs", _gpus(found)),
        ("Start", clock(found["start"])),
        ("End", clock(found["end"])),
        ("State", found["state"]),
        ("Created", clock(found["created"])),
        ("Cancelled", clock(found["cancelled"])),
    ):
        print(f"{key + ':':<13}{value}")
    return EXIT_OK


def _create(api: Any, args: argparse.Namespace) -> int:
    from gflow.parse import parse_duration, parse_index_set, parse_when

    missing = [
        flag for flag, value in (("--user", args.user), ("--start", args.start)) if value is None
    ]
    if args.duration is None:
        missing.append("--duration")
    if args.gpus is None and args.gpu_spec is None:
        missing.append("--gpus N or --gpu-spec")
    if missing:
        raise UsageError(f"gctl reserve create needs {', '.join(missing)}", PROG)
    body: dict[str, Any] = {
        "action": "create",
        "user": args.user,
        "start": parse_when(args.start, now_local()),
        "duration": parse_duration(args.duration),
    }
    if args.gpu_spec is not None:
        ids = parse_index_set(args.gpu_spec, "gpu spec")
        if ids is None:
            raise UsageError("--gpu-spec takes GPU indices such as 0,2 (or use --gpus N)", PROG)
        body["gpu_ids"] = ids
    else:
        body["gpus"] = args.gpus
    made = api.post("/v1/admin/reserve", body)
    print(f"Reservation {made['id']} created: {_summary(made)}, {made['state']}.")
    return EXIT_OK


def _gpus(r: dict[str, Any]) -> str:
    return ",".join(map(str, r["gpu_ids"]))


def _summary(r: dict[str, Any]) -> str:
    return f"GPU {_gpus(r)} for {r['user']}, {clock(r['start'])} to {clock(r['end'])}"


def _list(found: list[dict[str, Any]]) -> int:
    if not found:
        print("No reservations found.")
        return EXIT_OK
    rows = [
        [str(r["id"]), r["user"], _gpus(r), clock(r["start"]), clock(r["end"]), r["state"]]
        for r in found
    ]
    print(table(["ID", "USER", "GPUS", "START", "END", "STATE"], rows))
    return EXIT_OK
