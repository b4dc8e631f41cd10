"""The calculator's tools, names, schemas and descriptions unchanged (so the tiny model calls them
as it was trained to), run as tasks of the 2026-07-28 tasks extension (``io.modelcontextprotocol/
tasks``): the extension of tests/unit/servers/tasks_extension.py answers a call that declares it
with ``resultType: "task"``, ``tasks/get`` carries the result. Served over streamable HTTP:
`python tasks_extension_calculator.py MARKER --port N` serves /mcp.

Every task method the server sees is appended to ``MARKER`` as the unit server records it
(``tasks/get task-1 working``), and every HTTP request's ``Mcp-Name`` header as
``mcp-name <value>``. While ``MARKER.hold`` exists, a task (``add``) works on until cancelled.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples" / "servers"))
import calculator

from tests.unit.servers.tasks_extension import TasksExtension

ASGI = Any


class HeldByFile(TasksExtension):
    """The unit server's extension, its tasks held while ``hold_file`` exists (cancel tests)."""

    def __init__(self, record: Any, hold_file: Path, step: float):
        super().__init__(record, step=step)
        self.hold_file = hold_file

    def held(self) -> bool:
        return self.hold_file.exists()


def recording(app: ASGI, record: Any) -> ASGI:
    """``app``, recording each HTTP request's ``mcp-name`` header."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for key, value in scope["headers"]:
                if key == b"mcp-name":
                    record(f"mcp-name {value.decode()}")
        await app(scope, receive, send)

    return wrapped


async def serve(marker: Path, port: int) -> None:
    def record(line: str) -> None:
        with marker.open("a") as f:
            f.write(line + "\n")

    extension = HeldByFile(record, marker.with_suffix(".hold"), step=1.0)
    server = MCPServer("calculator", extensions=[extension])
    for tool in await calculator.server.list_tools():
        server.add_tool(
            getattr(calculator, tool.name),
            name=tool.name,
            description=tool.description,
            annotations=tool.annotations,
        )
    app = recording(server.streamable_http_app(host="127.0.0.1"), record)
    await uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")).serve()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("marker", type=Path)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    anyio.run(serve, args.marker, args.port)


if __name__ == "__main__":
    main()
