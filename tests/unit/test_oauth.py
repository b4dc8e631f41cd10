"""OAuth for configured servers against a real authorization server and protected MCP server on
loopback (tests/support/oauth_server.py): each grant and client authentication, tokens cached,
replaced or refreshed before they expire and on a 401, step-up and its limit, the login a server
process cannot do, and secrets kept out of errors and logs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.asgi import loopback
from tests.support.oauth import follow_authorization
from tests.support.oauth_server import Client, OAuthState, oauth_app
from tests.support.processes import free_port
from vllm_mcp_ext import redact
from vllm_mcp_ext.cli.login import Login, LoginFailed, login, loopback_authorizer
from vllm_mcp_ext.config import HttpServerSpec
from vllm_mcp_ext.config.oauth import parse_oauth
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.servers import CallFailed, ToolServerRegistry
from vllm_mcp_ext.servers.oauth import Authorizer, OAuthClients, credentials_key
from vllm_mcp_ext.store import open_store

SECRET = "top-secret-client-value"
SETTINGS = Settings(connect_timeout=10, call_timeout=10)


class Clock:
    """`time` for the SDK's token checks, moved by the test instead of waited for."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("mcp.client.auth.oauth2.time", fake)
    monkeypatch.setattr("mcp.shared.auth_utils.time", fake)
    return fake


@pytest.fixture
async def server() -> AsyncIterator[OAuthState]:
    state = OAuthState()
    state.clients["svc"] = Client("svc", SECRET, "client_secret_basic")
    state.clients["poster"] = Client("poster", SECRET, "client_secret_post")
    async with loopback(oauth_app(state), lifespan=True) as url:
        state.base_url = url
        yield state


def spec(state: OAuthState, oauth: dict[str, Any], env: dict[str, str] | None = None) -> HttpServerSpec:
    config = parse_oauth(oauth, "test", {"SECRET": SECRET, **(env or {})})
    return HttpServerSpec(
        url=f"{state.base_url}/mcp", transport="streamable_http", label="vault", oauth=config
    )


class Registry:
    """A registry of the one server, as a server process or the login command holds it."""

    def __init__(self, server: HttpServerSpec, clients: OAuthClients):
        self.registry = ToolServerRegistry((server,), SETTINGS, oauth=clients)

    async def __aenter__(self) -> Any:
        await self.registry.start()
        connection = self.registry.get("vault")
        assert connection is not None
        return connection

    async def __aexit__(self, *exc: object) -> None:
        await self.registry.stop()


async def add(connection: Any) -> str:
    result = await connection.call_tool("add", {"a": 2, "b": 3})
    return result.content[0].text


CLIENT_CREDENTIALS = {"client_id": "svc", "client_secret": "${SECRET}"}


async def test_client_credentials_token_is_asked_for_once_and_reused(server: OAuthState) -> None:
    async with Registry(spec(server, CLIENT_CREDENTIALS), OAuthClients()) as vault:
        assert [await add(vault), await add(vault)] == ["5", "5"]
    assert server.token_requests == [
        {
            "grant": "client_credentials",
            "auth": "client_secret_basic",
            "resource": f"{server.base_url}/mcp",
            "scope": "calc",
        }
    ]


async def test_client_secret_post_sends_the_secret_in_the_form(server: OAuthState) -> None:
    oauth = {
        "client_id": "poster",
        "client_secret": "${SECRET}",
        "token_endpoint_auth_method": "client_secret_post",
    }
    async with Registry(spec(server, oauth), OAuthClients()) as vault:
        assert await add(vault) == "5"
    assert [(r["grant"], r["auth"]) for r in server.token_requests] == [
        ("client_credentials", "client_secret_post")
    ]


async def test_private_key_jwt_signs_an_assertion_for_the_authorization_server(server: OAuthState) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    server.clients["signer"] = Client("signer", None, "private_key_jwt", public_key=public.decode())
    oauth = {"client_id": "signer", "private_key": "${KEY}"}
    async with Registry(spec(server, oauth, {"KEY": pem.decode()}), OAuthClients()) as vault:
        assert await add(vault) == "5"
        assert pem.decode() in redact._REGISTRY.active  # log records never show the key...
    assert [(r["grant"], r["auth"]) for r in server.token_requests] == [
        ("client_credentials", "private_key_jwt")
    ]
    assert redact._REGISTRY.active == ()  # ...and a stopped registry leaves nothing registered


