"""``gctl quota list|set|remove``: per-user and per-project limits."""

from __future__ import annotations

import argparse

from gflow.cli.common import EXIT_OK, UsageError, subcommand, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

LIMIT_FLAGS = (
    ("--max-running-jobs", "max_running_jobs", "jobs running at once"),
    ("--max-running-gpus", "max_running_gpus", "GPUs held by running jobs at once"),
    ("--max-queued-jobs", "max_queued_jobs", "jobs Queued or Hold (checked at submission)"),
)
PROG = "gctl quota"
NOTE = "Cells are used/limit; `-` means unlimited. Fallback rows show the limit only."


def add_parser(sub: Any) -> None:
    q = subcommand(
        sub,
        "quota",
        "limits per user and per project",
        "gctl quota list\n"
        "gctl quota set --user alice --max-running-jobs 2 --max-running-gpus 4\n"
        "gctl quota set --default-user --max-queued-jobs 100\n"
        "gctl quota set --project nlp --max-running-gpus unlimited\n"
        "gctl quota remove --user alice",
        description="Limits per user and per project. A user without an entry of their own\n"
        "gets the --default-user entry (projects likewise); a job without a project has no\n"
        "project limits. N is a whole number >= 0, or 'unlimited'.",
    )
    q.add_argument("action", choices=["list", "set", "remove"])
    who = q.add_mutually_exclusive_group()
    who.add_argument("--user", metavar="U", help="the quota of user U")
    who.add_argument("--project", metavar="P", help="the quota of project P")
    who.add_argument("--default-user", action="store_true", help="users without their own")
    who.add_argument("--default-project", action="store_true", help="projects without their own")
    for flag, _, text in LIMIT_FLAGS:
        q.add_argument(flag, metavar="N", help=f"at most N {text}")


def _target(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.user is not None:
        return "user", args.user
    if args.project is not None:
        return "project", args.project
    if args.default_user:
        return "default_user", None
    if args.default_project:
        return "default_project", None
    raise UsageError(
        f"gctl quota {args.action} needs --user U, --project P, --default-user or --default-project"
    )


def _limit(text: str, field: str) -> int | None:
    from gflow.errors import InvalidInput

    word = text.strip()
    if word.lower() in ("unlimited", "none", "-"):
        return None
    if not (word.isascii() and word.isdigit() and len(word) <= 9):
        raise InvalidInput(field, text, "a whole number from 0 to 999999999, or unlimited")
    return int(word)


def main(api: Any, args: argparse.Namespace) -> int:
    given = {key: getattr(args, key) for _, key, _ in LIMIT_FLAGS}
    given = {k: v for k, v in given.items() if v is not None}
    if args.action == "list":
        return _list(api.post("/v1/admin/quota", {"action": "list"})["quotas"])
    scope, name = _target(args)
    label = f"{scope} quota" if name is None else f"{scope} quota '{name}'"
    body: dict[str, Any] = {"action": args.action, "scope": scope, "name": name}
    if args.action == "remove":
        if given:
            raise UsageError("gctl quota remove takes no limits (use gctl quota set)", PROG)
        api.post("/v1/admin/quota", body)
        print(f"Removed {label}" if name is None else f"Removed {scope} quota override '{name}'")
        return EXIT_OK
    if not given:
        flags = ", ".join(flag for flag, _, _ in LIMIT_FLAGS)
        raise UsageError(f"gctl quota set needs at least one of {flags}", PROG)
    body["limits"] = {k: _limit(v, k.replace("_", "-")) for k, v in given.items()}
    out = api.post("/v1/admin/quota", body)
    print(f"Updated {label}")
    for key, value in out["changed"].items():
        print(f"  {key} = {'unlimited' if value is None else value}")
    return EXIT_OK


def _cell(used: int | None, limit: int | None) -> str:
    shown = "-" if limit is None else str(limit)
    return shown if used is None else f"{used}/{shown}"


def _list(rows: list[dict[str, Any]]) -> int:
    lines = []
    for row in rows:
        used, lim = row["used"] or {}, row["limits"]
        lines.append(
            [
                row["scope"],
                row["name"],
                _cell(used.get("jobs"), lim["max_running_jobs"]),
                _cell(used.get("gpus"), lim["max_running_gpus"]),
                _cell(used.get("queued"), lim["max_queued_jobs"]),
            ]
        )
    print(table(["SCOPE", "NAME", "JOBS", "GPUS", "QUEUED"], lines))
    print()
    print(NOTE)
    return EXIT_OK
