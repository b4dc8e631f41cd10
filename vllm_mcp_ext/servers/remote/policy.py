"""The URL policy for ``server_url``: which places a request may make this server connect to.

Checked in two steps: `UrlPolicy.check` on the URL alone (scheme, userinfo, host names, IP
literals, allow/deny lists), then `UrlPolicy.admit` on every address the host resolves to. The
addresses that passed are the only ones the HTTP client may connect to (`servers.remote.http`), so a
second DNS answer cannot rebind the host to a place the policy would reject.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx2

from vllm_mcp_ext.errors import InvalidRequest
from vllm_mcp_ext.types.source import ServerUnavailable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to
Resolver = Callable[[str, int], Awaitable[list[str]]]

_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
# IPv6 forms whose last 32 bits are an IPv4 address a gateway reaches (RFC 6052, 4291, 2765).
_EMBEDDING = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "64:ff9b::/96",  # NAT64, well-known prefix
        "::/96",  # IPv4-compatible (deprecated); :: and ::1 are judged as themselves
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
    )
)
# Special-purpose and deprecated ranges Python's is_global still calls global (IANA registries).
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "192.0.0.0/24",  # IETF protocol assignments (incl. 192.0.0.9, .10, .170, .171)
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): translates to private networks
        "fec0::/10",  # site-local (deprecated)
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, benchmarking...)
    )
)


class Rule(StrEnum):
    """Why a URL was rejected; the name a 400 carries."""

    REMOTE_DISABLED = "remote_disabled"
    SCHEME = "scheme"
    HTTPS_REQUIRED = "https_required"
    USERINFO = "userinfo"
    DENYLIST = "denylist"
    LOCALHOST = "localhost"
    IP_LITERAL = "ip_literal"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link_local"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    UNIQUE_LOCAL = "unique_local"
    NOT_GLOBAL = "not_global"
    REDIRECT = "redirect"


class PolicyRejected(InvalidRequest):
    """A ``server_url`` the URL policy rejects: a 400 that names the rule."""

    def __init__(self, rule: Rule, detail: str, *, param: str | None = None):
        super().__init__(
            f"server_url rejected by the URL policy (rule: {rule.value}): {detail}",
            param=param,
            code="server_url_not_allowed",
        )
        self.rule = rule
        self.detail = detail

    def at(self, param: str) -> PolicyRejected:
        return PolicyRejected(self.rule, self.detail, param=param)


class Unresolvable(ServerUnavailable):
    """The host has no address (or DNS did not answer in time)."""


@dataclass(frozen=True)
class HostEntry:
    """One allowlist/denylist entry: ``host``, ``.suffix`` (or ``*.suffix``), ``host:port``, CIDR."""

    text: str
    host: str | None = None
    suffix: str | None = None
    port: int | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    @classmethod
    def parse(cls, text: str) -> HostEntry:
        raw = text.strip().lower()
        if raw.startswith("*."):
            raw = raw[1:]
        if raw.startswith("."):
            return cls(text, suffix=raw[1:])
        try:
            return cls(text, network=ipaddress.ip_network(raw.strip("[]"), strict=False))
        except ValueError:
            pass
        host, port = raw, None
        if raw.startswith("["):  # [v6]:port
            host, _, rest = raw[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
        elif raw.count(":") == 1:
            name, _, digits = raw.partition(":")
            if digits.isdigit():
                host, port = name, int(digits)
        return cls(text, host=host, port=port)

    def matches_name(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return host == self.host
        if self.suffix is not None:
            return host == self.suffix or host.endswith("." + self.suffix)
        return False

    def matches_address(self, address: IPAddress) -> bool:
        return (
            self.network is not None and address.version == self.network.version and address in self.network
        )


@dataclass(frozen=True)
class Target:
    """A URL that passed the policy, and the only addresses its host may be reached at."""

    url: str
    scheme: str
    host: str  # as the HTTP client connects to it (IDNA ASCII, IPv6 without brackets)
    port: int
    addresses: tuple[str, ...] = ()

    @property
    def origin(self) -> str:
        """``scheme://host[:port]``: what the ``tools`` echo shows of ``server_url``."""
        url = httpx2.URL(self.url)
        return str(url.copy_with(path="/", query=None, fragment=None, userinfo=b"")).rstrip("/")


