"""All configured servers of this API server process, by label."""

from __future__ import annotations

import asyncio
import logging

from vllm_mcp_ext.config import ServerSpec
from vllm_mcp_ext.config.limits import Limits
from vllm_mcp_ext.config.policy import ApprovalRules
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.servers.connection import ServerConnection, ServerSnapshot
from vllm_mcp_ext.servers.oauth import OAuthClients

logger = logging.getLogger(__name__)


class ToolServerRegistry:
    def __init__(
        self,
        specs: tuple[ServerSpec, ...],
        settings: Settings,
        limits: Limits | None = None,
        *,
        oauth: OAuthClients | None = None,
        approval_rules: ApprovalRules | None = None,
    ):
        self.settings = settings
        # the operator's global approval rules: for sources other than these servers (server_url)
        self.approval_rules = approval_rules
        oauth = self.oauth = oauth or OAuthClients()
        self.connections = [ServerConnection(spec, settings, limits, oauth=oauth) for spec in specs]

    async def start(self) -> None:
        """Connect every server; wait for each first attempt, never longer than the timeout."""
        for conn in self.connections:
            conn.start()
        if not self.connections:
            return
        waits = [asyncio.create_task(c.wait_first_attempt()) for c in self.connections]
        _, pending = await asyncio.wait(waits, timeout=self.settings.connect_timeout + 1)
        for task in pending:
            task.cancel()
        for conn in self.connections:
            snap = conn.snapshot()
            logger.info(
                "MCP server %r (%s): %s, %d tools%s",
                snap.label,
                snap.transport,
                snap.status.value,
                snap.tool_count,
                f", last error: {snap.last_error}" if snap.last_error else "",
            )

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.connections))
        self.oauth.close()

    def get(self, label: str) -> ServerConnection | None:
        for conn in self.connections:
            if conn.label == label:
                return conn
        return None

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.connections]

    def snapshots(self) -> list[ServerSnapshot]:
        return [c.snapshot() for c in self.connections]
