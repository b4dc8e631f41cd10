"""The `mcp` SDK's OAuth providers (``httpx2.Auth``) for a configured server, with what a server
process needs on top of them.

The SDK does the protocol: discovery from a 401's ``WWW-Authenticate`` through protected-resource
metadata and authorization-server metadata (path and root well-known forms, the 2025-03-26
fallbacks), dynamic client registration or a client ID metadata document, PKCE, the ``resource``
parameter, scopes from the challenge or ``scopes_supported``, step-up on ``insufficient_scope``,
client credentials with a secret or a signed JWT. Added here (`_Managed`):

* a token counts as expired ``refresh_margin`` seconds early, so it is refreshed (or, for client
  credentials, replaced) before a request can meet its expiry; an expiry read back from storage
  is honoured;
* a 401 with a refresh token in hand refreshes before it asks for a new authorization (a server
  process cannot open a browser: a new authorization is `LoginRequired` there);
* at most ``max_step_up`` authorizations for more scope in a row: after that the 403 stands and
  the call fails, instead of looping.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any

import httpx2
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.auth.oauth2 import OAuthContext
from mcp.client.auth.utils import extract_field_from_www_auth
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from mcp.shared.exceptions import MCPDeprecationWarning

from vllm_mcp_ext.config.oauth import OAuthConfig
from vllm_mcp_ext.errors import ToolError

logger = logging.getLogger(__name__)

# The operator's part of the authorization-code flow: given the authorization URL, the
# redirect's code and state (the login command's browser and loopback callback).
Authorizer = Callable[[str], Awaitable[AuthorizationCodeResult]]


class LoginRequired(ToolError):
    """An authorization-code server needs an operator login (no token, or one that no longer
    refreshes, or a step-up to more scope); the message says which command to run."""


def needs_login(label: str) -> Authorizer:
    """The authorizer of a server process: it cannot ask a person, so it says who can."""

    async def authorize(url: str) -> AuthorizationCodeResult:
        raise LoginRequired(
            f"MCP server {label!r} needs an operator login: run `python -m vllm_mcp_ext.cli.login {label}`"
            " with the same --tool-server file and VLLM_MCP_STORE"
        )

    return authorize


@dataclass
class _EarlyExpiry(OAuthContext):
    margin: float = 0.0

    def update_token_expiry(self, token: OAuthToken) -> None:
        super().update_token_expiry(token)
        if self.token_expiry_time is not None and token.expires_in is not None:
            self.token_expiry_time -= min(self.margin, token.expires_in / 2)


def _is_step_up(response: httpx2.Response) -> bool:
    return (
        response.status_code == 403 and extract_field_from_www_auth(response, "error") == "insufficient_scope"
    )


def _covers(granted: str | None, wanted: str | None) -> bool:
    return granted is None or wanted is None or set(wanted.split()) <= set(granted.split())


class _Managed(OAuthClientProvider):
    """What every provider here adds to the SDK's (see the module docstring)."""

    label = "server"
    max_step_up = 2
    _step_ups = 0
    _refreshes_on_401 = False
    _regrants = False  # the grant needs nobody: an expiring token is replaced in advance

    def _manage(self, label: str, config: OAuthConfig) -> None:
        self.label, self.max_step_up = label, config.max_step_up
        context = self.context
        values = {f.name: getattr(context, f.name) for f in fields(context)}
        self.context = _EarlyExpiry(**values, margin=config.refresh_margin)

    async def _initialize(self) -> None:
        await super()._initialize()
        tokens = self.context.current_tokens
        if tokens is not None and tokens.expires_in is not None:
            self.context.update_token_expiry(tokens)

    async def _auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        if self._regrant_due():  # client credentials: a new token before this one expires
            response = yield await self._perform_authorization()
            await self._handle_token_response(response)
        flow = super()._auth_flow(request)
        answered = False  # the SDK steps up on the first answer only; a retry's 403 stands
        try:
            outgoing = await flow.__anext__()
            while True:
                response = yield outgoing
                if outgoing is request:
                    if not answered and _is_step_up(response):
                        if self._step_ups >= self.max_step_up:
                            logger.warning(
                                "MCP server %r: insufficient_scope after %d step-up authorizations; giving up",
                                self.label,
                                self._step_ups,
                            )
                            return
                        self._step_ups += 1
                    elif response.status_code < 400:
                        self._step_ups = 0
                    answered = True
                outgoing = await flow.asend(response)
        except StopAsyncIteration:
            return
        finally:
            await flow.aclose()

    def _regrant_due(self) -> bool:
        context = self.context
        return (
            self._regrants
            and context.current_tokens is not None
            and not context.can_refresh_token()
            and context.oauth_metadata is not None
            and not context.is_token_valid()
        )

    async def _perform_authorization(self) -> httpx2.Request:
        tokens = self.context.current_tokens
        if (
            self._refreshes_on_401
            and tokens is not None
            and tokens.refresh_token
            and self.context.client_info is not None
            and _covers(tokens.scope, self.context.client_metadata.scope)
        ):
            return await self._refresh_token()
        return await super()._perform_authorization()


