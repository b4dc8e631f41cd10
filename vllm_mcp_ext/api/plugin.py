"""The `vllm.endpoint_plugins` entry point: ``VLLM_PLUGINS=vllm_mcp_ext`` turns it on."""

from __future__ import annotations

import logging
from argparse import Namespace
from typing import Any

from fastapi import FastAPI
from starlette.routing import Route

from vllm_mcp_ext import _compat
from vllm_mcp_ext.access import ApiKeys
from vllm_mcp_ext.access.origin import HostPolicy
from vllm_mcp_ext.api import chat, compact, conversations, messages, responses, status, websocket
from vllm_mcp_ext.api.affinity import replica_name
from vllm_mcp_ext.api.mcp import GatewayApp
from vllm_mcp_ext.config import parse_tool_server_arg
from vllm_mcp_ext.runtime import Runtime

logger = logging.getLogger("vllm_mcp_ext")

# The doors: each one module of api/ with its routes on `router` (docs/architecture.md).
DOORS = (responses, compact, status, conversations, chat, messages, websocket)


def mount(app: FastAPI) -> None:
    """Every door on ``app``: the routers, then the MCP server at ``/mcp`` (an ASGI app)."""
    for door in DOORS:
        app.include_router(door.router)
    app.router.routes.append(Route("/mcp", GatewayApp()))  # every configured server as one
    app.router.routes.append(Route("/mcp/{label}", GatewayApp()))  # one server as itself


class McpEndpointPlugin:
    name = "vllm_mcp_ext"
    required_tasks = ("generate",)

    def __init__(self) -> None:
        # Runs in build_app, before vLLM's own init_tool_server reads --tool-server.
        _compat.patch_tool_server_init(lambda value: parse_tool_server_arg(value).vllm_native)
        _compat.use_vllm_logging()

    def attach_router(self, app: FastAPI) -> None:
        mount(app)

    async def init_state(self, engine_client: Any, state: Any, args: Namespace) -> None:
        config = parse_tool_server_arg(getattr(args, "tool_server", None))
        runtime = await Runtime.start(state, config) if engine_client is not None else None
        if runtime is None:
            logger.warning("vllm_mcp_ext: no generating engine here; MCP routes stay inactive")
            return
        runtime.keys = ApiKeys.from_args(args)
        runtime.hosts = HostPolicy.load(getattr(args, "host", None), runtime.service.settings.allowed_hosts)
        runtime.service.own_port = getattr(args, "port", None)
        runtime.replica = replica_name(runtime.service.settings.replica, runtime.service.own_port)
        # each API server process gets the parsed args; one process alone has None here
        runtime.api_processes = getattr(args, "api_server_count", None) or 1
        state.vllm_mcp_ext = runtime  # the endpoint-plugin interface has no shutdown hook to close it
