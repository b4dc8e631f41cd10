"""The plugin's HTTP door in process, for API-level tests where a real engine is not the point.

`plugin_client` mounts the plugin's real routes (its one error boundary, the SSE encoding, the
responses service, a real SQLite store, real configured MCP servers) on a bare FastAPI app whose
engine is a `ScriptedTurns`, and hands back an ``httpx.AsyncClient`` over ``httpx.ASGITransport``:
no port, no vLLM process, milliseconds per request. Give it to the ``openai`` SDK as
``AsyncOpenAI(base_url="http://plugin/v1", http_client=client)``. Requests that the plugin sends
on to vLLM's own handler (see ``api/routing.py``) need a real server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
from fastapi import FastAPI

from tests.support.scripted import ScriptedTurns
from vllm_mcp_ext.api.chat import chat_router
from vllm_mcp_ext.api.messages import messages_router
from vllm_mcp_ext.api.routes import router
from vllm_mcp_ext.config import ServerSpec
from vllm_mcp_ext.config.remote import RemoteSettings
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.responses.service import ResponsesService
from vllm_mcp_ext.runtime import Runtime
from vllm_mcp_ext.servers import ToolServerRegistry
from vllm_mcp_ext.servers.remote import RemoteMcp
from vllm_mcp_ext.store import open_store

BASE_URL = "http://plugin"


@asynccontextmanager
async def plugin_client(
    engine: ScriptedTurns, servers: tuple[ServerSpec, ...] = (), store: Path | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The plugin's routes over ``engine``, with ``servers`` configured (as ``--tool-server``
    would) and responses kept in the SQLite file ``store`` (none kept without it)."""
    settings = Settings(connect_timeout=20, call_timeout=20)
    kept = open_store(str(store)) if store is not None else None
    if kept is not None:
        await kept.open()
    registry = ToolServerRegistry(servers, settings)
    await registry.start()
    app = FastAPI()
    app.include_router(router)
    app.include_router(chat_router)
    app.include_router(messages_router)
    remote = RemoteMcp(RemoteSettings.load(None))
    service = ResponsesService(registry, engine, settings, kept, remote)
    runtime = Runtime(service, harmony=False)
    app.state.vllm_mcp_ext = runtime
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
            client.app = app  # type: ignore[attr-defined]  # for clients on httpx2 (`httpx2_client`)
            yield client
    finally:
        await runtime.aclose()


def httpx2_client(client: httpx.AsyncClient) -> httpx2.AsyncClient:
    """The same app for SDKs built on ``httpx2`` (the ``anthropic`` SDK refuses httpx clients)."""
    app = client.app  # type: ignore[attr-defined]
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE_URL)