async def test_a_client_credentials_token_near_expiry_is_replaced_before_a_request_meets_it(
    server: OAuthState, clock: Clock
) -> None:
    async with Registry(spec(server, {**CLIENT_CREDENTIALS, "refresh_margin": 60}), OAuthClients()) as vault:
        assert await add(vault) == "5"
        clock.offset = 3600 - 59  # inside the margin, not yet expired for the server
        assert await add(vault) == "5"
    assert server.grants == ["client_credentials", "client_credentials"]
    assert server.unauthorized == 1  # only the first request, before any token


async def log_in(state: OAuthState, store: Path, oauth: dict[str, Any], authorizer: Authorizer) -> None:
    """What the login command does: one session through an authorizer, tokens to the store."""
    kept = open_store(str(store))
    assert kept is not None
    await kept.open()
    try:
        async with Registry(spec(state, oauth), OAuthClients(kept, authorizer)) as vault:
            await vault.current_tools()
    finally:
        await kept.close()


class ServerProcess:
    """A server process after the login: the same store, nobody to authorize."""

    def __init__(self, state: OAuthState, store: Path, oauth: dict[str, Any]):
        self.state, self.oauth = state, oauth
        kept = open_store(str(store))
        assert kept is not None
        self.kept = kept

    async def __aenter__(self) -> Any:
        await self.kept.open()
        self.registry = Registry(spec(self.state, self.oauth), OAuthClients(self.kept))
        return await self.registry.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self.registry.__aexit__()
        await self.kept.close()


AUTH_CODE = {"grant": "authorization_code"}


async def test_a_login_serves_later_processes_which_refresh_before_expiry_and_on_a_401(
    server: OAuthState, tmp_path: Path, clock: Clock
) -> None:
    store = tmp_path / "store.sqlite3"
    await log_in(server, store, AUTH_CODE, follow_authorization)
    assert server.grants == ["authorization_code"] and len(server.authorizations) == 1
    async with ServerProcess(server, store, AUTH_CODE) as vault:
        assert await add(vault) == "5"
        assert server.grants == ["authorization_code"]  # the stored token served
        server.revoke_access()
        assert await add(vault) == "5"  # 401 -> refresh, not a new login
        clock.offset = 3600 - 30
        assert await add(vault) == "5"  # expiring -> refresh before the request
    assert server.grants == ["authorization_code", "refresh_token", "refresh_token"]
    assert len(server.authorizations) == 1
    registered = [c for c in server.clients.values() if c.client_id.startswith("dyn-")]
    assert [c.redirect_uris for c in registered] == [["http://127.0.0.1:33418/callback"]]


async def test_a_server_process_without_a_login_says_which_command_to_run(
    server: OAuthState, tmp_path: Path
) -> None:
    async with ServerProcess(server, tmp_path / "store.sqlite3", AUTH_CODE) as vault:
        assert vault.last_error is not None
        assert "python -m vllm_mcp_ext.cli.login vault" in vault.last_error
    assert server.authorizations == []


async def test_step_up_asks_once_for_the_wider_scope(server: OAuthState, tmp_path: Path) -> None:
    server.tool_scopes = {"multiply": "admin"}
    clients = OAuthClients(None, follow_authorization)
    async with Registry(spec(server, AUTH_CODE), clients) as vault:
        result = await vault.call_tool("multiply", {"a": 2, "b": 3})
    assert result.content[0].text == "6"
    assert [a.get("scope") for a in server.authorizations] == ["calc", "calc admin"]


async def test_step_up_stops_at_its_limit(server: OAuthState) -> None:
    server.tool_scopes = {"multiply": "admin"}
    server.grantable = {"calc"}  # never grants admin
    clients = OAuthClients(None, follow_authorization)
    async with Registry(spec(server, {**AUTH_CODE, "max_step_up": 2}), clients) as vault:
        for _ in range(3):  # one step-up per call, two in a row at most
            with pytest.raises(CallFailed, match="error response"):
                await vault.call_tool("multiply", {"a": 2, "b": 3})
        assert len(server.authorizations) == 1 + 2
        assert await add(vault) == "5"  # other calls go on


async def test_a_pre_registered_client_authorizes_with_its_own_id(server: OAuthState) -> None:
    clients = OAuthClients(None, follow_authorization)
    oauth = {**AUTH_CODE, "client_id": "svc", "client_secret": "${SECRET}"}
    async with Registry(spec(server, oauth), clients) as vault:
        assert await add(vault) == "5"
    assert [a["client_id"] for a in server.authorizations] == ["svc"]
    assert [(r["grant"], r["auth"]) for r in server.token_requests] == [
        ("authorization_code", "client_secret_basic")
    ]
    assert not any(c.startswith("dyn-") for c in server.clients)


