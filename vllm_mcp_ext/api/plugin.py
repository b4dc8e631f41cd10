"""The `vllm.endpoint_plugins` entry point: ``VLLM_PLUGINS=vllm_mcp_ext`` turns it on."""

from __future__ import annotations

import asyncio
import logging
from argparse import Namespace
from typing import Any

from fastapi import FastAPI

from vllm_mcp_ext import _compat
from vllm_mcp_ext.api.routes import PluginState, router
from vllm_mcp_ext.config import parse_tool_server_arg
from vllm_mcp_ext.config.remote import RemoteSettings, describe_remote
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.engine.turns import model_turns
from vllm_mcp_ext.responses.service import ResponsesService
from vllm_mcp_ext.servers import ToolServerRegistry
from vllm_mcp_ext.servers.remote import RemoteMcp
from vllm_mcp_ext.store import open_store

logger = logging.getLogger("vllm_mcp_ext")


class McpEndpointPlugin:
    name = "vllm_mcp_ext"
    required_tasks = ("generate",)

    def __init__(self) -> None:
        # Runs in build_app, before vLLM's own init_tool_server reads --tool-server.
        _compat.patch_tool_server_init()
        _compat.use_vllm_logging()

    def attach_router(self, app: FastAPI) -> None:
        app.include_router(router)

    async def init_state(self, engine_client: Any, state: Any, args: Namespace) -> None:
        config = parse_tool_server_arg(getattr(args, "tool_server", None))
        settings = Settings.from_env()
        remote_settings = RemoteSettings.load(config.remote)
        chat = _compat.VllmChat.from_state(state)
        if engine_client is None or chat is None:
            logger.warning("vllm_mcp_ext: no generating engine here; MCP routes stay inactive")
            return
        store = open_store(settings.store)
        if store is not None:
            await store.open()
            logger.info("vllm_mcp_ext: responses are stored in the %r", store)
        registry = ToolServerRegistry(config.servers, settings)
        await registry.start()
        remote = RemoteMcp(remote_settings)
        logger.info("vllm_mcp_ext: %s", describe_remote(remote_settings))
        service = ResponsesService(registry, model_turns(chat), settings, store, remote)
        if store is not None:
            self._purge = asyncio.create_task(service.stored.purge_forever(), name="vllm_mcp_ext:purge")
        state.vllm_mcp_ext = PluginState(registry=registry, service=service, harmony=chat.uses_harmony)
