"""gflowd: start, stop and inspect the daemon."""

from __future__ import annotations

import argparse
import os
import sys
import time

from gflow.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    Parser,
    add_common,
    add_completion,
    hms,
    run,
    subcommand,
)
from gflow.config import DEFAULT_CONFIG, Paths, resolve_paths
from gflow.errors import DaemonUnavailable, GflowError

EXAMPLES = """
gflowd init --yes            write a default configuration file
gflowd up                    start the daemon in the background
gflowd up --gpus 0,1         start it, handing out only GPUs 0 and 1
gflowd status                is it running? pid, uptime, GPUs
gflowd down                  stop it (running jobs keep running)
"""


def build_parser() -> Parser:
    p = Parser("gflowd", "The gflow daemon: owns the queue, GPUs and the job database.", EXAMPLES)
    add_common(p)
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    init = subcommand(
        sub,
        "init",
        "write a default configuration file",
        "gflowd init --yes\ngflowd init --force          overwrite an existing file",
    )
    init.add_argument("--yes", "-y", action="store_true", help="do not ask")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    up_examples = {
        "up": "gflowd up\ngflowd up --gpus 0,1 --gpu-allocation-strategy random",
        "restart": "gflowd restart               stop, then start (running jobs keep running)",
    }
    helps = {"up": "start the daemon", "restart": "stop the daemon, then start it"}
    for name, aliases in (("up", ["start"]), ("restart", [])):
        up = subcommand(sub, name, helps[name], up_examples[name], aliases)
        up.add_argument(
            "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="-v info, -vv debug"
        )
        up.add_argument("--foreground", action="store_true", help="stay in the foreground")
        up.add_argument("--gpus", metavar="SPEC", help="GPUs to hand out: all, 0,2 or 0-3")
        up.add_argument("--gpu-allocation-strategy", choices=["sequential", "random"])
        up.add_argument(
            "--executor",
            metavar="NAME",
            help="auto, tmux, process or slurm; both a local one and slurm: auto,slurm "
            "(the first is the default; a job may ask for the other with --executor)",
        )
        up.add_argument(
            "--system",
            action="store_true",
            help="run as the machine-wide daemon for all users (root only)",
        )
        up.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    subcommand(
        sub,
        "down",
        "stop the daemon (jobs keep running)",
        "gflowd down                  running jobs keep running; gflowd up adopts them",
        ["stop"],
    )
    subcommand(sub, "status", "show whether the daemon runs, and how", "gflowd status")
    subcommand(
        sub,
        "reload",
        "re-read the configuration file",
        "gflowd reload                after editing gflow.toml",
    )
    doc = subcommand(
        sub,
        "doctor",
        "check the installation; --repair fixes what it safely can",
        "gflowd doctor\ngflowd down && gflowd doctor --repair",
    )
    doc.add_argument("--repair", action="store_true", help="repair (gflowd must be stopped)")
    doc.add_argument("--system", action="store_true", help="the machine-wide installation")
    svc = subcommand(
        sub,
        "service",
        "write or remove a systemd unit for gflowd",
        "gflowd service install && systemctl --user enable --now gflowd",
    )
    svc.add_argument("action", choices=["install", "uninstall"])
    svc.add_argument("--system", action="store_true", help="the machine-wide unit (root)")
    add_completion(sub, "gflowd")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    system = bool(getattr(args, "system", False))
    paths = resolve_paths(args.config, system=system)
    cmd = {"start": "up", "stop": "down"}.get(args.cmd, args.cmd)
    if cmd == "init":
        return _init(paths, args.force)
    if cmd == "up":
        return _up(paths, args)
    if cmd == "down":
        return _down(paths)
    if cmd == "restart":
        stopped = _down(paths)
        return stopped if stopped != EXIT_OK else _up(paths, args)
    if cmd == "status":
        return _status(paths, args)
    if cmd == "doctor":
        return _doctor(paths, args.repair, system)
    if cmd == "service":
        from gflow import service

        action = service.install if args.action == "install" else service.uninstall
        print(action(args.system))
        return EXIT_OK
    if cmd == "reload":
        from gflow.client import Client

        answer = Client(paths).post("/v1/admin/reload", {})
        print("gflowd reloaded its configuration.")
        if answer["needs_restart"]:
            print(f"A restart (gflowd restart) is needed for: {', '.join(answer['needs_restart'])}")
        return EXIT_OK
    from gflow.cli.completion import print_completion

    return print_completion("gflowd", build_parser(), args.shell)


def _doctor(paths: Paths, repair: bool, system: bool) -> int:
    import contextlib

    from gflow.config import load_daemon_config
    from gflow.doctor import check

    with contextlib.suppress(GflowError):  # doctor also checks a broken configuration's home
        system = system or load_daemon_config(paths).system
    running = _running_pid(paths) is not None
    findings = check(paths, repair=repair, daemon_running=running, system=system)
    for finding in findings:
        print(f"{finding.level:>5}: {finding.message}")
    return EXIT_REFUSED if any(f.level == "error" for f in findings) else EXIT_OK


def _init(paths: Paths, force: bool) -> int:
    target = paths.config_file
    if target.exists() and not force:
        print(f"gflowd: error: {target} already exists (use --force to overwrite)", file=sys.stderr)
        return EXIT_REFUSED
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(DEFAULT_CONFIG)
    print(f"Configuration saved to: {target}")
    return EXIT_OK


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    level = {0: None, 1: "info", 2: "debug"}.get(args.verbose, "debug")
    return {
        "gpus": args.gpus,
        "gpu_allocation_strategy": args.gpu_allocation_strategy,
        "executor": args.executor,
        "system": True if args.system else None,
        "log_level": level,
    }


