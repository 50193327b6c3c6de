"""``gctl notifications``: mail and webhook deliveries that wait or failed, and retries."""

from __future__ import annotations

import argparse

from gflow.cli.common import EXIT_OK, subcommand, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def add_parser(sub: Any) -> None:
    n = subcommand(
        sub,
        "notifications",
        "mail and webhook deliveries: waiting, failed; retry them",
        "gctl notifications               those waiting for a (next) try, and those failed\n"
        "gctl notifications --failed      only those given up\n"
        "gctl notifications --all         delivered ones too (kept a day)\n"
        "gctl notifications --retry 12,13 try these again now\n"
        "gctl notifications --retry all   try every failed one again",
        description="Each row is one delivery of one event: to a configured webhook, a job's\n"
        "--notify-url or its --mail-user. A failed try is retried, waiting longer each time,\n"
        "for [notifications] retry_for seconds; then the row is failed until retried. Users\n"
        "see their own jobs' rows; administrators see all.",
    )
    shown = n.add_mutually_exclusive_group()
    shown.add_argument("--failed", action="store_true", help="only failed deliveries")
    shown.add_argument("--all", action="store_true", help="delivered ones too")
    shown.add_argument("--retry", metavar="IDS|all", help="try these (or all failed) again now")
    n.add_argument("-n", "--limit", type=int, default=100, metavar="N", help="at most N rows")
    n.add_argument("-o", "--output", choices=["table", "json"], default="table")


def main(api: Any, args: argparse.Namespace) -> int:
    if args.retry is not None:
        return _retry(api, args.retry)
    states = ["failed"] if args.failed else ["pending", "failed"]
    if args.all:
        states.append("delivered")
    out = api.post(
        "/v1/admin/notifications", {"action": "list", "states": states, "limit": args.limit}
    )
    if args.output == "json":
        import json

        print(json.dumps(out, indent=2))
        return EXIT_OK
    rows = out["notifications"]
    if not rows:
        print("No notifications waiting or failed." if not args.all else "No notifications.")
        return EXIT_OK
    print(table(["ID", "EVENT", "JOB", "TO", "STATE", "TRIES", "WHEN", "LAST ERROR"], _rows(rows)))
    return EXIT_OK


def _rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    import time

    def when(row: dict[str, Any]) -> str:
        at = row["next_try"] if row["state"] == "pending" else row["created"]
        prefix = "next " if row["state"] == "pending" else ""
        return prefix + time.strftime("%m-%d %H:%M:%S", time.localtime(at))

    return [
        [
            str(r["id"]),
            r["event"],
            "-" if r["job"] is None else str(r["job"]),
            f"{r['channel']} {r['target']}",
            r["state"],
            str(r["attempts"]),
            when(r),
            (r["last_error"] or "-")[:80],
        ]
        for r in rows
    ]


def _retry(api: Any, text: str) -> int:
    from gflow.errors import InvalidInput

    body: dict[str, Any] = {"action": "retry"}
    if text.strip().lower() != "all":
        words = [w.strip() for w in text.split(",") if w.strip()]
        if not words or not all(w.isascii() and w.isdigit() and len(w) <= 18 for w in words):
            raise InvalidInput("--retry", text, "notification ids such as 12,13, or all")
        body["ids"] = [int(w) for w in words]
    retried = api.post("/v1/admin/notifications", body)["retried"]
    if not retried:
        print("Nothing to retry.")
    else:
        print(f"Retrying {len(retried)} notification(s): {', '.join(map(str, retried))}")
    return EXIT_OK
