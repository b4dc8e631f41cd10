"""Every bound on what a request or a tool server controls, in one place.

`Limits` holds the ones an operator sets: from the ``limits`` section of the tool-server file and
``VLLM_MCP_*`` variables (a variable wins), loaded once at start (`Runtime.start`) and passed down
to what checks them; nothing reads the environment during a request, and two runtimes in one
process keep their own. The fixed bounds below it are not settable. Timeouts, turns and the
remote-mode bounds are settings of their own (`Settings`, `RemoteSettings`), loaded the same way;
docs/security.md lists them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vllm_mcp_ext.bounded_json import MAX_JSON_DEPTH
from vllm_mcp_ext.config.options import load, option
from vllm_mcp_ext.errors import InvalidRequest


@dataclass(frozen=True)
class Limits:
    # one POST body the plugin serves (/v1/responses, chat, messages, conversations)
    max_request_bytes: int = option(
        16 * 1024 * 1024, key="maxRequestBytes", env="VLLM_MCP_MAX_REQUEST_BYTES", kind="int"
    )
    # entries of a request's ``tools`` (function tools and MCP servers)
    max_tools: int = option(128, key="maxTools", env="VLLM_MCP_MAX_TOOLS", kind="int")
    # tools/call in flight at once per configured MCP server
    max_calls_per_server: int = option(
        16, key="maxCallsPerServer", env="VLLM_MCP_MAX_CALLS_PER_SERVER", kind="int"
    )
    # WebSocket connections to /v1/responses open at once, per API-server process (docs/websocket.md)
    ws_max_connections: int = option(
        64, key="wsMaxConnections", env="VLLM_MCP_WS_MAX_CONNECTIONS", kind="int"
    )
    # seconds one WebSocket connection may stay open (OpenAI's: 60 minutes)
    ws_max_lifetime: float = option(
        3600.0, key="wsMaxLifetime", env="VLLM_MCP_WS_MAX_LIFETIME", kind="number"
    )
    # what a stdio server writes (servers/stdio.py): one message (a tool result is one) ...
    max_stdio_message_bytes: int = option(
        32 * 1024 * 1024, key="maxStdioMessageBytes", env="VLLM_MCP_MAX_STDIO_MESSAGE_BYTES", kind="int"
    )
    # ... its stdout averaged over a second (past it the server waits on its pipe) ...
    max_stdio_bytes_per_second: int = option(
        64 * 1024 * 1024, key="maxStdioBytesPerSecond", env="VLLM_MCP_MAX_STDIO_BYTES_PER_SECOND", kind="int"
    )
    # ... and its stderr lines logged per second (the rest dropped and counted)
    max_stdio_log_bytes_per_second: int = option(
        64 * 1024,
        key="maxStdioLogBytesPerSecond",
        env="VLLM_MCP_MAX_STDIO_LOG_BYTES_PER_SECOND",
        kind="int",
    )
    # seconds a tool call that asked the user (elicitation ``ask``) waits for the answer, held in
    # this process between the response that paused and the one that continues it
    elicitation_wait: float = option(
        600.0, key="elicitationWaitSeconds", env="VLLM_MCP_ELICITATION_WAIT_SECONDS", kind="number"
    )
    # tool calls held waiting for an answer at once, per API-server process; past it a server's
    # question is declined
    max_held_elicitations: int = option(
        64, key="maxHeldElicitations", env="VLLM_MCP_MAX_HELD_ELICITATIONS", kind="int"
    )

    # seconds: the longest wait between two tasks/get polls of a tool call run as an MCP task
    # (servers/tasks.py); polls start at the server's pollInterval and back off to this
    max_task_poll_interval: float = option(
        5.0, key="maxTaskPollInterval", env="VLLM_MCP_MAX_TASK_POLL_INTERVAL", kind="number"
    )

    @classmethod
    def load(cls, section: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Limits:
        """From the file's ``limits`` section and the environment (default: the process's).
        Raises `ConfigError` naming the key or variable of a bad value."""
        return load(cls, "limits", section, env)

    def check_tool_count(self, count: int) -> None:
        """A request's ``tools`` within `max_tools` entries, else a 400."""
        if count > self.max_tools:
            raise InvalidRequest(
                f"'tools' has {count} entries; at most {self.max_tools} are accepted", param="tools"
            )


# Fixed bounds. MAX_JSON_DEPTH (64): nesting levels of a request body or tool arguments.
MAX_LISTED_TOOLS = 1024  # tools one server may list
MAX_TOOL_NAME_CHARS = 128  # the MCP spec's own bound on a tool name
MAX_SCHEMA_BYTES = 64 * 1024  # one tool's inputSchema, as JSON
MAX_DESCRIPTION_CHARS = 16 * 1024  # one tool's description

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MAX_JSON_DEPTH",
    "MAX_LISTED_TOOLS",
    "MAX_SCHEMA_BYTES",
    "MAX_TOOL_NAME_CHARS",
    "Limits",
]
