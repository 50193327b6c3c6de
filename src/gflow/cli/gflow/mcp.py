"""``gflow mcp``: the MCP server for AI agents, on stdin/stdout (see :mod:`gflow.mcpserver`)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from gflow.cli.common import Parser

HELP = "serve gflow's tools to an AI agent (MCP, on stdin/stdout)"
EXAMPLES = """
gflow mcp                    run by an MCP client, never by hand: it talks JSON-RPC on stdio
claude mcp add gflow -- gflow mcp
                             register it with Claude Code (other clients: a JSON entry
                             {"command": "gflow", "args": ["mcp"]})
"""


DESCRIPTION = (
    "Serve gflow to an AI agent over the Model Context Protocol, on stdin/stdout:\n"
    "read tools (queue, job, log, GPUs, stats, diagnose...), previews of changes, and\n"
    "tools that change the queue, which ask for the user's confirmation. The agent\n"
    "acts as the user who runs this command, and can do no more than they can."
)


def add_arguments(parser: Parser) -> None:
    """No options of its own (``--config`` is every subcommand's)."""


def run(args: argparse.Namespace) -> int:
    from gflow.extras import require

    require("mcp", "mcp", "the MCP server (gflow mcp)")
    from gflow.mcpserver import serve

    serve(getattr(args, "config", None))
    return 0
