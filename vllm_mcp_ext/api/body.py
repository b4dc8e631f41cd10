"""Reading a ``POST`` body within the plugin's limits: at most the runtime's
`Limits.max_request_bytes` (a 413) and `MAX_JSON_DEPTH` levels of nesting (a 400). A large body
is parsed in a worker thread so the event loop keeps serving others meanwhile.

The limits are the plugin's, for what the plugin serves. On the stock endpoints it takes over
(``/v1/responses``, ``/v1/chat/completions``, ``/v1/messages``) a body past them is still read and
handed to vLLM's own handler when it is a request vLLM serves: a request that works on stock vLLM
never fails because the plugin is loaded (`read_body` returns the refusal; the route raises it
only when the request is the plugin's)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from vllm_mcp_ext import bounded_json
from vllm_mcp_ext.config.limits import MAX_JSON_DEPTH, Limits
from vllm_mcp_ext.errors import InvalidRequest

_PARSE_IN_THREAD = 256 * 1024  # bytes from which parsing leaves the event loop


class RequestTooLarge(InvalidRequest):
    status = 413
    default_code = "request_too_large"


@dataclass(frozen=True)
class Body:
    """A parsed JSON object body, and why the plugin would refuse it (None: within its limits)."""

    data: dict[str, Any]
    refused: InvalidRequest | None = None

    def for_plugin(self) -> dict[str, Any]:
        if self.refused is not None:
            raise self.refused
        return self.data


async def read_json_object(request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The body as a JSON object within the limits (routes only the plugin serves); ``empty_ok``:
    an empty body is ``{}``."""
    return (await read_body(request, empty_ok=empty_ok, strict=True)).for_plugin()


async def read_body(request: Request, *, empty_ok: bool = False, strict: bool = False) -> Body:
    """The body, with the limits' verdict beside it rather than raised (see the module); with
    ``strict``, a body past the size cap is not read further."""
    cap = _limits(request).max_request_bytes
    declared = request.headers.get("content-length", "")
    refused: InvalidRequest | None = None
    if declared.isdigit() and int(declared) > cap:
        refused = _too_large(cap)
        if strict:
            raise refused
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap and refused is None:
            refused = _too_large(cap)
            if strict:
                raise refused
        chunks.append(chunk)
    raw = b"".join(chunks)
    if empty_ok and not raw.strip():
        return Body({}, refused)
    try:
        body = await asyncio.to_thread(_parse, raw) if size > _PARSE_IN_THREAD else _parse(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest("the request body is not valid JSON") from None
    except RecursionError:
        raise InvalidRequest(
            f"the request body is JSON nested more than {MAX_JSON_DEPTH} levels deep"
        ) from None
    data, deep = body
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    if deep is not None and refused is None:
        refused = InvalidRequest(f"the request body is {deep}")
    return Body(data, refused)


def _parse(raw: bytes) -> tuple[Any, bounded_json.TooDeep | None]:
    """The value and, when it nests past the limit, why (the value is still parsed for stock)."""
    try:
        return bounded_json.loads_bounded(raw), None
    except bounded_json.TooDeep as exc:
        return json.loads(raw), exc  # RecursionError here: too deep even for Python's parser


def _limits(request: Request) -> Limits:
    """The limits of the runtime serving ``request`` (the defaults before it has started)."""
    runtime = getattr(request.app.state, "vllm_mcp_ext", None)
    return runtime.limits if runtime is not None else Limits()


def _too_large(cap: int) -> RequestTooLarge:
    return RequestTooLarge(f"the request body is larger than {cap} bytes (VLLM_MCP_MAX_REQUEST_BYTES)")