@pytest.fixture
def every_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG):
        yield caplog


async def test_secrets_and_tokens_never_reach_errors_or_logs(
    server: OAuthState, every_log: pytest.LogCaptureFixture
) -> None:
    wrong = {"client_id": "svc", "client_secret": "${WRONG}"}
    leaky = "wrong-secret-that-the-server-echoes"
    server.echo = True  # the authorization server quotes what it was sent in its error
    async with Registry(spec(server, wrong, {"WRONG": leaky}), OAuthClients()) as vault:
        assert vault.last_error is not None and "invalid_client" in vault.last_error
        assert leaky not in vault.last_error
    async with Registry(spec(server, CLIENT_CREDENTIALS), OAuthClients()) as vault:
        assert await add(vault) == "5"
    assert server.bearer_seen  # the server was shown a token...
    for secret in [leaky, SECRET, *server.bearer_seen]:  # ...which no log record holds
        assert secret not in every_log.text
        assert all(secret not in repr(r.args) for r in every_log.records)


def test_the_oauth_block_reads_secrets_from_the_environment_and_names_a_missing_one() -> None:
    config = parse_oauth(
        {"client_id": "a", "client_secret": "x-${S}-y"}, "mcp.json: server 'v'", {"S": "val"}
    )
    assert (config.grant, config.client_secret, config.token_endpoint_auth_method) == (
        "client_credentials",
        "x-val-y",
        "client_secret_basic",
    )
    assert "val" not in repr(config)
    with pytest.raises(Exception, match=r"oauth'.client_secret: environment variable NOPE is not set"):
        parse_oauth({"client_id": "a", "client_secret": "${NOPE}"}, "mcp.json: server 'v'", {})


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"grant": "client_credentials"}, "needs 'client_id'"),
        ({"client_id": "a", "grant": "client_credentials"}, "needs 'client_secret' or 'private_key'"),
        ({"token_endpoint_auth_method": "private_key_jwt", "client_id": "a"}, "needs 'private_key'"),
        ({"grant": "authorization_code", "client_secret": "s"}, "'client_secret' needs 'client_id'"),
        ({"redirect_uri": "https://example.com/cb"}, "loopback"),
        ({"client_metadata_url": "http://x/c.json"}, "https://"),
        ({"max_step_up": -1}, ">= 0"),
        ({"colour": "red"}, "unknown field 'colour'"),
        ("yes", "must be an object"),
    ],
)
def test_a_bad_oauth_block_is_refused_with_its_field(block: Any, message: str) -> None:
    with pytest.raises(Exception, match=message):
        parse_oauth(block, "mcp.json: server 'v'", {})


async def browse(shown: list[str]) -> str:
    """A person at a browser: opens the URL the login command printed, follows the redirects."""
    async with asyncio.timeout(10):
        while not any("http" in line for line in shown):
            await asyncio.sleep(0.01)
    url = next(line for line in shown if "http" in line).split()[-1]
    async with httpx.AsyncClient() as browser:
        return (await browser.get(url, follow_redirects=True)).text


@pytest.mark.parametrize("deny", [False, True])
async def test_the_login_command_takes_the_redirect_on_loopback_and_stores_the_tokens(
    server: OAuthState, tmp_path: Path, deny: bool
) -> None:
    server.deny = deny
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    target = spec(server, {**AUTH_CODE, "redirect_uri": redirect})
    kept = open_store(str(tmp_path / "store.sqlite3"))
    assert kept is not None
    await kept.open()
    shown: list[str] = []
    authorizer = loopback_authorizer(redirect, timeout=10, show=shown.append)
    try:
        page = asyncio.create_task(browse(shown))
        if deny:
            with pytest.raises(LoginFailed, match="refused: access_denied"):
                await login(Login("vault", target, kept), authorizer)
            assert "Login failed." in await page
            return
        assert await login(Login("vault", target, kept), authorizer) == 4
        assert "Logged in." in await page
        held = await kept.get_credentials(credentials_key("vault", target.url))
    finally:
        await kept.close()
    assert held is not None and held["tokens"]["refresh_token"] in server.refresh
    assert not any(held["tokens"]["access_token"] in line for line in shown)
