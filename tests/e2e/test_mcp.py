"""``gflow mcp`` driven by the MCP SDK's own client over stdio, against a real daemon:
every tool listed with a valid schema, marked read-only or not, called, and every
refusal or bad argument answered as a tool error while the server keeps going."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.helpers import BIN, Gflow

mcp = pytest.importorskip("mcp", reason="the [mcp] extra is not installed")
jsonschema = pytest.importorskip("jsonschema")

READ = {
    "queue",
    "job",
    "log",
    "gpus",
    "stats",
    "queue_pressure",
    "reservations",
    "dependency_tree",
    "diagnose",
    "preview_submit",
    "preview_cancel",
    "preview_update",
}
CHANGES = {"submit", "cancel", "hold", "release", "update", "redo"}


class Session:
    """One ``gflow mcp`` process and a client session to it."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def call(self, tool: str, **arguments: Any) -> Any:
        result = await self.session.call_tool(tool, arguments)
        text = result.content[0].text
        assert not result.is_error, f"{tool}({arguments}): {text}"
        return json.loads(text)

    async def error(self, tool: str, **arguments: Any) -> str:
        result = await self.session.call_tool(tool, arguments)
        assert result.is_error, f"{tool}({arguments}) was not refused"
        return str(result.content[0].text)


def run_session(g: Gflow, scenario: Any) -> Any:
    async def main() -> Any:
        params = mcp.StdioServerParameters(
            command=str(BIN / "gflow"), args=["mcp"], env=g.env, cwd=str(g.work)
        )
        async with (
            mcp.stdio_client(params) as (read, write),
            mcp.ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await scenario(Session(session))

    return asyncio.run(main())


def test_the_tools_and_their_schemas(gflow_process: Gflow) -> None:
    async def scenario(s: Session) -> list[Any]:
        return list((await s.session.list_tools()).tools)

    tools = {t.name: t for t in run_session(gflow_process, scenario)}
    assert set(tools) == READ | CHANGES
    for name, tool in tools.items():
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        properties = tool.input_schema.get("properties", {})
        assert all(p.get("description") for p in properties.values()), name
        assert tool.description
        assert tool.annotations.read_only_hint is (name in READ), name
        assert ("confirmation" in tool.description) is (name in CHANGES), name
    assert tools["cancel"].annotations.destructive_hint is True
    submit = tools["submit"].input_schema["properties"]
    assert submit["gpus"]["anyOf"][0]["type"] == "integer"
    assert "time limit" in submit["time"]["description"]
    assert "Model Context Protocol" in gflow_process.run("gflow", "mcp", "--help").stdout


def test_every_tool_against_a_daemon(gflow_process: Gflow) -> None:
    g = gflow_process

    async def scenario(s: Session) -> None:
        preview = await s.call("preview_submit", command="echo hi", array="1-2")
        assert len(preview["would_submit"]) == 2 and (await s.call("queue"))["count"] == 0
        first = (await s.call("submit", command="echo first", name="first"))["submitted"][0]
        gated = await s.call("submit", command=g.gate("go"), depends_on=[str(first["id"])])
        gated_id = gated["submitted"][0]["id"]
        child = await s.call("submit", command="true", depends_on_all=str(gated_id), hold=True)
        child_id = child["submitted"][0]["id"]
        g.until_state(gated_id, "Running")
        assert (await s.call("log", id=str(first["id"])))["text"] == "first\n"
        assert (await s.call("job", id=str(gated_id)))["parents"] == [first["id"]]
        listed = await s.call("queue", all=True)
        assert [j["id"] for j in listed["jobs"]] == [first["id"], gated_id, child_id]
        tree = await s.call("dependency_tree", id=str(gated_id))
        assert tree["tree"]["children"][0]["id"] == child_id
        assert [a["id"] for a in tree["waits_for"]] == [first["id"]]
        pressure = await s.call("queue_pressure")
        assert (pressure["running"], pressure["held"]) == (1, 1)
        assert (await s.call("gpus"))["executor"] == "process"
        assert (await s.call("stats"))["total_jobs"] == 3
        assert (await s.call("reservations"))["reservations"] == []
        would = await s.call("preview_update", ids=str(child_id), priority=77)
        assert would["would"][0]["fields"] == ["priority"]
        assert (await s.call("job", id=str(child_id)))["priority"] == 10
        await s.call("update", ids=str(child_id), priority=77)
        assert (await s.call("job", id=str(child_id)))["priority"] == 77
        await s.call("release", ids=str(child_id))
        await s.call("hold", ids=str(child_id))
        doomed = await s.call("preview_cancel", ids=str(gated_id))
        assert [a["id"] for a in doomed["would"]] == [gated_id, child_id]
        await s.call("cancel", ids=str(gated_id))
        g.until_state(child_id, "Cancelled")
        why = await s.call("diagnose", id=str(child_id))
        assert f"job {gated_id}" in why["verdict"] and "--cascade" in why["hints"][0]
        redone = await s.call("redo", id=str(gated_id), cascade=True)
        assert len(redone["submitted"]) == 2
        crash = "echo \"ModuleNotFoundError: No module named 'torch'\" >&2; exit 3"
        failed = await s.call("submit", command=crash)
        failed_id = failed["submitted"][0]["id"]
        assert g.wait(failed_id) == 3
        why = await s.call("diagnose", id=str(failed_id))
        assert "exit code 3" in why["verdict"] and "torch" in why["hints"][0]
        assert "No module named 'torch'" in why["log_tail"]

    run_session(g, scenario)


def test_refusals_and_bad_arguments_are_tool_errors(gflow_process: Gflow) -> None:
    async def scenario(s: Session) -> None:
        assert "job 999 not found" in await s.error("job", id="999")
        assert "invalid --gpus" in await s.error("submit", command="true", gpus=-1)
        assert "gpus" in await s.error("submit", command="true", gpus="two")
        assert "command" in await s.error("submit", name="no command")
        assert "limit" in await s.error("queue", limit=0)
        assert (await s.call("queue"))["count"] == 0  # still serving

    run_session(gflow_process, scenario)
