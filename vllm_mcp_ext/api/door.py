"""What every HTTP door shares: the plugin's `Runtime` behind a request, who calls (the key of
its ``Authorization`` header), and the one error boundary, in each API's own error shape.

A door is one module of ``api/`` (its routes, on a ``router``) plus its translation package
(``chat/``, ``messages/``); it uses these helpers, the request body readers (`api.body`) and the
streaming helpers (`api.disconnect`), never a sibling door's private code.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from fastapi.responses import JSONResponse, Response
from starlette.requests import HTTPConnection

from vllm_mcp_ext.access import Caller
from vllm_mcp_ext.errors import McpExtError, Unauthorized
from vllm_mcp_ext.runtime import Runtime

logger = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Response]]


def runtime_of(request: HTTPConnection) -> Runtime:
    """The plugin's runtime, set on the app's state when the engine is up."""
    state = getattr(request.app.state, "vllm_mcp_ext", None)
    if state is None:
        raise McpExtError("the vllm_mcp_ext plugin is not initialised")
    return state


def caller_of(request: HTTPConnection, runtime: Runtime) -> Caller:
    """Who sends the request (or opens the WebSocket): the key of its ``Authorization`` header,
    with ``--api-key`` set."""
    caller = runtime.keys.caller(request.headers.get("authorization"))
    if caller is None:
        raise Unauthorized("a valid API key is required (Authorization: Bearer <key>)")
    return caller


def error_boundary_in(shape: Callable[[McpExtError], dict[str, Any]]) -> Callable[[Handler], Handler]:
    """The one place errors become HTTP answers, in an API's own body ``shape`` (OpenAI's
    ``{"error": {...}}`` by default, Anthropic's on ``/v1/messages``)."""

    def boundary(handler: Handler) -> Handler:
        @wraps(handler)
        async def wrapper(*args: Any, **kwargs: Any) -> Response:
            try:
                return await handler(*args, **kwargs)
            except McpExtError as exc:
                return JSONResponse(shape(exc), status_code=exc.status)
            except Exception:
                logger.exception("unexpected error in %s", handler.__name__)
                error = McpExtError("The server had an error while processing your request.")
                return JSONResponse(shape(error), status_code=500)

        return wrapper

    return boundary


error_boundary = error_boundary_in(McpExtError.body)  # OpenAI's error shape
