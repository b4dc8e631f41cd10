"""What runs beside the engine in one process: the configured tool servers, the response store,
remote mode and the responses service, started together and stopped together.

Both front doors build it the same way: the vLLM endpoint plugin (`api.plugin`) from the API
server's state, and the in-process Python API (`python_api.McpEngine`) from the state it builds
itself. Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field
from typing import Any

from vllm_mcp_ext import _compat
from vllm_mcp_ext.access import ApiKeys, Permissions
from vllm_mcp_ext.access.origin import HostPolicy
from vllm_mcp_ext.config import ToolServerConfig
from vllm_mcp_ext.config.limits import Limits
from vllm_mcp_ext.config.remote import RemoteSettings, describe_remote
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.engine.turns import model_turns
from vllm_mcp_ext.policy.operator import OperatorPolicy
from vllm_mcp_ext.responses.service import ResponsesService
from vllm_mcp_ext.servers import ToolServerRegistry
from vllm_mcp_ext.servers.oauth import OAuthClients
from vllm_mcp_ext.servers.remote import RemoteMcp
from vllm_mcp_ext.store import ResponseStore, open_store

logger = logging.getLogger("vllm_mcp_ext")


@dataclass
class Runtime:
    """The service and what it was built from; the registry, store and remote mode are the
    service's own, named here for the routes and for closing."""

    service: ResponsesService
    harmony: bool  # gpt-oss: plain requests stay on vLLM's own harmony path
    keys: ApiKeys = field(default_factory=ApiKeys)  # vLLM's --api-key: callers are told apart by them
    open_sockets: int = 0  # WebSocket connections to /v1/responses now (api/websocket.py)
    hosts: HostPolicy = field(default_factory=HostPolicy)  # Host/Origin names the MCP doors answer
    # this server's name for routers (the x-vllm-mcp-replica header: api/affinity.py)
    replica: str = field(default_factory=socket.gethostname)
    # vLLM's --api-server-count: above 1, /mcp serves every request alone (api/mcp.py)
    api_processes: int = 1
    _purge: asyncio.Task[None] | None = None

    @property
    def registry(self) -> ToolServerRegistry:
        return self.service.registry

    @property
    def store(self) -> ResponseStore | None:
        return self.service.store

    @property
    def limits(self) -> Limits:
        return self.service.limits

    @property
    def remote(self) -> RemoteMcp | None:
        return self.service.remote

    @classmethod
    async def start(
        cls, state: Any, config: ToolServerConfig, settings: Settings | None = None
    ) -> Runtime | None:
        """Start everything for the engine behind ``state`` (vLLM's serving state); None when
        this process has no generating engine. Every setting is read and checked here, before
        anything starts (`ConfigError` names a bad one), and passed down from here."""
        settings = settings or Settings.from_env()
        remote_settings = RemoteSettings.load(config.remote)
        permissions = Permissions.load(config.permissions)
        limits = Limits.load(config.limits)
        chat = _compat.VllmChat.from_state(state)
        if chat is None:
            return None
        store = open_store(settings.store)
        if store is not None:
            await store.open()
            logger.info("vllm_mcp_ext: responses are stored in the %r", store)
        registry = ToolServerRegistry(
            config.servers,
            settings,
            limits,
            oauth=OAuthClients(store),
            approval_rules=config.policy.approvals,
        )
        policy = OperatorPolicy.build(config.policy, getattr(store, "db", None))
        await registry.start()
        remote = RemoteMcp(remote_settings)
        logger.info("vllm_mcp_ext: %s", describe_remote(remote_settings))
        service = ResponsesService(
            registry, model_turns(chat), settings, store, remote, permissions, limits, policy
        )
        runtime = cls(service, chat.uses_harmony)
        if store is not None:
            runtime._purge = asyncio.create_task(service.stored.purge_forever(), name="vllm_mcp_ext:purge")
        return runtime

    async def aclose(self) -> None:
        """Stop background responses, the clean-up task, calls held for users' answers, the tool
        servers, pooled remote sessions and the store, in that order."""
        self.service.loop.held.close()
        for task in [*self.service.stored.running.values(), self._purge]:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.registry.stop()
        if self.remote is not None:
            await self.remote.close()
        if self.store is not None:
            await self.store.close()
