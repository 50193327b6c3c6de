"""``gflow web``: your personal address of the dashboard gflowd serves (``web = true``).

The daemon gives the token to whoever asks over its Unix socket, as that user (the
kernel says who): the address acts with your rights, exactly as the command line does.
The token is kept in ``web-token`` (mode 0600) next to your configuration file, or in
``~/.config/gflow/`` when that directory is not yours (a shared ``GFLOW_HOME``).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from gflow.cli.common import Parser
    from gflow.config import Paths

HELP = "print your personal address of the web dashboard (and open it)"
EXAMPLES = """
gflow web                    print http://127.0.0.1:PORT/?token=... and open a browser
gflow web --no-browser       only print it (e.g. to open it through an ssh tunnel)
gflow web --new-token        a new address; the old one stops working at once
"""
TOKEN_NAME = "web-token"


def add_arguments(parser: Parser) -> None:
    parser.add_argument(
        "--new-token", action="store_true", help="replace your token (revokes the old address)"
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")


def token_file(paths: Paths) -> str:
    """Where this user keeps the token: beside the configuration when that directory is
    theirs (or does not exist yet), else in their own ``~/.config/gflow``."""
    here = str(paths.config_file.parent)
    try:
        mine = os.stat(here).st_uid == os.getuid()
    except FileNotFoundError:
        mine = True
    if mine:
        return os.path.join(here, TOKEN_NAME)
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return os.path.join(config, "gflow", TOKEN_NAME)


def read_token(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd) as fh:
        return fh.read(200).strip() or None


def save_token(path: str, token: str) -> None:
    """Write the token readable by this user only, replacing the old one atomically."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temporary = f"{path}.{os.getpid()}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _can_open_browser() -> bool:
    graphical = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    return sys.stdout.isatty() and bool(graphical or os.environ.get("BROWSER"))


def run(args: argparse.Namespace) -> int:
    from gflow.cli.common import client

    api = client(args)
    path = token_file(api.paths)
    current = read_token(path)
    answer = api.post("/v1/web/token", {"token": current, "renew": bool(args.new_token)})
    if answer["token"] != current:
        save_token(path, answer["token"])
        print(f"gflow web: a new personal token is saved in {path}", file=sys.stderr)
    print(answer["url"])
    if not args.no_browser and _can_open_browser():
        import webbrowser

        webbrowser.open(answer["url"], new=2)
    return 0