class _ClientSecret(_Managed, ClientCredentialsOAuthProvider):
    _regrants = True


class _PrivateKeyJwt(_Managed, PrivateKeyJWTOAuthProvider):
    _regrants = True


class _AuthorizationCode(_Managed):
    _refreshes_on_401 = True
    fixed_client: OAuthClientInformationFull | None = None  # a pre-registered client

    async def _initialize(self) -> None:
        await super()._initialize()
        if self.fixed_client is not None:
            self.context.client_info = self.fixed_client


def oauth_provider(
    label: str, url: str, config: OAuthConfig, storage: TokenStorage, authorizer: Authorizer
) -> httpx2.Auth:
    """The ``httpx2.Auth`` that gets and keeps tokens for the server at ``url``."""
    provider: _Managed
    with warnings.catch_warnings():  # an unset `issuer` is allowed (docs/tool-servers.md)
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        if config.grant == "client_credentials":
            provider = _client_credentials(url, config, storage)
        else:
            provider = _authorization_code(url, config, storage, authorizer)
    provider._manage(label, config)
    return provider


def _client_credentials(url: str, config: OAuthConfig, storage: TokenStorage) -> _Managed:
    assert config.client_id is not None
    if config.token_endpoint_auth_method == "private_key_jwt":
        assert config.private_key is not None
        signed = SignedJWTParameters(
            issuer=config.client_id,
            subject=config.client_id,
            signing_key=config.private_key,
            signing_algorithm=config.signing_algorithm,
        )
        return _PrivateKeyJwt(
            url,
            storage,
            config.client_id,
            signed.create_assertion_provider(),
            scope=config.scope,
            issuer=config.issuer,
        )
    assert config.client_secret is not None
    method: Any = config.token_endpoint_auth_method
    return _ClientSecret(
        url, storage, config.client_id, config.client_secret, method, config.scope, config.issuer
    )


def _authorization_code(
    url: str, config: OAuthConfig, storage: TokenStorage, authorizer: Authorizer
) -> _AuthorizationCode:
    metadata = OAuthClientMetadata(
        redirect_uris=[config.redirect_uri],  # type: ignore[list-item]
        client_name=config.client_name,
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method=config.token_endpoint_auth_method,
        scope=config.scope,
    )
    asked: list[str] = []

    async def redirect(authorization_url: str) -> None:
        asked[:] = [authorization_url]

    async def callback() -> AuthorizationCodeResult:
        return await authorizer(asked[0])

    provider = _AuthorizationCode(
        url, metadata, storage, redirect, callback, client_metadata_url=config.client_metadata_url
    )
    if config.client_id is not None and config.client_metadata_url is None:
        provider.fixed_client = OAuthClientInformationFull(
            client_id=config.client_id,
            client_secret=config.client_secret,
            token_endpoint_auth_method=config.token_endpoint_auth_method
            or ("client_secret_basic" if config.client_secret else "none"),
            redirect_uris=metadata.redirect_uris,
            grant_types=metadata.grant_types,
        )
    return provider
