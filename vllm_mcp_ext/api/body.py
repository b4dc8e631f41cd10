"""A request's JSON object body, or the 400 every door answers for anything else."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from vllm_mcp_ext.errors import InvalidRequest


async def json_body(raw_request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await raw_request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body
