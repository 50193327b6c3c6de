"""Every shell example in the documentation runs, against a real daemon.

The fenced ```` ```bash ```` blocks of README.md and docs/**/*.md are examples: each page
gets a fresh installation (a temporary ``GFLOW_HOME``, four fake 24 GiB GPUs, the process
executor) and its blocks run in order, each in its own ``bash -e -o pipefail``, in a
work directory that holds small stand-ins for the programs the examples name
(``train.py`` and friends print their arguments and exit 0). The daemon is started
before the first block unless that block starts it (``gflowd up``); job ids therefore
count from 1 on every page. Users ``alice`` and ``bob`` exist for the pages that name
them (created if missing, which needs root).

The ```` ```python ```` blocks of a page run too, against a daemon of their own (set up
the same way): in order, in one interpreter, as one session, so a block uses what an
earlier one defined. Python that must not run is fenced as ``pycon`` or ``text``.

Blocks that must not run here — installing, a system daemon, an interactive session,
shown output — are fenced as ``console`` or ``text``; any other shell-like fence is
refused, so every example is one or the other on purpose.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import Gflow, local_user

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
RUNS = "bash"
RUNS_PYTHON = "python"
SHOWN = {"console", "text", "toml", "pycon", "json", "csv"}
STAND_INS = ("train.py", "eval.py", "task.py", "prep.py")
USERS = ("alice", "bob")
BLOCK_TIMEOUT = 120


def fences(page: Path) -> list[tuple[str, int, str]]:
    """``(language, line, code)`` of every fenced block of ``page``."""
    text = page.read_text(encoding="utf-8")
    return [
        (m.group(1), text.count("\n", 0, m.start()) + 1, m.group(2)) for m in FENCE.finditer(text)
    ]


def examples(page: Path) -> list[tuple[int, str]]:
    return [(line, code) for lang, line, code in fences(page) if lang == RUNS]


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_every_fence_says_whether_it_runs() -> None:
    assert len(PAGES) > 10
    wrong = [
        f"{_name(page)}:{line}: ```{lang or '(none)'}"
        for page in PAGES
        for lang, line, _ in fences(page)
        if lang not in (RUNS, RUNS_PYTHON) and lang not in SHOWN
    ]
    assert not wrong, "fence as bash or python (runs) or console/text (shown): " + ", ".join(wrong)


def _stand_ins(work: Path) -> None:
    for name in STAND_INS:
        script = work / name
        script.write_text(f'import sys\nprint("{name}", *sys.argv[1:])\n')
    (work / ".venv" / "bin").mkdir(parents=True)
    (work / ".venv" / "bin" / "activate").write_text("# the tools are already on PATH\n")


def _ensure_users(page: Path, code: str) -> None:
    needed = [u for u in USERS if re.search(rf"\b{u}\b", code)]
    for user in needed:
        try:
            pwd.getpwnam(user)
        except KeyError:
            if os.geteuid() != 0 or not shutil.which("useradd"):
                pytest.skip(f"{_name(page)} names user {user}, who does not exist here")
            local_user(user, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin")


@pytest.mark.parametrize("page", [p for p in PAGES if examples(p)], ids=_name)
def test_the_examples_of_a_page_run(page: Path, make_gflow: Callable[..., Gflow]) -> None:
    blocks = examples(page)
    _ensure_users(page, "\n".join(code for _, code in blocks))
    g = make_gflow("process", GFLOW_FAKE_GPUS="4x24G", MANPAGER="cat", PAGER="cat")
    _stand_ins(g.work)
    if "gflowd up" not in blocks[0][1]:
        g.start()
    for line, code in blocks:
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", code],
            cwd=g.work,
            env=g.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, (
            f"{_name(page)}:{line}: the example exited {done.returncode}\n{code}\n"
            f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
        )


PYTHON_DRIVER = """\
import json, sys
namespace = {"__name__": "__main__"}
for page, line, code in json.load(open(sys.argv[1])):
    exec(compile("\\n" * line + code, page, "exec"), namespace)
"""


def python_examples(page: Path) -> list[tuple[int, str]]:
    return [(line, code) for lang, line, code in fences(page) if lang == RUNS_PYTHON]


@pytest.mark.parametrize("page", [p for p in PAGES if python_examples(p)], ids=_name)
def test_the_python_examples_of_a_page_run(
    page: Path, make_gflow: Callable[..., Gflow], tmp_path: Path
) -> None:
    """A page's ``python`` blocks run in order in one interpreter, as one session."""
    blocks = python_examples(page)
    if any(re.search(r"^\s*(from|import) mcp\b", code, re.M) for _, code in blocks):
        pytest.importorskip("mcp", reason="the [mcp] extra is not installed")
    g = make_gflow("process", GFLOW_FAKE_GPUS="4x24G")
    _stand_ins(g.work)
    g.start()
    spec = tmp_path / "blocks.json"
    spec.write_text(json.dumps([[_name(page), line, code] for line, code in blocks]))
    driver = tmp_path / "driver.py"
    driver.write_text(PYTHON_DRIVER)
    done = subprocess.run(
        [sys.executable, str(driver), str(spec)],
        cwd=g.work,
        env=g.env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT * len(blocks),
        check=False,
    )
    assert done.returncode == 0, (
        f"{_name(page)}: a Python example failed\n--- stdout\n{done.stdout}"
        f"--- stderr\n{done.stderr}"
    )