DNS_THREADS = 8  # lookups in flight at once, timed-out ones included (they cannot be stopped)
_dns_pool = ThreadPoolExecutor(max_workers=DNS_THREADS, thread_name_prefix="mcp-dns")
_dns_in_flight = 0
_dns_lock = threading.Lock()


async def system_resolver(host: str, port: int) -> list[str]:
    """``getaddrinfo`` on threads of our own: a lookup that outlives its timeout keeps one of
    `DNS_THREADS` busy, never the loop's default executor, and when all are busy a new lookup
    fails at once instead of queueing behind them."""
    global _dns_in_flight
    with _dns_lock:
        if _dns_in_flight >= DNS_THREADS:
            raise OSError("too many DNS lookups in flight")
        _dns_in_flight += 1

    def lookup() -> list[Any]:
        global _dns_in_flight
        try:
            return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        finally:
            with _dns_lock:
                _dns_in_flight -= 1

    try:
        future = asyncio.get_running_loop().run_in_executor(_dns_pool, lookup)
    except RuntimeError:  # the pool is shut down (interpreter exit): the lookup never ran
        with _dns_lock:
            _dns_in_flight -= 1
        raise OSError("DNS is unavailable") from None
    infos = await future
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class UrlPolicy:
    def __init__(
        self,
        *,
        enabled: bool = True,
        allow_http: bool = False,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        hosts: Mapping[str, str] | None = None,
        resolver: Resolver = system_resolver,
        resolve_timeout: float = 10.0,
    ):
        self.enabled = enabled
        self.allow_http = allow_http
        self.allow = tuple(HostEntry.parse(e) for e in allow)
        self.deny = tuple(HostEntry.parse(e) for e in deny)
        self.hosts = {k.lower(): v for k, v in (hosts or {}).items()}
        self.resolver = resolver
        self.resolve_timeout = resolve_timeout

    def check(self, url: str) -> Target:
        """The checks that need no DNS. Raises `PolicyRejected`."""
        if not self.enabled:
            raise PolicyRejected(Rule.REMOTE_DISABLED, "remote MCP servers are turned off on this server")
        try:
            parsed = httpx2.URL(url)
        except (httpx2.InvalidURL, TypeError, ValueError):
            raise PolicyRejected(Rule.SCHEME, "not a valid http(s) URL") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise PolicyRejected(Rule.SCHEME, "only http(s) URLs with a host name can be used")
        if parsed.userinfo:
            raise PolicyRejected(Rule.USERINFO, "credentials in the URL are not accepted; use authorization")
        # "evil.example." is "evil.example": a trailing dot must not slip past the lists
        host = parsed.raw_host.decode("ascii").lower().strip("[]").rstrip(".")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        literal = _ip(host)
        if self._denied(host, port, literal):
            raise PolicyRejected(Rule.DENYLIST, f"{host} is on the operator's denylist")
        target = Target(url, parsed.scheme, host, port)
        if self._allowed_name(host, port, literal):
            return target
        if parsed.scheme == "http" and not self.allow_http:
            raise PolicyRejected(Rule.HTTPS_REQUIRED, "only https URLs are allowed")
        if host == "localhost" or host.endswith(".localhost"):
            raise PolicyRejected(Rule.LOCALHOST, f"{host} names this machine")
        if literal is not None:
            raise PolicyRejected(Rule.IP_LITERAL, "IP addresses are not accepted; use a host name")
        return target

    async def admit(self, url: str) -> Target:
        """`check`, then resolve the host and check every address. Raises `PolicyRejected` or
        `Unresolvable`; the returned target carries the addresses to connect to."""
        target = self.check(url)
        addresses = await self._resolve(target.host, target.port)
        trusted = self._allowed_name(target.host, target.port, _ip(target.host))
        for text in addresses:
            address = _ip(text)
            if address is None:
                raise Unresolvable(f"DNS answered {text!r} for {target.host}, which is not an address")
            if any(e.matches_address(address) for e in self.deny):
                raise PolicyRejected(Rule.DENYLIST, f"{target.host} resolves to {address}, which is denied")
            if trusted or any(e.matches_address(address) for e in self.allow):
                continue
            rule = classify(address)
            if rule is not None:
                raise PolicyRejected(rule, f"{target.host} resolves to {address}, {_DESCRIBE[rule]}")
        return Target(target.url, target.scheme, target.host, target.port, tuple(addresses))

    def check_redirect(self, location: str) -> PolicyRejected | None:
        """What the policy says of a redirect the server answered with (none is followed
        off the origin; this only names the rule when the place itself is forbidden)."""
        try:
            target = self.check(location)
        except PolicyRejected as exc:
            literal = _ip(httpx2.URL(location).host) if exc.rule is not Rule.SCHEME else None
            rule = classify(literal) if literal is not None else None
            detail = f"{literal}, {_DESCRIBE[rule]}" if rule is not None else exc.detail
            return PolicyRejected(Rule.REDIRECT, f"the server redirected to {detail}")
        if _ip(target.host) is not None and not self._allowed_name(
            target.host, target.port, _ip(target.host)
        ):
            return PolicyRejected(Rule.REDIRECT, f"the server redirected to {target.host}")
        return None

    # -- internals ------------------------------------------------------------------------

    async def _resolve(self, host: str, port: int) -> list[str]:
        if _ip(host) is not None:
            return [host]
        if host in self.hosts:
            return [self.hosts[host]]
        try:
            async with asyncio.timeout(self.resolve_timeout):
                addresses = await self.resolver(host, port)
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise Unresolvable(f"cannot resolve {host}: {type(exc).__name__}") from None
        if not addresses:
            raise Unresolvable(f"cannot resolve {host}: no addresses")
        return addresses

    def _denied(self, host: str, port: int, literal: IPAddress | None) -> bool:
        return any(
            e.matches_name(host, port) or (literal is not None and e.matches_address(literal))
            for e in self.deny
        )

    def _allowed_name(self, host: str, port: int, literal: IPAddress | None) -> bool:
        return any(
            e.matches_name(host, port) or (literal is not None and e.matches_address(literal))
            for e in self.allow
        )


