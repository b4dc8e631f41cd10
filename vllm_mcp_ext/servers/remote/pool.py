"""Remote sessions kept open for a short idle time, per (URL, transport, addresses, credentials).

Two requests share a session only when they name the same URL with the same headers and token
(compared by a salted hash; the pool keeps no plain credential). An unused session closes after
``idle_timeout``; a session that failed once is retired: its borrowers finish, nobody new gets it.
Calls per server URL are capped by a semaphore shared by every session to that URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from vllm_mcp_ext import redact
from vllm_mcp_ext.config.remote import RemoteSettings
from vllm_mcp_ext.config.tool_servers import TransportKind
from vllm_mcp_ext.redact import Redactor
from vllm_mcp_ext.servers.remote.http import remote_transports
from vllm_mcp_ext.servers.remote.policy import Target
from vllm_mcp_ext.servers.session import McpSession, Timeouts

logger = logging.getLogger(__name__)
_SALT = os.urandom(16)


@dataclass(frozen=True)
class PoolKey:
    url: str
    transport: TransportKind | None
    addresses: tuple[str, ...]
    credentials: str  # salted hash of the headers (Authorization included)


def pool_key(target: Target, transport: TransportKind | None, headers: Mapping[str, str]) -> PoolKey:
    digest = hashlib.sha256(_SALT)
    for name, value in sorted((k.lower(), v) for k, v in headers.items()):
        digest.update(f"{len(name)}:{name}{len(value)}:{value}".encode())
    return PoolKey(target.url, transport, target.addresses, digest.hexdigest())


@dataclass(eq=False)
class Lease:
    """A borrowed session; give it back with `SessionPool.release`."""

    session: McpSession
    key: PoolKey
    released: bool = False


@dataclass(eq=False)
class _Entry:
    session: McpSession
    secrets: tuple[str, ...]
    borrowers: int = 0
    expiry: asyncio.TimerHandle | None = None
    closing: bool = field(default=False)


class SessionPool:
    def __init__(self, settings: RemoteSettings):
        self.settings = settings
        self._entries: dict[PoolKey, _Entry] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._orphans: set[_Entry] = set()  # out of the pool, still borrowed

    def __len__(self) -> int:
        return len(self._entries)

    async def acquire(
        self, target: Target, transport: TransportKind | None, headers: Mapping[str, str], redactor: Redactor
    ) -> Lease:
        """An open session for this target and credentials; raises `OpenFailed`."""
        key = pool_key(target, transport, headers)
        entry = self._entries.get(key)
        if entry is None or entry.session.retired:
            if entry is not None:
                self._forget(key, entry)
            self._make_room()
            session = open_session(target, headers, transport, self.settings, redactor)
            entry = _Entry(session, redactor.secrets)
            redact.register(entry.secrets)
            self._entries[key] = entry
        entry.borrowers += 1
        if entry.expiry is not None:
            entry.expiry.cancel()
            entry.expiry = None
        try:
            await entry.session.wait_open()
        except BaseException:
            self._give_back(key, entry)
            raise
        return Lease(entry.session, key)

    def release(self, lease: Lease) -> None:
        if lease.released:
            return
        lease.released = True
        entry = self._entries.get(lease.key)
        if entry is None or entry.session is not lease.session:
            entry = self._orphan(lease)
            if entry is None:
                return
        self._give_back(lease.key, entry)

    def slot(self, url: str) -> asyncio.Semaphore:
        """The per-server cap on calls in flight."""
        sem = self._slots.get(url)
        if sem is None:
            sem = self._slots[url] = asyncio.Semaphore(self.settings.max_concurrent_calls)
        return sem

    async def close(self) -> None:
        """Close every session, borrowed or not (shutdown)."""
        entries = list(self._entries.values()) + list(self._orphans)
        self._entries.clear()
        self._orphans.clear()
        for entry in entries:
            entry.borrowers = 0
            if entry.expiry is not None:
                entry.expiry.cancel()
            if not entry.closing:
                entry.closing = True
                task = asyncio.create_task(self._close(entry))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # -- internals ------------------------------------------------------------------------

    def _give_back(self, key: PoolKey, entry: _Entry) -> None:
        entry.borrowers -= 1
        if entry.borrowers > 0:
            return
        if entry.session.retired or self._entries.get(key) is not entry:
            self._forget(key, entry)
            return
        loop = asyncio.get_running_loop()
        entry.expiry = loop.call_later(self.settings.idle_timeout, self._expire, key, entry)

    def _expire(self, key: PoolKey, entry: _Entry) -> None:
        if entry.borrowers == 0:
            self._forget(key, entry)

    def _forget(self, key: PoolKey, entry: _Entry) -> None:
        """Drop it from the pool; close it once nobody borrows it."""
        if self._entries.get(key) is entry:
            del self._entries[key]
        entry.session.retire()
        if entry.expiry is not None:
            entry.expiry.cancel()
            entry.expiry = None
        if entry.borrowers > 0 or entry.closing:
            self._orphans.add(entry)
            return
        entry.closing = True
        self._orphans.discard(entry)
        task = asyncio.create_task(self._close(entry))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, entry: _Entry) -> None:
        try:
            await entry.session.close()
        finally:
            redact.unregister(entry.secrets)

    def _orphan(self, lease: Lease) -> _Entry | None:
        for entry in self._orphans:
            if entry.session is lease.session:
                return entry
        return None

    def _make_room(self) -> None:
        """Past the pool size, close the idle sessions first."""
        if len(self._entries) < self.settings.max_pooled_sessions:
            return
        for key, entry in list(self._entries.items()):
            if entry.borrowers == 0:
                self._forget(key, entry)
            if len(self._entries) < self.settings.max_pooled_sessions:
                return


def open_session(
    target: Target,
    headers: Mapping[str, str],
    transport: TransportKind | None,
    settings: RemoteSettings,
    redactor: Redactor,
) -> McpSession:
    """A started session to a remote server: over the pinned client, with its errors redacted."""
    timeouts = Timeouts(
        open=settings.connect_timeout + settings.list_timeout,
        initialize=settings.connect_timeout,
        list=settings.list_timeout,
        call=settings.call_timeout,
    )
    transports = remote_transports(target, headers, transport, settings)
    session = McpSession(target.origin, transports, timeouts, redact=redactor.text, kind="remote")
    session.start(f"mcp-remote:{target.origin}")
    return session
