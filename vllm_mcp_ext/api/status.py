"""The plugin's own read-only endpoints: the configured MCP servers and their status
(``/v1/mcp/servers``), a server's tools, the caller's audit record (``/v1/mcp/audit``), and a
finished response's timings (``/v1/mcp/traces``, with ``VLLM_MCP_TRACE=1``). Each names only the
servers the caller's key may use."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from vllm_mcp_ext.api.door import caller_of, error_boundary, runtime_of
from vllm_mcp_ext.errors import NotFound
from vllm_mcp_ext.loop.toolset import listed_tool
from vllm_mcp_ext.observe import trace
from vllm_mcp_ext.policy.audit import StoreAudit

router = APIRouter()


@router.get("/v1/mcp/servers")
@error_boundary
async def list_servers(raw_request: Request) -> Response:
    plugin = runtime_of(raw_request)
    grant = plugin.service.permissions.grant(caller_of(raw_request, plugin))
    data = [
        {
            "label": s.label,
            "transport": s.transport,
            "status": s.status.value,
            "tool_count": s.tool_count,
            "last_error": s.last_error,
        }
        for s in plugin.registry.snapshots()
        if grant.allows_server(s.label)
    ]
    return JSONResponse({"object": "list", "data": data})


@router.get("/v1/mcp/servers/{label}/tools")
@error_boundary
async def list_server_tools(label: str, raw_request: Request) -> Response:
    plugin = runtime_of(raw_request)
    grant = plugin.service.permissions.grant(caller_of(raw_request, plugin))
    conn = plugin.registry.get(label)
    if conn is None or not grant.allows_server(label):
        configured = ", ".join(x for x in plugin.registry.labels if grant.allows_server(x)) or "none"
        raise NotFound(f"no MCP server {label!r}; configured: {configured}", param="label")
    tools = [t for t in await conn.current_tools() if grant.allows_tool(label, t.name)]
    data = [listed_tool(t).model_dump(mode="json") for t in tools]
    return JSONResponse({"object": "list", "server_label": label, "data": data})


@router.get("/v1/mcp/audit")
@error_boundary
async def list_audit(raw_request: Request, limit: int = 100, since: float | None = None) -> Response:
    """The audit record of the caller's key (every key's on a server without ``--api-key``),
    newest first: who called which tool when, how it ended and how long it took."""
    plugin = runtime_of(raw_request)
    caller = caller_of(raw_request, plugin)
    audit = plugin.service.policy.audit
    if not isinstance(audit, StoreAudit):
        raise NotFound("the audit record is not kept in the store (see policy.audit)", param=None)
    records = await audit.records(caller.key_hash, limit=limit, since=since)
    return JSONResponse({"object": "list", "data": [r.to_json() for r in records]})


@router.get("/v1/mcp/traces/{response_id}")
@error_boundary
async def get_trace(response_id: str, raw_request: Request) -> Response:
    """Timings of a finished response, when the server runs with VLLM_MCP_TRACE=1."""
    recorded = trace.finished(response_id)
    if recorded is None:
        hint = (
            ""
            if runtime_of(raw_request).service.settings.trace
            else " (tracing is off: set VLLM_MCP_TRACE=1)"
        )
        raise NotFound(f"no trace for response {response_id!r}{hint}", param="response_id")
    return JSONResponse(recorded.as_dict())
