"""Where a configured server's OAuth client and tokens are kept: the `mcp` SDK's `TokenStorage`.

Authorization-code servers keep them in the response store (`StoredTokens`): the operator's login
(``vllm_mcp_ext.cli.login``) writes the refresh token there and every API server process reads
it. Client-credentials servers keep them in memory (`MemoryTokens`): a restart asks for a new
token. Both keep the expiry as a time, so a token read back later is not taken for fresh, and
both tell the log redaction about every token they hold.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from vllm_mcp_ext import redact


class CredentialStore(Protocol):
    """The part of the response store that keeps credentials (`store.ResponseStore`)."""

    async def put_credentials(self, key: str, value: dict[str, Any]) -> None: ...

    async def get_credentials(self, key: str) -> dict[str, Any] | None: ...


class MemoryTokens:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.expires_at: float | None = None
        self.client: OAuthClientInformationFull | None = None
        self._secrets: tuple[str, ...] = ()

    async def get_tokens(self) -> OAuthToken | None:
        if self.tokens is None or self.expires_at is None:
            return self.tokens
        left = max(0, int(self.expires_at - time.time()))
        return self.tokens.model_copy(update={"expires_in": left})

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self._hold(tokens)
        self.tokens = tokens
        self.expires_at = None if tokens.expires_in is None else time.time() + tokens.expires_in

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        if self.client is not None and self.client.client_secret:
            redact.unregister((self.client.client_secret,))
        self.client = client_info
        if client_info.client_secret:
            redact.register((client_info.client_secret,))

    def forget(self) -> None:
        """Unregister what this storage registered for log redaction."""
        redact.unregister(self._secrets)
        self._secrets = ()
        if self.client is not None and self.client.client_secret:
            redact.unregister((self.client.client_secret,))

    def _hold(self, tokens: OAuthToken) -> None:
        """Log records never show a token this process holds."""
        held = tuple(t for t in (tokens.access_token, tokens.refresh_token) if t)
        redact.register(held)
        redact.unregister(self._secrets)
        self._secrets = held


class StoredTokens(MemoryTokens):
    """`MemoryTokens` written through to the response store under ``key``, and read from it
    before first use (another process, or the login command, may have written them)."""

    def __init__(self, store: CredentialStore, key: str):
        super().__init__()
        self.store = store
        self.key = key
        self._loaded = False

    async def get_tokens(self) -> OAuthToken | None:
        await self._load()
        return await super().get_tokens()

    async def set_tokens(self, tokens: OAuthToken) -> None:
        await self._load()
        await super().set_tokens(tokens)
        await self._save()

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        await self._load()
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        await self._load()
        await super().set_client_info(client_info)
        await self._save()

    async def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        saved = await self.store.get_credentials(self.key) or {}
        if saved.get("client"):
            await super().set_client_info(OAuthClientInformationFull.model_validate(saved["client"]))
        if saved.get("tokens"):
            tokens = OAuthToken.model_validate(saved["tokens"])
            self._hold(tokens)
            self.tokens, self.expires_at = tokens, saved.get("expires_at")

    async def _save(self) -> None:
        value = {
            "client": None if self.client is None else self.client.model_dump(mode="json", exclude_none=True),
            "tokens": None if self.tokens is None else self.tokens.model_dump(mode="json", exclude_none=True),
            "expires_at": self.expires_at,
        }
        await self.store.put_credentials(self.key, value)
