"""Reading a ``POST`` body (``/v1/responses``, ``/v1/conversations``) within the limits: at most ``VLLM_MCP_MAX_REQUEST_BYTES``
(a 413 past it, read no further) and `limits.MAX_JSON_DEPTH` levels of nesting (a 400). A large
body is parsed in a worker thread so the event loop keeps serving others meanwhile."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import Request

from vllm_mcp_ext import limits
from vllm_mcp_ext.errors import InvalidRequest

_PARSE_IN_THREAD = 256 * 1024  # bytes from which parsing leaves the event loop


class RequestTooLarge(InvalidRequest):
    status = 413
    default_code = "request_too_large"


async def read_json_object(request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The body as a JSON object; ``empty_ok``: an empty body is ``{}``."""
    cap = limits.max_request_bytes()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(cap)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise _too_large(cap)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if empty_ok and not raw.strip():
        return {}
    try:
        body = (
            await asyncio.to_thread(limits.loads_bounded, raw)
            if size > _PARSE_IN_THREAD
            else limits.loads_bounded(raw)
        )
    except limits.TooDeep as exc:
        raise InvalidRequest(f"the request body is {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _too_large(cap: int) -> RequestTooLarge:
    return RequestTooLarge(f"the request body is larger than {cap} bytes (VLLM_MCP_MAX_REQUEST_BYTES)")
