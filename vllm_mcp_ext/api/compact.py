"""``POST /v1/responses/compact``: OpenAI's compact endpoint, a route of the Responses API that
stock vLLM (0.32) does not have, so the plugin serves every such request, whatever the model
family (responses/compact.py). Errors in OpenAI's shape; ``--api-key`` and each key's stored
responses as on ``/v1/responses``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from vllm_mcp_ext.api.body import read_json_object
from vllm_mcp_ext.api.disconnect import ClientGone, unless_disconnected
from vllm_mcp_ext.api.door import caller_of, error_boundary, runtime_of

router = APIRouter()


@router.post("/v1/responses/compact")
@error_boundary
async def compact_response(raw_request: Request) -> Response:
    plugin = runtime_of(raw_request)
    caller = caller_of(raw_request, plugin)
    body = await read_json_object(raw_request)
    try:
        compacted = await unless_disconnected(raw_request, plugin.service.compact(body, caller))
    except ClientGone:
        return Response(status_code=499)  # nobody reads it
    return JSONResponse(compacted.to_wire())
