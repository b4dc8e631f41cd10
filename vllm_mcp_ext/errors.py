"""The plugin's exception tree, and its mapping to OpenAI-style error bodies.

Every exception the plugin raises for a caller to handle derives from `McpExtError`. The classes
below this module's own live with the tool-source vocabulary or the URL policy (where named)::

    McpExtError                  500 server_error; `api.door.error_boundary_in` is the one place that
    │                            turns any of these into an error body with its HTTP status
    ├── InvalidRequest           400: what a client can get wrong
    │   ├── Unsupported          400: a valid OpenAI feature this server does not support
    │   ├── ContextTooLong       400: the first turn does not fit the model's context window
    │   └── PolicyRejected       400: a server_url the URL policy rejects (servers/remote/policy.py)
    ├── Unauthorized             401: no valid API key (vLLM's middleware answers first on /v1)
    ├── Forbidden                403: the caller's API key may not use it (access/permissions.py)
    ├── NotFound                 404
    ├── TooManyConnections       429: past VLLM_MCP_WS_MAX_CONNECTIONS WebSockets (api/websocket.py)
    ├── ConfigError              --tool-server or VLLM_MCP_* is unusable: start-up stops
    └── ToolError                a tool source failed. Never an HTTP error on a response: the
        │                        loop shows it to the model as a failed list or ``mcp_call``
        ├── LoginRequired        an OAuth server needs the operator's login (servers/oauth)
        ├── ServerUnavailable    the server cannot be reached (types/source.py)
        │   ├── OpenFailed       a session did not open (types/source.py)
        │   └── Unresolvable     the host has no address (servers/remote/policy.py)
        └── CallFailed           a tools/call that did not come back as a result (types/source.py)

Foreign errors (the MCP SDK's ``MCPError``, anyio stream errors, httpx2 errors, timeouts) become
`OpenFailed`/`CallFailed` in one place: `servers.session` (``_open_failure``, ``_call_failure``).
Three internal signals never leave the pair of modules that use them, so they stay out of the
tree: ``HistoryRewritten`` (engine/continuation.py -> _compat: render the turn in full),
``ClientGone`` (api/disconnect.py -> the doors in api/: stop answering) and ``ResponseTooLarge``
(servers/remote/http.py, an ``httpx2.StreamError`` so the SDK resolves the call; it reaches the
model as a `CallFailed`). ``TinyModelError`` belongs to the test-model builder, not the plugin.
"""

from __future__ import annotations

from typing import Any


class McpExtError(Exception):
    """Base of every error the plugin raises on purpose."""

    status: int = 500
    type: str = "server_error"
    default_code: str | None = None  # so every 4xx carries a code the SDKs can branch on

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(McpExtError):
    """The request is malformed or asks for something this server cannot do (400)."""

    status = 400
    type = "invalid_request_error"
    default_code = "invalid_value"


class Unsupported(InvalidRequest):
    """A valid OpenAI feature that this server does not support (yet)."""

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message, param=param, code="unsupported_parameter")


class ContextTooLong(InvalidRequest):
    """A prompt that leaves no room in the model's context window. Before the response starts a
    400 (``context_length_exceeded``, OpenAI's code); on a later turn the loop ends the response
    ``incomplete`` instead (engine/fit.py)."""

    default_code = "context_length_exceeded"


class Unauthorized(McpExtError):
    status = 401
    type = "invalid_request_error"
    default_code = "invalid_api_key"


class Forbidden(McpExtError):
    """The caller's API key may not use what it named (a server label)."""

    status = 403
    type = "invalid_request_error"
    default_code = "permission_denied"


class NotFound(McpExtError):
    status = 404
    type = "invalid_request_error"
    default_code = "not_found"


class TooManyConnections(McpExtError):
    """This process holds as many WebSocket connections as it allows; try again later."""

    status = 429
    type = "invalid_request_error"
    default_code = "too_many_connections"


class ConfigError(McpExtError):
    """The ``--tool-server`` configuration is unusable; start-up stops with this message."""


class ToolError(McpExtError):
    """A tool source failed. The loop shows it to the model as a value (a failed tool list or
    ``mcp_call``); it reaches the error boundary only from the server-status routes (`api.status`), as a 500."""
