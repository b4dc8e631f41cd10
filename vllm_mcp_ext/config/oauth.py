"""A configured server's ``oauth`` block (docs/tool-servers.md): how the plugin gets tokens for an
MCP server behind OAuth 2.1.

Two grants. ``client_credentials`` (the MCP client-credentials extension): the server process
gets its own tokens with ``client_id`` and a ``client_secret`` (``client_secret_basic`` or
``client_secret_post``) or a ``private_key`` (``private_key_jwt``). ``authorization_code``: an
operator logs in once with ``python -m vllm_mcp_ext.cli.login LABEL``; the refresh token is kept
in the response store. Secrets are written as ``${VAR}`` and read from the environment, once, at
start; a missing variable is an error that names it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from vllm_mcp_ext.errors import ConfigError

Grant = Literal["client_credentials", "authorization_code"]
AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
AUTH_METHODS: tuple[AuthMethod, ...] = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
)
DEFAULT_REDIRECT_URI = "http://127.0.0.1:33418/callback"
MAX_STEP_UP = 2  # authorizations for more scope in a row, after which an insufficient_scope stands
REFRESH_MARGIN = 60.0  # seconds before expiry at which a token counts as expired
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_KEYS = {
    "grant",
    "client_id",
    "client_secret",
    "private_key",
    "signing_algorithm",
    "token_endpoint_auth_method",
    "scope",
    "issuer",
    "client_metadata_url",
    "client_name",
    "redirect_uri",
    "max_step_up",
    "refresh_margin",
}


@dataclass(frozen=True)
class OAuthConfig:
    grant: Grant
    client_id: str | None = None  # None: registered dynamically (or a client metadata URL)
    client_secret: str | None = None
    private_key: str | None = None  # PEM, for private_key_jwt
    signing_algorithm: str = "RS256"
    token_endpoint_auth_method: AuthMethod | None = None  # None: what registration gives
    scope: str | None = None  # None: from the server's challenge or its scopes_supported
    issuer: str | None = None  # the authorization server the client credentials belong to
    client_metadata_url: str | None = None  # an https client ID metadata document
    client_name: str = "vllm-mcp-ext"
    redirect_uri: str = DEFAULT_REDIRECT_URI  # where the login command takes the redirect
    max_step_up: int = MAX_STEP_UP
    refresh_margin: float = REFRESH_MARGIN

    def __repr__(self) -> str:  # never the secret or the key
        return f"OAuthConfig(grant={self.grant!r}, client_id={self.client_id!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be shown: the secret, the key and each line of it."""
        key_lines = [line for line in (self.private_key or "").splitlines() if "-----" not in line]
        return tuple(s for s in (self.client_secret, self.private_key, *key_lines) if s)


def parse_oauth(entry: Any, where: str, env: Mapping[str, str] | None = None) -> OAuthConfig:
    """The ``oauth`` object of a server entry, with ``${VAR}`` read from ``env``."""
    where = f"{where}: field 'oauth'"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (allowed: {sorted(_KEYS)})")
    env = os.environ if env is None else env
    text = {k: _expand(v, f"{where}.{k}", env) for k, v in entry.items() if k not in _NUMBERS}
    method = text.get("token_endpoint_auth_method")
    if method is not None and method not in AUTH_METHODS:
        raise ConfigError(f"{where}.token_endpoint_auth_method must be one of {list(AUTH_METHODS)}")
    config = OAuthConfig(
        grant=_grant(text, where),
        client_id=text.get("client_id"),
        client_secret=text.get("client_secret"),
        private_key=text.get("private_key"),
        signing_algorithm=text.get("signing_algorithm", "RS256"),
        token_endpoint_auth_method=method or _default_method(text),  # type: ignore[arg-type]
        scope=text.get("scope"),
        issuer=text.get("issuer"),
        client_metadata_url=text.get("client_metadata_url"),
        client_name=text.get("client_name", "vllm-mcp-ext"),
        redirect_uri=text.get("redirect_uri", DEFAULT_REDIRECT_URI),
        max_step_up=int(_number(entry, "max_step_up", MAX_STEP_UP, where, minimum=0)),
        refresh_margin=_number(entry, "refresh_margin", REFRESH_MARGIN, where, minimum=0),
    )
    _check(config, where)
    return config


_NUMBERS = {"max_step_up", "refresh_margin"}


def _expand(value: Any, where: str, env: Mapping[str, str]) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string")

    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return env[name]

    return _VAR.sub(variable, value)


def _grant(text: dict[str, str], where: str) -> Grant:
    grant = text.get("grant")
    if grant is None:
        return (
            "client_credentials" if "client_secret" in text or "private_key" in text else "authorization_code"
        )
    if grant not in ("client_credentials", "authorization_code"):
        raise ConfigError(f"{where}.grant must be 'client_credentials' or 'authorization_code'")
    return grant  # type: ignore[return-value]


def _default_method(text: dict[str, str]) -> AuthMethod | None:
    if "private_key" in text:
        return "private_key_jwt"
    if "client_secret" in text:
        return "client_secret_basic"
    return None


def _number(entry: dict[str, Any], key: str, default: float, where: str, *, minimum: float) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(f"{where}.{key} must be a number >= {minimum:g}")
    return float(value)


def _check(config: OAuthConfig, where: str) -> None:
    method = config.token_endpoint_auth_method
    if method == "private_key_jwt" and not config.private_key:
        raise ConfigError(f"{where}: token_endpoint_auth_method 'private_key_jwt' needs 'private_key'")
    if method in ("client_secret_basic", "client_secret_post") and not config.client_secret:
        raise ConfigError(f"{where}: token_endpoint_auth_method {method!r} needs 'client_secret'")
    if config.grant == "client_credentials":
        if not config.client_id:
            raise ConfigError(f"{where}: grant 'client_credentials' needs 'client_id'")
        if method not in ("client_secret_basic", "client_secret_post", "private_key_jwt"):
            raise ConfigError(f"{where}: grant 'client_credentials' needs 'client_secret' or 'private_key'")
    elif config.private_key:
        raise ConfigError(f"{where}: 'private_key' is for grant 'client_credentials' only")
    if config.client_secret and not config.client_id:
        raise ConfigError(f"{where}: 'client_secret' needs 'client_id'")
    if config.client_metadata_url and not config.client_metadata_url.startswith("https://"):
        raise ConfigError(f"{where}.client_metadata_url must be an https:// URL")
    if not config.redirect_uri.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:")):
        raise ConfigError(f"{where}.redirect_uri must be a loopback http URL with a port")
