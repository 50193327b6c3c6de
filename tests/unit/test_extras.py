"""Optional features name the extra that installs what they lack, in one line."""

from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path

import pytest

from gflow.cli.common import call
from gflow.extras import MissingExtra, extra_requirements, install_hint, require


def test_the_distribution_declares_one_extra_per_optional_feature() -> None:
    extras = set(importlib.metadata.metadata("gflow-scheduler").get_all("Provides-Extra") or [])
    assert {"nvml", "mcp", "docs", "test"} <= extras
    assert extra_requirements("nvml") == ["nvidia-ml-py>=12.535"]
    assert any(r.startswith("mcp") for r in extra_requirements("mcp"))
    assert extra_requirements("no-such-extra") == []


def test_require_returns_an_installed_module() -> None:
    assert require("json", "test", "reading JSON") is json


def test_a_missing_module_names_the_extra_and_how_to_install_it() -> None:
    with pytest.raises(MissingExtra) as caught:
        require("gflow_no_such_module.server", "mcp", "the MCP server")
    message = caught.value.message
    assert message.startswith("the MCP server needs the 'mcp' extra (mcp")
    assert message.endswith(": pip install 'gflow-scheduler[mcp]'")
    assert install_hint("mcp") in message and "\n" not in message
    assert caught.value.extra == "mcp"


def test_a_broken_installed_module_is_not_blamed_on_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "gflow_half_installed.py").write_text("import gflow_its_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="gflow_its_missing_dependency"):
        require("gflow_half_installed", "mcp", "the MCP server")
    sys.modules.pop("gflow_half_installed", None)


def test_a_command_reports_a_missing_extra_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def serve(argv: list[str]) -> int:
        require("gflow_no_such_module", "mcp", "the MCP server")
        return 0

    assert call("gflow", serve, []) == 1
    err = capsys.readouterr().err
    assert err.startswith("gflow: error: the MCP server needs the 'mcp' extra")
    assert err.count("\n") == 1


def test_gflow_mcp_without_the_extra_says_which_to_install() -> None:
    import subprocess

    code = (
        "import sys\n"
        "sys.modules['mcp'] = None  # as if the SDK were not installed\n"
        "from gflow.cli.common import call\n"
        "from gflow.cli.gflow import main\n"
        "sys.exit(call('gflow', main, ['mcp']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("gflow: error: the MCP server (gflow mcp) needs the 'mcp' extra")
    assert done.stderr.count("\n") == 1
