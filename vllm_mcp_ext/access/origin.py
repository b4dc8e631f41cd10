"""`HostPolicy`: which ``Host`` and ``Origin`` headers the plugin's own MCP doors answer.

DNS rebinding: a web page the user opens can point a name it owns at 127.0.0.1 and then call a
server on the user's machine as if it were that page's own site; the browser sends ``Host:
evil.example`` and ``Origin: http://evil.example``. The MCP spec makes refusing those a MUST.

Allowed by default: the loopback names (``localhost``, ``127.0.0.1``, ``::1``) and the name vLLM
was told to bind (``--host``, unless it is a wildcard such as ``0.0.0.0``), at any port. The
operator adds names with ``VLLM_MCP_ALLOWED_HOSTS`` (comma separated host names or IP
addresses; ``*`` turns the check off). The ``Host`` header must name an allowed host; an
``Origin`` header, when present (browsers send one), must name one too. Anything else is a 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})


@dataclass(frozen=True)
class HostPolicy:
    hosts: frozenset[str] = LOOPBACK  # lower-case host names, IPv6 without brackets
    everyone: bool = False  # ``VLLM_MCP_ALLOWED_HOSTS=*``: no check

    @classmethod
    def load(cls, bind_host: str | None = None, allowed: str | None = None) -> HostPolicy:
        """The default names, vLLM's ``--host`` (``bind_host``) and the operator's list
        (``allowed``: `Settings.allowed_hosts`, from ``VLLM_MCP_ALLOWED_HOSTS``)."""
        raw = allowed or ""
        names = {n.strip().lower().strip("[]") for n in raw.split(",") if n.strip()}
        if "*" in names:
            return cls(everyone=True)
        if bind_host and bind_host.lower().strip("[]") not in _WILDCARDS:
            names.add(bind_host.lower().strip("[]"))
        return cls(LOOPBACK | names)

    def refusal(self, host: str | None, origin: str | None) -> str | None:
        """Why a request with these headers is refused; None when it is allowed."""
        if self.everyone:
            return None
        if host is None or _host_name(host) not in self.hosts:
            return "the Host header does not name this server"
        if origin is not None and _origin_name(origin) not in self.hosts:
            return "the Origin header names another site"
        return None


def _host_name(host: str) -> str:
    """``Host`` without its port: ``[::1]:8000`` -> ``::1``, ``Example.com:80`` -> ``example.com``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _origin_name(origin: str) -> str | None:
    """The host of an ``Origin`` (``scheme://host[:port]``); None for ``null`` or junk."""
    try:
        parts = urlsplit(origin.strip())
        return parts.hostname if parts.scheme in ("http", "https") else None
    except ValueError:
        return None
