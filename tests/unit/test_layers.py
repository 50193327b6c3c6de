"""The layers of the code, enforced: a pure core without I/O, an engine without processes,
handlers that see the runtime only through :mod:`gflow.host`.

Imports are read from the source (every ``import``, also inside functions, except under
``if TYPE_CHECKING:``), then confirmed in a fresh interpreter as
``tests/unit/test_cli_startup.py`` does.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import gflow

SRC = Path(gflow.__file__).parent
PURE = frozenset(
    {
        "gflow.actions",
        "gflow.addresses",
        "gflow.batch",
        "gflow.deps",
        "gflow.directives",
        "gflow.errors",
        "gflow.graph",
        "gflow.jobenv",
        "gflow.jobfiles",
        "gflow.jobrows",
        "gflow.jobsignal",
        "gflow.launchspec",
        "gflow.limits",
        "gflow.model",
        "gflow.notices",
        "gflow.options",
        "gflow.parse",
        "gflow.placement",
        "gflow.protocol",
        "gflow.quotas",
        "gflow.records",
        "gflow.reservations",
        "gflow.scheduler",
        "gflow.slurmspec",
        "gflow.states",
        "gflow.stats",
        "gflow.triage",
    }
)
"""The core: decisions and data, no I/O. Each imports only the others."""
IO = frozenset(
    {
        "aiohttp",
        "asyncio",
        "fcntl",
        "grp",
        "http.client",
        "multiprocessing",
        "os",
        "pwd",
        "resource",
        "select",
        "shutil",
        "socket",
        "sqlite3",
        "subprocess",
        "tempfile",
        "threading",
        "urllib.request",
    }
)
PROCESSES = frozenset({"gflow.executors", "gflow.daemon", "gflow.proc", "gflow.rundir"})
"""What starts, watches or signals processes: the engine leaves that to the runtime."""
ENGINE_NEVER = frozenset({"subprocess", "asyncio", "aiohttp", "gflow.api"})


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> list[ast.AST]:
    """Every node that runs, leaving out ``if TYPE_CHECKING:`` bodies."""
    found: list[ast.AST] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                found += [other, *_walk(other)]
            continue
        found += [child, *_walk(child)]
    return found


@cache
def imports(module: str) -> frozenset[str]:
    """The modules ``module`` imports (``from gflow import x`` counts as ``gflow.x``)."""
    known = all_modules()
    tree = ast.parse(known[module].read_text())
    out: set[str] = set()
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(
                f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known
            )
    return frozenset(out - {"__future__"})


def closure(module: str) -> set[str]:
    """Everything ``module`` imports, directly or through gflow's own modules."""
    seen: set[str] = set()
    work = [module]
    known = all_modules()
    while work:
        for name in imports(work.pop()):
            if name not in seen:
                seen.add(name)
                if name in known:
                    work.append(name)
    return seen


def top(name: str) -> str:
    return name if name.startswith("gflow.") else name.split(".")[0]


def calls_open(module: str) -> bool:
    tree = ast.parse(all_modules()[module].read_text())
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "open"
        for n in _walk(tree)
    )


@pytest.mark.parametrize("module", sorted(PURE))
def test_a_pure_module_does_no_io_and_imports_only_the_core(module: str) -> None:
    assert module in all_modules(), f"{module} is gone: update PURE"
    names = {top(n) for n in imports(module)} | imports(module)
    own = {n for n in names if n.startswith("gflow.")}
    assert own <= PURE, f"{module} imports {sorted(own - PURE)}"
    assert not names & IO, f"{module} imports {sorted(names & IO)}"
    assert not calls_open(module), f"{module} opens files"


def test_the_engine_needs_no_process_code() -> None:
    reached = {top(n) for n in closure("gflow.engine")} | closure("gflow.engine")
    assert not reached & PROCESSES, sorted(reached & PROCESSES)
    assert not reached & ENGINE_NEVER, sorted(reached & ENGINE_NEVER)


def test_only_the_daemon_and_its_command_know_the_runtime() -> None:
    users = {m for m in all_modules() if "gflow.daemon" in imports(m)}
    assert users <= {"gflow.cli.gflowd"}, sorted(users)


def test_the_fresh_interpreter_agrees(tmp_path: Path) -> None:
    """The same, as Python sees it: what importing the modules actually loads."""
    code = (
        "import sys, json\n"
        f"for name in {sorted(PURE)!r}: __import__(name)\n"
        "pure = sorted(sys.modules)\n"
        "import gflow.engine\n"
        "print(json.dumps([pure, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    pure, engine = (set(x) for x in json.loads(done.stdout))
    runtime = {m for m in all_modules() if m not in PURE and m != "gflow"}
    assert not pure & (IO - {"os"}), sorted(pure & IO)  # os: Python's own start-up
    assert not pure & runtime, sorted(pure & runtime)
    assert not engine & (PROCESSES | ENGINE_NEVER), sorted(engine & (PROCESSES | ENGINE_NEVER))
