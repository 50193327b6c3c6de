"""The command-line tools start fast and explain themselves.

Imports are checked in a fresh interpreter (``sys.modules``), never by timing; every
parser and sub-parser is walked for an example in its help.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gflow.cli import completion
from gflow.cli.argp import ArgParser
from gflow.cli.common import Parser, UsageError, call

TOOLS = ("gbatch", "gqueue", "gcancel", "gjob", "ginfo", "gctl", "gstats", "gflowd", "gflow")
# What no client may pay for at start-up: the daemon's stack and the heavy stdlib parts.
HEAVY = (
    "aiohttp",
    "asyncio",
    "http.client",
    "importlib.metadata",
    "gflow.api",
    "gflow.daemon",
    "gflow.engine",
)
# What the hot path (gqueue on an empty queue) also avoids.
HOT_AVOIDED = (
    *HEAVY,
    "typing",
    "datetime",
    "dataclasses",
    "pathlib",
    "shutil",
    "gflow.config",
    "gflow.parse",
)
# What a command of the common shape (no --help, no error) also avoids: argparse, json
# and, through them, re and enum (a third of a client's start-up).
FAST_AVOIDED = (*HOT_AVOIDED, "argparse", "json", "re", "enum")


def _modules_after(code: str, tmp_path: Path) -> set[str]:
    env = {**os.environ, "GFLOW_HOME": str(tmp_path), "NO_COLOR": "1"}
    script = (
        f"import sys\n{code}\nloaded = sorted(sys.modules)\nimport json\nprint(json.dumps(loaded))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("tool", TOOLS)
def test_importing_a_tool_does_not_import_the_daemon_stack(tool: str, tmp_path: Path) -> None:
    loaded = _modules_after(f"import gflow.cli.{tool}", tmp_path)
    assert not loaded & set(HEAVY)


def _fake_gflowd(home: Path, body: bytes = b'{"jobs": [], "now": 0}') -> threading.Thread:
    """Answer one request on ``home/gflowd.sock`` with ``body`` (an empty job list)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(home / "gflowd.sock"))
    server.listen(1)
    server.settimeout(60)

    def serve() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n"
                conn.sendall(head.encode() + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_gqueue_hot_path_imports_little(tmp_path: Path) -> None:
    """``gqueue`` on an empty queue, and ``gqueue --help``, import only what they need."""
    server = _fake_gflowd(tmp_path)
    run_main = (
        "from gflow.cli import gqueue\n"
        "from gflow.cli.common import call\n"
        "assert call('gqueue', gqueue.main, []) == 0\n"
    )
    assert not _modules_after(run_main, tmp_path) & set(FAST_AVOIDED)
    server.join(10)
    show_help = (
        "from gflow.cli import gqueue\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    gqueue.build_parser().format_help()\n"
    )
    assert not _modules_after(show_help, tmp_path) & set(HOT_AVOIDED)


def test_gbatch_of_a_command_imports_little(tmp_path: Path) -> None:
    job = b'{"id": 1, "name": "true", "state": "Queued", "reason": null}'
    server = _fake_gflowd(tmp_path, b'{"jobs": [' + job + b"]}")
    run_main = (
        "import contextlib, io\n"
        "from gflow.cli import gbatch\n"
        "from gflow.cli.common import call\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert call('gbatch', gbatch.main, ['-g', '1', '--name', 'x', 'true']) == 0\n"
    )
    assert not _modules_after(run_main, tmp_path) & set(FAST_AVOIDED)
    server.join(10)


def test_job_options_cost_a_client_no_parser(tmp_path: Path) -> None:
    """gbatch and gjob build their options from the table and send text: the parsers,
    and what they import, stay in the daemon."""
    build = (
        "from gflow.cli import gbatch, gjob\n"
        "argv = ['-g', 'gpu:1', '-t', '1:00', '--begin', 'now', '-d', '@', 'true']\n"
        "gbatch._request(gbatch.build_parser().parse_args(argv), None)\n"
        "gjob._changes(gjob.build_parser().parse_args(['update', '1', '-g', '2']))\n"
    )
    parsers = {"typing", "dataclasses", "datetime", "gflow.parse", "gflow.deps", "gflow.protocol"}
    assert not _modules_after(build, tmp_path) & (set(HEAVY) | parsers)
    table = "from gflow.options import BY_KEY\nassert BY_KEY['gpus'].flag == '--gpus'\n"
    assert not _modules_after(table, tmp_path) & (set(HEAVY) | parsers | {"argparse"})


@pytest.mark.parametrize(
    "env",
    [
        {"GFLOW_HOME": "/tmp/some where/../home"},
        {"GFLOW_HOME": "~/gf"},
        {"XDG_RUNTIME_DIR": "/run/user/1234"},
        {},
    ],
)
def test_client_socket_path_agrees_with_config(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gflow.client import default_sockets
    from gflow.config import resolve_paths

    for key in ("GFLOW_HOME", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    expected = os.path.normpath(resolve_paths().socket)
    assert os.path.normpath(default_sockets()[0]) == expected


# ------------------------------------------------------------ help and parsers


def _walk(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found += _walk(sub)
    return found


def _all_parsers() -> list[argparse.ArgumentParser]:
    parsers: list[argparse.ArgumentParser] = []
    for tool in TOOLS:
        module = importlib.import_module(f"gflow.cli.{tool}")
        parsers += _walk(module.build_parser())
        parsers.append(completion.completion_parser(tool))
    from gflow.cli.gbatch import new_parser

    parsers.append(new_parser())
    return parsers


def test_every_command_and_subcommand_help_has_an_example() -> None:
    parsers = _all_parsers()
    assert len(parsers) > 30
    for parser in parsers:
        text = parser.format_help()
        assert "example" in text, parser.prog
        assert isinstance(parser, (Parser, ArgParser)), parser.prog


def test_every_tool_takes_config_before_and_after_a_subcommand() -> None:
    from gflow.cli.gjob import build_parser

    assert build_parser().parse_args(["--config", "a.toml", "show", "1"]).config == "a.toml"
    assert build_parser().parse_args(["show", "1", "--config", "b.toml"]).config == "b.toml"


def test_usage_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from gflow.cli import gqueue

    assert call("gqueue", gqueue.main, ["--limit", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'x'" in err and "gqueue --help" in err


def test_an_unexpected_exception_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def boom(argv: list[str]) -> int:
        raise RuntimeError("surprise")

    assert call("gtest", boom, []) == 1
    err = capsys.readouterr().err
    assert err.startswith("gtest: error: internal error: RuntimeError: surprise")
    assert err.count("\n") == 1


def test_parser_error_raises_instead_of_exiting() -> None:
    parser = Parser("gtest", "test", "gtest 1")
    parser.add_argument("n", type=int)
    with pytest.raises(UsageError, match="invalid int value"):
        parser.parse_args(["x"])


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("shell", completion.SHELLS)
def test_completion_scripts(tool: str, shell: str, tmp_path: Path) -> None:
    module = importlib.import_module(f"gflow.cli.{tool}")
    text = completion.script(tool, module.build_parser(), shell, ["completion"])
    assert tool in text and "config" in text
    if shell == "bash":
        path = tmp_path / "c.bash"
        path.write_text(text)
        subprocess.run(["bash", "-n", str(path)], check=True)


@pytest.mark.parametrize("tool", TOOLS)
def test_every_tool_prints_the_installed_version(tool: str) -> None:
    """One source for the version: the distribution's metadata, built from pyproject.toml."""
    import importlib.metadata

    done = subprocess.run(
        [str(Path(sys.executable).parent / tool), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout == f"{tool} {importlib.metadata.version('gflow-scheduler')}\n"


def test_gflowd_status_says_when_the_installed_version_differs() -> None:
    from gflow import version
    from gflow.cli.gflowd import _version_text

    assert _version_text(version()) == version()
    assert _version_text("0.0.1") == f"0.0.1 (installed: {version()}; gflowd restart runs it)"


def test_gflow_imports_only_the_subcommand_it_runs(tmp_path: Path) -> None:
    """``gflow NAME`` imports the module of NAME alone; ``gflow --help`` lists them all."""
    from gflow.cli.gflow import build_parser, names

    assert "man" in names()
    run_man = (
        "import contextlib, io\n"
        "from gflow.cli import gflow\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert gflow.main(['man', 'gcancel', '--roff']) == 0\n"
    )
    loaded = _modules_after(run_man, tmp_path)
    assert {m for m in loaded if m.startswith("gflow.cli.gflow.")} == {"gflow.cli.gflow.man"}
    assert not loaded & (set(HEAVY) - {"importlib.metadata"})
    listed = build_parser().format_help()
    assert all(name in listed for name in names())


def test_import_gflow_is_cheap_and_the_python_api_loads_on_use(tmp_path: Path) -> None:
    """``import gflow`` costs the tools nothing; ``gflow.Client`` and ``gflow.Executor``
    load their modules when first used, and neither the daemon's stack nor asyncio."""
    loaded = _modules_after("import gflow", tmp_path)
    assert {m for m in loaded if m.startswith("gflow")} == {"gflow"}
    assert not loaded & set(HOT_AVOIDED)
    used = _modules_after("import gflow\ngflow.Client, gflow.Executor, gflow.JobInfo", tmp_path)
    assert {"gflow.sdk", "gflow.futures", "gflow.records"} <= used
    assert not used & set(HEAVY)