_DESCRIBE = {
    Rule.LOOPBACK: "a loopback address",
    Rule.PRIVATE: "a private address",
    Rule.LINK_LOCAL: "a link-local address (cloud metadata lives here)",
    Rule.MULTICAST: "a multicast address",
    Rule.UNSPECIFIED: "the unspecified address",
    Rule.UNIQUE_LOCAL: "an IPv6 unique-local address",
    Rule.NOT_GLOBAL: "an address that is not publicly routable",
}


def classify(address: IPAddress) -> Rule | None:
    """The default rule an address breaks, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return classify(embedded)
        if address.teredo is not None:  # (server, client): a tunnel to the client's address
            server, client = address.teredo
            return classify(client) or classify(server) or Rule.NOT_GLOBAL
    if address.is_unspecified:
        return Rule.UNSPECIFIED
    if address.is_loopback:
        return Rule.LOOPBACK
    if address.is_link_local:
        return Rule.LINK_LOCAL
    if address.is_multicast:
        return Rule.MULTICAST
    if isinstance(address, ipaddress.IPv6Address) and address in _UNIQUE_LOCAL:
        return Rule.UNIQUE_LOCAL
    if address.is_private:
        return Rule.PRIVATE
    if not address.is_global or any(address in net for net in _NOT_GLOBAL if net.version == address.version):
        return Rule.NOT_GLOBAL
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, NAT64, compatible, translated):
    it is judged by that address, the place a gateway would really connect to."""
    embedded = address.ipv4_mapped or address.sixtofour
    if embedded is not None:
        return embedded
    if int(address) <= 1:  # :: and ::1 are themselves, not 0.0.0.0 and 0.0.0.1
        return None
    if any(address in net for net in _EMBEDDING):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _ip(text: str) -> IPAddress | None:
    """An IP address, also in the legacy IPv4 spellings resolvers accept (``2130706433``,
    ``0x7f.1``, ``127.1``), so they count as IP literals and not as names."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)