def _up(paths: Paths, args: argparse.Namespace) -> int:
    from gflow.config import load_daemon_config

    if args.system and os.getuid() != 0:
        print("gflowd: error: the system daemon must be started by root", file=sys.stderr)
        return EXIT_REFUSED
    config = load_daemon_config(paths, _overrides(args))
    if args.foreground:
        from gflow.daemon import run as run_daemon

        return run_daemon(paths, config, ready=args.ready_fd, foreground=True)
    pid = _running_pid(paths)
    if pid is not None:  # what was asked is true: scripts may call gflowd up every time
        print(f"gflowd is already running (pid {pid}).")
        return EXIT_OK
    return _spawn(paths, args)


def _spawn(paths: Paths, args: argparse.Namespace) -> int:
    import select
    import subprocess

    read, write = os.pipe()
    argv = [sys.executable, "-m", "gflow.cli.gflowd"]
    if args.config:
        argv += ["--config", args.config]
    argv += ["-v"] * args.verbose + ["up", "--foreground", "--ready-fd", str(write)]
    for flag in ("gpus", "gpu_allocation_strategy", "executor"):
        value = getattr(args, flag)
        if value:
            argv += [f"--{flag.replace('_', '-')}", value]
    if args.system:
        argv.append("--system")
    paths.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    with open(os.open(paths.daemon_log, flags, 0o600), "ab") as crashes:  # if it cannot start
        proc = subprocess.Popen(
            argv,
            pass_fds=(write,),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=crashes,
            cwd="/",
        )
    os.close(write)
    line = b""
    deadline = time.monotonic() + 30
    while not line.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([read], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        chunk = os.read(read, 4096)
        if not chunk:
            break
        line += chunk
    os.close(read)
    answer = line.decode().strip()
    if answer == "ok":
        print(f"gflowd started (pid {proc.pid}).")
        return EXIT_OK
    if "already running" in answer:  # another gflowd up was quicker
        print(f"{answer.removeprefix('error: ')}.")
        return EXIT_OK
    reason = answer.removeprefix("error: ") or f"see {paths.daemon_log}"
    print(f"gflowd: error: gflowd did not start: {reason}", file=sys.stderr)
    return EXIT_REFUSED


def _running_pid(paths: Paths) -> int | None:
    """The pid in the lock file if a daemon holds the lock, else None."""
    import fcntl

    try:
        fd = os.open(paths.lock_file, os.O_RDONLY)
    except OSError:  # none, or another user's daemon (its lock is private)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)
    return None


def _down(paths: Paths) -> int:
    import signal

    from gflow.client import Client, RemoteError

    client = Client(paths, timeout=5)
    own = _running_pid(paths)
    pid = own
    if pid is None:  # not ours (or its lock is not ours to read): ask the daemon we reach
        try:
            pid = int(client.get("/v1/health")["pid"])
        except DaemonUnavailable:
            print("gflowd is not running.")
            return EXIT_OK
    try:
        client.post("/v1/shutdown", {})
    except GflowError as exc:
        if isinstance(exc, RemoteError) and exc.status == 403:
            print(f"gflowd: error: permission denied: {exc.message}", file=sys.stderr)
            return EXIT_REFUSED
        if own is None or own <= 0:
            raise
        os.kill(own, signal.SIGTERM)  # our own daemon, busy or unreachable: the signal
    if pid > 0 and not _wait_gone(pid, 15):
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 5)
        print("gflowd did not stop in time and was killed; running jobs keep running.")
        return EXIT_OK
    print("gflowd stopped.")
    return EXIT_OK


def _wait_gone(pid: int, timeout: float) -> bool:
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def _status(paths: Paths, args: argparse.Namespace) -> int:
    from gflow.client import Client

    try:
        st = Client(paths, config=args.config, timeout=10).get("/v1/health")
    except DaemonUnavailable:
        print("Status:    Not running")
        print("The gflowd daemon is not running (start it with: gflowd up).")
        return EXIT_UNAVAILABLE
    jobs = st.get("jobs", {})
    rows = [
        ("Status", "Running" + (" (system daemon, all users)" if st["system"] else "")),
        ("PID", str(st["pid"])),
        ("Uptime", hms(st["uptime"])),
        ("Version", _version_text(st["version"])),
        ("Executor", st["executor"]),
        (
            "GPUs",
            f"{st['gpus_total']} total, {st['gpus_available']} available"
            + (f" ({st['gpu_backend']})" if st.get("gpu_backend") else ""),
        ),
        ("Jobs", ", ".join(f"{n} {s}" for s, n in sorted(jobs.items())) or "none active"),
        ("Database", st["database"]),
        ("Socket", st["socket"]),
    ]
    if st.get("tcp"):
        rows.append(("TCP", st["tcp"]))
    if st.get("slurm"):
        from gflow.cli.ginfo import slurm_text

        rows.append(("Slurm", slurm_text(st["slurm"])))
    conns = st.get("connections")
    if conns:
        text = f"{conns['open']} open, {conns['refused']} refused"
        if conns["out_of_fds"]:
            text += f", {conns['out_of_fds']} when out of file descriptors"
        rows.append(("Clients", text))
    for key, value in rows:
        print(f"{key + ':':<10} {value}")
    return EXIT_OK


def _version_text(daemon: str) -> str:
    """The running daemon's version, and the installed tools' when they differ."""
    from gflow import version

    mine = version()
    return daemon if daemon == mine else f"{daemon} (installed: {mine}; gflowd restart runs it)"


def entry() -> None:
    run("gflowd", main)


if __name__ == "__main__":
    entry()
