"""The plugin's exception tree, and its mapping to OpenAI-style error bodies.

Every error a client can cause is one of these; `api.routes` turns them into
``{"error": {"message", "type", "param", "code"}}`` with the right HTTP status in one place.
Tool failures are not exceptions: they travel as values (`loop.calls.CallOutcome`) and reach
the model.
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


class NotFound(McpExtError):
    status = 404
    type = "invalid_request_error"
    default_code = "not_found"


class ConfigError(McpExtError):
    """The ``--tool-server`` configuration is unusable; start-up stops with this message."""
