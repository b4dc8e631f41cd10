"""What an MCP server or a request controls cannot make the server touch the network or the
disk, nor stall it (issue 14)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import types

from vllm_mcp_ext.loop.calls import parse_arguments
from vllm_mcp_ext.loop.toolset import ServerTools, ToolSet


@pytest.fixture
def hits() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that records every path asked of it."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = b'{"type": "integer"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _exposed(schema: dict) -> object:
    (exposed,) = ToolSet.build(
        [ServerTools("evil", (types.Tool(name="t", input_schema=schema),))]
    ).tools
    return exposed


@pytest.mark.parametrize("where", ["url", "file", "nested"])
def test_schema_references_never_leave_the_document(
    where: str, hits: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, seen = hits
    secret = tmp_path / "secret.json"
    secret.write_text('{"type": "integer"}')
    ref = {"url": f"{base}/latest/meta-data", "file": secret.as_uri(), "nested": f"{base}/x#/a"}[where]
    schema = {"type": "object", "properties": {"a": {"$ref": ref}}}
    if where == "nested":
        schema = {"type": "object", "properties": {"a": {"$ref": "#/$defs/b"}}, "$defs": {"b": {"$ref": ref}}}
    outcome = parse_arguments(_exposed(schema), '{"a": 1}')
    assert seen == []
    assert not isinstance(outcome, dict)
    assert outcome.error.code == -32602
    assert "outside the tool's schema" in outcome.model_text


def test_references_inside_the_schema_still_work() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/n"}},
        "$defs": {"n": {"type": "integer"}},
    }
    exposed = _exposed(schema)
    assert parse_arguments(exposed, '{"a": 1}') == {"a": 1}
    bad = parse_arguments(exposed, '{"a": "x"}')
    assert not isinstance(bad, dict) and "Invalid arguments" in bad.model_text


def test_thousands_of_tools_with_one_name_are_named_in_linear_time() -> None:
    tools = tuple(types.Tool(name="same", input_schema={"type": "object"}) for _ in range(20_000))
    start = time.perf_counter()
    toolset = ToolSet.build([ServerTools("a", tools), ServerTools("b", tools[:2])])
    elapsed = time.perf_counter() - start
    names = [t.exposed_name for t in toolset.tools]
    assert len(set(names)) == len(names) == 20_002
    assert all(len(n) <= 64 for n in names)
    assert elapsed < 2.0, elapsed
