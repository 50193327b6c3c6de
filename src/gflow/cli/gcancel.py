"""gcancel: cancel jobs (queued ones at once, running ones by signal)."""

from __future__ import annotations

import sys

from gflow.cli.common import EXIT_OK, EXIT_REFUSED, Parser, add_common, client, run, safe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EXAMPLES = """
gcancel 42                   one job
gcancel 1,2,3   gcancel 1-5   gcancel 1,3,5-7
gcancel @                    my most recent submission
gcancel 12_3                 task 3 of array 12 (gcancel 12 cancels the whole array)
gcancel --dry-run 1          what would be cancelled, and which dependents it strands
gcancel completion bash      a shell completion script
"""


def build_parser() -> Parser:
    p = Parser(
        "gcancel",
        "Cancel jobs. Queued jobs that depend on them are cancelled too (reason\n"
        "DependencyFailed:<id>), unless they were submitted with --no-auto-cancel.",
        EXAMPLES,
        usage="gcancel [--dry-run] IDS\n       gcancel completion bash|zsh|fish",
    )
    add_common(p)
    p.add_argument("--dry-run", action="store_true", help="only show what would happen")
    p.add_argument("ids", nargs="+", metavar="IDS", help="42, 1,2,3, 1-5, 1,3,5-7, @, 12_3")
    return p


def main(argv: list[str]) -> int:
    if argv[:1] == ["completion"]:
        from gflow.cli.completion import completion_main

        return completion_main("gcancel", build_parser(), argv[1:])
    args = build_parser().parse_args(argv)
    ids = ",".join(args.ids)
    answer = client(args).post("/v1/jobs/cancel", {"ids": ids, "dry_run": args.dry_run})
    ended: list[dict[str, Any]] = []
    acted = 0
    for job in answer["jobs"]:
        action = job["action"]
        name = safe(job["name"])
        if job.get("dependent"):
            print(f"  dependent {job['id']} ({name}, {job['state']}): {action}")
        elif args.dry_run:
            print(f"Job {job['id']} ({name}, {job['state']}): {action}")
        elif action == "cancelled":
            print(f"Job {job['id']} cancelled.")
            acted += 1
        elif action == "stopping":
            print(f"Job {job['id']} is being stopped (SIGINT, then SIGTERM, then SIGKILL).")
            acted += 1
        else:
            ended.append(job)
    return _already_ended(ended, acted)


def _already_ended(ended: list[dict[str, Any]], acted: int) -> int:
    """Jobs that had ended before: one line. Refused only when nothing could be cancelled."""
    if not ended:
        return EXIT_OK
    from collections import Counter

    states = Counter(job["action"].removeprefix("already ") for job in ended)
    how = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    if len(ended) == 1:
        what = f"job {ended[0]['id']} had already ended ({next(iter(states))})"
    else:
        what = f"{len(ended)} of the jobs had already ended ({how})"
    if acted:
        print(f"gcancel: {what}; the others were cancelled", file=sys.stderr)
        return EXIT_OK
    print(f"gcancel: error: nothing to cancel: {what}", file=sys.stderr)
    return EXIT_REFUSED


def entry() -> None:
    run("gcancel", main)


if __name__ == "__main__":
    entry()
