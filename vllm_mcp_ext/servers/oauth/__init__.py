"""OAuth 2.1 for configured servers (their ``oauth`` block, see config.oauth): the `mcp` SDK's
providers with a server process's additions (`provider`), and where their tokens are kept
(`storage`). `OAuthClients` gives each configured server its ``httpx2.Auth``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import httpx2

from vllm_mcp_ext import redact
from vllm_mcp_ext.config import HttpServerSpec
from vllm_mcp_ext.servers.oauth.provider import Authorizer, LoginRequired, needs_login, oauth_provider
from vllm_mcp_ext.servers.oauth.storage import CredentialStore, MemoryTokens, StoredTokens

__all__ = ["Authorizer", "LoginRequired", "OAuthClients", "credentials_key", "needs_login"]


def credentials_key(label: str, url: str) -> str:
    """Where a server's credentials are kept: its label and URL (a new URL logs in anew)."""
    return f"oauth:{label}:{hashlib.sha256(url.encode()).hexdigest()[:16]}"


@dataclass
class OAuthClients:
    """What configured servers get their tokens with: the store that keeps authorization-code
    credentials (None: the store is off, and such servers cannot be used) and who completes an
    authorization (`needs_login` in a server process; the login command's browser in it)."""

    store: CredentialStore | None = None
    authorizer: Authorizer | None = None
    providers: dict[str, httpx2.Auth] = field(default_factory=dict)
    _held: list[tuple[tuple[str, ...], MemoryTokens]] = field(default_factory=list)

    def auth_for(self, label: str, spec: HttpServerSpec) -> httpx2.Auth | None:
        """The server's provider, one per server for the life of the process (it holds the
        discovered metadata and the tokens); None for a server without ``oauth``."""
        config = spec.oauth
        if config is None:
            return None
        if label not in self.providers:
            redact.register(config.secrets)  # no log record shows them
            storage: MemoryTokens
            if config.grant == "authorization_code" and self.store is not None:
                storage = StoredTokens(self.store, credentials_key(label, spec.url))
            else:
                storage = MemoryTokens()
            authorizer = self.authorizer or needs_login(label)
            self._held.append((tuple(config.secrets), storage))
            self.providers[label] = oauth_provider(label, spec.url, config, storage, authorizer)
        return self.providers[label]

    def close(self) -> None:
        """Forget the secrets and tokens registered for log redaction (the servers are gone): a
        second runtime in the process, or a test, does not inherit them."""
        for secrets, storage in self._held:
            redact.unregister(secrets)
            storage.forget()
        self._held.clear()
        self.providers.clear()
