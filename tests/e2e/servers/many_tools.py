"""An MCP server with 121 tools, about the size of GitHub's: 12 resources x 10 actions of a
project tracker, and the calculator's ``add`` (so a model trained on the calculator can call it
once tool search found it). Over stdio by default, or streamable HTTP with ``--port``.

Every generated tool takes an ``id`` (a string) and answers with what it would have done, so a
call's result shows which tool ran.
"""

from __future__ import annotations

import argparse
from typing import Any

from mcp.server.mcpserver import MCPServer

RESOURCES = (
    "issue",
    "pull_request",
    "branch",
    "commit",
    "release",
    "label",
    "milestone",
    "project",
    "workflow",
    "secret",
    "webhook",
    "discussion",
)
ACTIONS = {
    "get": "Get one {r} by its id, with all its fields.",
    "list": "List the {r}s of a repository, newest first.",
    "create": "Create a new {r} in a repository.",
    "update": "Update the fields of an existing {r}.",
    "delete": "Delete a {r} for good.",
    "search": "Search {r}s by words in their title and body.",
    "archive": "Archive a {r} so it no longer shows in lists.",
    "restore": "Restore an archived {r}.",
    "comment": "Add a comment to a {r}.",
    "watch": "Get notified of changes to a {r}.",
}


def build() -> MCPServer:
    server = MCPServer("many-tools")
    for resource in RESOURCES:
        words = resource.replace("_", " ")
        for action, text in ACTIONS.items():
            server.add_tool(
                _tool(f"{action}_{resource}"), name=f"{action}_{resource}", description=text.format(r=words)
            )

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> str:
        return str(a + b)

    return server


def _tool(name: str) -> Any:
    def run(id: str) -> str:  # the tools' one argument is an id
        return f"{name} {id}: done"

    return run


TOOL_COUNT = len(RESOURCES) * len(ACTIONS) + 1

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.port is None:
        build().run()
    else:
        build().run(transport="streamable-http", host="127.0.0.1", port=args.port)
