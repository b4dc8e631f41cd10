"""The plugin's HTTP door in process, for API-level tests where a real engine is not the point.

`plugin_client` mounts the plugin's real routes (its one error boundary, the SSE encoding, the
responses service, a real SQLite store, real configured MCP servers) on a bare FastAPI app whose
engine is a `ScriptedTurns`, and hands back an ``httpx.AsyncClient`` over ``httpx.ASGITransport``:
no port, no vLLM process, milliseconds per request. Give it to the ``openai`` SDK as
``AsyncOpenAI(base_url="http://plugin/v1", http_client=client)``. Requests that the plugin sends
on to vLLM's own handler (see ``api/routing.py``) need a real server.

`plugin_app` is the same app with ``/mcp`` mounted, API keys and permissions as ``--api-key`` and
the tool-server file would set them; `loopback` serves any such app with uvicorn on a loopback
port in the test's own event loop, for clients that need real HTTP streaming (the MCP SDK).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import uvicorn
from fastapi import FastAPI

from tests.support.processes import free_port
from tests.support.scripted import ScriptedTurns
from vllm_mcp_ext.access import ApiKeys, Permissions
from vllm_mcp_ext.api.mcp import STATE_KEY
from vllm_mcp_ext.api.plugin import mount
from vllm_mcp_ext.config import ServerSpec, StdioServerSpec
from vllm_mcp_ext.config.limits import Limits
from vllm_mcp_ext.config.policy import Policy
from vllm_mcp_ext.config.remote import RemoteSettings
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.policy.operator import OperatorPolicy
from vllm_mcp_ext.responses.service import ResponsesService
from vllm_mcp_ext.runtime import Runtime
from vllm_mcp_ext.servers import ToolServerRegistry
from vllm_mcp_ext.servers.oauth import Authorizer, OAuthClients
from vllm_mcp_ext.servers.remote import RemoteMcp
from vllm_mcp_ext.store import open_store

BASE_URL = "http://plugin"
CALCULATOR = Path(__file__).resolve().parents[2] / "examples" / "servers" / "calculator.py"
CALC = StdioServerSpec("calc", sys.executable, (str(CALCULATOR),))  # the calculator, over stdio


@asynccontextmanager
async def plugin_client(
    engine: ScriptedTurns,
    servers: tuple[ServerSpec, ...] = (),
    store: Path | None = None,
    *,
    limits: Limits | None = None,
    settings: Settings | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """The plugin's routes over ``engine``, with ``servers`` configured (as ``--tool-server``
    would), responses kept in the SQLite file ``store`` (none kept without it), ``limits`` and
    ``settings`` (default: the defaults, with short timeouts)."""
    async with (
        plugin_app(engine, servers, store, limits=limits, settings=settings) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client,
    ):
        client.app = app  # type: ignore[attr-defined]  # for clients on httpx2 (`httpx2_client`)
        yield client


@asynccontextmanager
async def plugin_app(
    engine: ScriptedTurns,
    servers: tuple[ServerSpec, ...] = (),
    store: Path | None = None,
    *,
    api_keys: tuple[str, ...] = (),
    permissions: dict[str, Any] | None = None,
    limits: Limits | None = None,
    settings: Settings | None = None,
    authorizer: Authorizer | None = None,
    policy: Policy | None = None,
) -> AsyncIterator[FastAPI]:
    """The app of `plugin_client` with ``/mcp``, ``api_keys`` (as ``--api-key``; vLLM's own
    middleware, which answers 401 on ``/v1`` before the plugin, is not there) and the
    ``permissions`` section of a tool-server file. ``authorizer`` completes OAuth authorizations
    (a server process has none: it says to run the login command). ``policy``: the file's
    operator policy (the servers' approval rules are theirs: give them merged, as the file's
    parser does)."""
    settings = settings or Settings(connect_timeout=20, call_timeout=20)
    kept = open_store(str(store)) if store is not None else None
    if kept is not None:
        await kept.open()
    policy = policy or Policy()
    registry = ToolServerRegistry(
        servers, settings, limits, oauth=OAuthClients(kept, authorizer), approval_rules=policy.approvals
    )
    await registry.start()
    app = FastAPI()
    mount(app)  # the plugin's doors, as vLLM's build_app attaches them
    remote = RemoteMcp(RemoteSettings.load(None))
    operator = OperatorPolicy.build(policy, getattr(kept, "db", None))
    service = ResponsesService(
        registry, engine, settings, kept, remote, Permissions.load(permissions), limits, operator
    )
    runtime = Runtime(service, harmony=False, keys=ApiKeys.of(api_keys))
    app.state.vllm_mcp_ext = runtime
    try:
        yield app
    finally:
        gateway = getattr(app.state, STATE_KEY, None)
        if gateway is not None:
            await gateway.aclose()
        await runtime.aclose()


@asynccontextmanager
async def loopback(app: Any, *, lifespan: bool = False) -> AsyncIterator[str]:
    """``app`` served on a loopback port in this event loop (its lifespan run when
    ``lifespan``); yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on" if lifespan else "off"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def httpx2_client(client: httpx.AsyncClient) -> httpx2.AsyncClient:
    """The same app for SDKs built on ``httpx2`` (the ``anthropic`` SDK refuses httpx clients)."""
    app = client.app  # type: ignore[attr-defined]
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE_URL)
