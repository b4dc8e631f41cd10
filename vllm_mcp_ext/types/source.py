"""What a tool source is, and how its failures reach the model.

* `ToolSource`: what the loop needs from an MCP server, whoever opened it: a configured server
  kept open across requests (`servers.ServerConnection`) or a remote one a request named by
  ``server_url`` (`servers.remote.RemoteSource`).
* `Code`: every JSON-RPC error code we send or read, in one table (the MCP SDK's values).
* `ServerUnavailable` (`OpenFailed`), `CallFailed`: a list or call that did not come back as a
  result. They are exceptions only on the way from a session to the loop, which turns them
  into values (`outcome`).
* `CallOutcome`, `protocol_error`, `http_error`: how a call ended, as the ``mcp_call`` item and
  the model see it. Tool failures are values: the model reads them and the loop goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

from mcp import types
from openai.types.responses.mcp_tool_call_error import HTTPError, McpProtocolError, McpToolExecutionError

from vllm_mcp_ext.errors import ToolError
from vllm_mcp_ext.types.client_handlers import ClientHandlers

LOST = "connection to the MCP server was lost"


class Code(IntEnum):
    """JSON-RPC error codes: the standard ones, and the MCP SDK's for failures on our side."""

    PARSE_ERROR = types.PARSE_ERROR  # the server's answer is not JSON-RPC
    INVALID_REQUEST = types.INVALID_REQUEST  # the URL policy refused the server at call time
    METHOD_NOT_FOUND = types.METHOD_NOT_FOUND  # the model named a tool that does not exist
    INVALID_PARAMS = types.INVALID_PARAMS  # the model's arguments do not fit the tool's schema
    INTERNAL_ERROR = types.INTERNAL_ERROR  # an answer we cannot use (too large, wrong type)
    CONNECTION_CLOSED = types.CONNECTION_CLOSED  # lost, unavailable, or too busy
    REQUEST_TIMEOUT = types.REQUEST_TIMEOUT


class ToolSource(Protocol):
    @property
    def label(self) -> str: ...

    async def current_tools(self) -> tuple[types.Tool, ...]:
        """The server's tools; raises `ServerUnavailable` when it cannot be reached."""
        ...

    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, handlers: ClientHandlers = ...
    ) -> types.CallToolResult:
        """One tools/call; raises `ServerUnavailable` or `CallFailed`. ``handlers`` answer what
        the server asks while the call runs (progress, sampling: `types.client_handlers`)."""
        ...


@dataclass(frozen=True)
class CallOutcome:
    output: str | None  # the item's `output`
    error: McpProtocolError | McpToolExecutionError | HTTPError | None
    model_text: str  # what the model is shown as the tool result
    # the result's images and audio as chat media parts (a multimodal model sees them)
    media: tuple[dict[str, Any], ...] = ()

    @property
    def model_content(self) -> str | list[dict[str, Any]]:
        """The tool message content: the text, then the media when there are any."""
        if not self.media:
            return self.model_text
        return [{"type": "text", "text": self.model_text}, *self.media]

    @property
    def failed(self) -> bool:
        return self.error is not None


def protocol_error(code: int, message: str) -> CallOutcome:
    return CallOutcome(
        output=None,
        error=McpProtocolError(type="mcp_protocol_error", code=int(code), message=message),
        model_text=f"Error: {message}",
    )


def http_error(status: int, message: str) -> CallOutcome:
    return CallOutcome(
        output=None,
        error=HTTPError(type="http_error", code=status, message=message),
        model_text=f"Error: {message}",
    )


class ServerUnavailable(ToolError):
    """The server could not be reached; carries a message safe to show a client."""

    def outcome(self) -> CallOutcome:
        return protocol_error(Code.CONNECTION_CLOSED, self.message)


class OpenFailed(ServerUnavailable):
    """A session did not open; the message is redacted and safe to show."""

    def __init__(self, message: str, *, status: int | None = None, redirect: str | None = None):
        super().__init__(message)
        self.http_status = status  # the HTTP error status opening got, if any
        self.redirect = redirect  # a Location that was not followed


class CallFailed(ToolError):
    """A tools/call that did not come back as a result: protocol error, timeout, lost session."""

    def __init__(self, code: int, message: str, *, http_status: int | None = None):
        super().__init__(message)
        self.rpc_code = int(code)
        self.http_status = http_status  # set when the server answered with an HTTP error status

    def outcome(self) -> CallOutcome:
        if self.http_status is not None:
            return http_error(self.http_status, self.message)
        return protocol_error(self.rpc_code, self.message)
