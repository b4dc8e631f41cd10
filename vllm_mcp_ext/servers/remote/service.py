"""`RemoteMcp`: what the request parser and the route use of remote mode.

* `RemoteMcp.source` turns an ``mcp`` tool with ``server_url`` into a `RemoteSource` (URL checks
  that need no DNS fail here, as a 400 from the parser); the request's `servers.RequestSources`
  gives its sessions back to the pool when the response is over;
* `RemoteMcp.close` closes the pool at shutdown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vllm_mcp_ext.config.remote import RemoteSettings
from vllm_mcp_ext.config.tool_servers import TRANSPORT_ALIASES, TransportKind
from vllm_mcp_ext.errors import InvalidRequest
from vllm_mcp_ext.redact import without_secrets
from vllm_mcp_ext.servers.remote.policy import PolicyRejected, Resolver, UrlPolicy, system_resolver
from vllm_mcp_ext.servers.remote.pool import SessionPool
from vllm_mcp_ext.servers.remote.source import RemoteSource

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Set by the HTTP client and the MCP transport; a request may not override them.
_RESERVED_HEADERS = {
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
}


class RemoteMcp:
    def __init__(self, settings: RemoteSettings, resolver: Resolver = system_resolver):
        self.settings = settings
        self.policy = UrlPolicy(
            enabled=settings.enabled,
            allow_http=settings.allow_http,
            allow=settings.allow,
            deny=settings.deny,
            hosts=settings.hosts,
            resolver=resolver,
            resolve_timeout=settings.connect_timeout,
        )
        self.pool = SessionPool(settings)

    def source(
        self,
        label: str,
        server_url: str,
        headers: Mapping[str, str] | None,
        authorization: str | None,
        transport: Any,
        param: str,
    ) -> RemoteSource:
        """The request's source for this tool; raises `InvalidRequest` (400) for what the URL
        alone or the fields show."""
        try:
            target = self.policy.check(server_url)
        except PolicyRejected as exc:
            raise exc.at(f"{param}.server_url") from None
        return RemoteSource(
            label,
            target,
            request_headers(headers, authorization, param),
            _transport(transport, server_url, param),
            f"{param}.server_url",
            self.policy,
            self.pool,
        )

    def echo_url(self, server_url: str) -> str:
        """``server_url`` as the response's ``tools`` shows it: as sent, without its secrets
        (userinfo, secret-looking query values)."""
        try:
            self.policy.check(server_url)
        except PolicyRejected:
            return ""
        return without_secrets(server_url)

    def check_count(self, count: int) -> None:
        limit = self.settings.max_servers_per_request
        if count > limit:
            raise InvalidRequest(
                f"a request may name at most {limit} remote MCP servers (server_url); it named {count}",
                param="tools",
                code="too_many_remote_servers",
            )

    async def close(self) -> None:
        await self.pool.close()


def request_headers(
    headers: Mapping[str, str] | None, authorization: str | None, param: str
) -> dict[str, str]:
    """The headers to send: the tool's ``headers``, then ``Authorization: Bearer <authorization>``,
    which wins over a header of the same name."""
    result: dict[str, str] = {}
    for name, value in (headers or {}).items():
        where = f"{param}.headers"
        if not _HEADER_NAME.match(name):
            raise InvalidRequest(f"header name {name!r} is not a valid HTTP header name", param=where)
        if name.lower() in _RESERVED_HEADERS:
            raise InvalidRequest(f"header {name!r} is set by the server and cannot be sent", param=where)
        if any(c in value for c in "\r\n\0"):
            raise InvalidRequest(f"the value of header {name!r} contains a line break", param=where)
        result[name] = value
    if authorization is not None:
        if any(c in authorization for c in "\r\n\0"):
            raise InvalidRequest("authorization contains a line break", param=f"{param}.authorization")
        result = {k: v for k, v in result.items() if k.lower() != "authorization"}
        result["Authorization"] = f"Bearer {authorization}"
    return result


def _transport(hint: Any, url: str, param: str) -> TransportKind | None:
    if hint is None:
        path = url.split("?", 1)[0].rstrip("/")
        return "sse" if path.endswith("/sse") else None
    kind = TRANSPORT_ALIASES.get(hint) if isinstance(hint, str) else None
    if kind is None:
        names = sorted(TRANSPORT_ALIASES)
        raise InvalidRequest(f"transport must be one of {names}", param=f"{param}.transport")
    return kind
