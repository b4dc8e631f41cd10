"""Notes MCP server over streamable HTTP: `python notes.py --port 8001` serves /mcp."""

from __future__ import annotations

import argparse

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("notes")
_notes: list[str] = []


@server.tool(description="Save a note.")
def add_note(text: str) -> str:
    _notes.append(text)
    return f"saved: {text}"


@server.tool(description="List saved notes.", annotations=ToolAnnotations(read_only_hint=True))
def list_notes() -> str:
    return "\n".join(_notes) or "no notes"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    server.run("streamable-http", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
