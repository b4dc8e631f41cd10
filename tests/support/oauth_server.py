"""An OAuth 2.1 authorization server and the MCP server it guards, in one Starlette app, for tests.

* ``/as``: the authorization server. Metadata at ``/.well-known/oauth-authorization-server/as``;
  dynamic client registration; ``/as/authorize`` approves at once (PKCE S256 required) and
  redirects with a code, or with ``error=access_denied`` while `OAuthState.deny` is set;
  ``/as/token`` grants ``authorization_code`` (PKCE checked), ``refresh_token`` (rotated) and
  ``client_credentials``, with ``client_secret_basic``, ``client_secret_post``,
  ``private_key_jwt`` (checked against the client's public key) or no client authentication.
* ``/mcp``: the example calculator's tools as an MCP server that wants a bearer token from
  this authorization server: 401 with ``WWW-Authenticate: Bearer resource_metadata=...``
  without one, 403 ``insufficient_scope`` for a tool whose scope (`OAuthState.tool_scopes`) the
  token lacks. Its protected-resource metadata is at ``/.well-known/oauth-protected-resource/mcp``.

`OAuthState` records what happened (token requests by grant and client authentication, 401s,
authorizations) and lets a test expire or revoke tokens. ``python -m tests.support.oauth_server
--port N`` serves it (the e2e suite's protected server).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.support.scripts import load_example_server

# The pre-registered client the e2e suite's tool-server file names (its secret via ${VAR}).
CLIENT_ID = "vllm-test-client"
CLIENT_SECRET = "s3cret-client-value-for-tests"
SECRET_VAR = "VLLM_MCP_TEST_OAUTH_SECRET"


@dataclass
class Client:
    client_id: str
    secret: str | None
    method: str  # client_secret_basic, client_secret_post, private_key_jwt, none
    public_key: str | None = None
    redirect_uris: list[str] = field(default_factory=list)


@dataclass
class Grant:
    client_id: str
    scope: str
    expires_at: float


@dataclass
class OAuthState:
    base_url: str = ""
    expires_in: int = 3600  # lifetime of the access tokens it issues
    deny: bool = False  # authorizations are refused
    echo: bool = False  # a token error quotes the client authentication it got (a careless server)
    scopes_supported: tuple[str, ...] = ("calc",)
    tool_scopes: dict[str, str] = field(default_factory=dict)  # tool -> scope it needs
    grantable: set[str] | None = None  # scopes it grants at most (None: all asked for)
    clients: dict[str, Client] = field(default_factory=dict)
    access: dict[str, Grant] = field(default_factory=dict)
    refresh: dict[str, Grant] = field(default_factory=dict)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, Any]] = field(default_factory=list)  # grant, auth, resource, scope
    authorizations: list[dict[str, str]] = field(default_factory=list)
    unauthorized: int = 0  # 401s the MCP server sent
    bearer_seen: list[str] = field(default_factory=list)  # tokens the MCP server was shown

    def revoke_access(self) -> None:
        self.access.clear()

    def expire_access(self) -> None:
        for grant in self.access.values():
            grant.expires_at = 0

    @property
    def grants(self) -> list[str]:
        return [r["grant"] for r in self.token_requests]


def oauth_app(state: OAuthState) -> Starlette:
    """The authorization server and the protected calculator; ``state.base_url`` must be set to
    where it is served before the first request. Serve it with its lifespan on."""
    server = _calculator()
    mcp_app = server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/.well-known/oauth-protected-resource/mcp", lambda r: _resource_metadata(state)),
            Route("/.well-known/oauth-authorization-server/as", lambda r: _server_metadata(state)),
            Route("/as/register", _register(state), methods=["POST"]),
            Route("/as/authorize", _authorize(state)),
            Route("/as/token", _token(state), methods=["POST"]),
            Route("/state", lambda r: JSONResponse(_seen(state))),
            Mount("/", app=_Guard(state, mcp_app)),
        ],
    )


def _seen(state: OAuthState) -> dict[str, Any]:
    """What ``GET /state`` shows a test about a server in another process."""
    return {
        "token_requests": state.token_requests,
        "authorizations": len(state.authorizations),
        "unauthorized": state.unauthorized,
        "bearer_seen": state.bearer_seen,
        "refresh_tokens": list(state.refresh),
    }


def _resource_metadata(state: OAuthState) -> Response:
    return JSONResponse(
        {
            "resource": f"{state.base_url}/mcp",
            "authorization_servers": [f"{state.base_url}/as"],
            "scopes_supported": list(state.scopes_supported),
        }
    )


def _server_metadata(state: OAuthState) -> Response:
    base = f"{state.base_url}/as"
    return JSONResponse(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "registration_endpoint": f"{base}/register",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "none",
            ],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": list(state.scopes_supported),
        }
    )


def _register(state: OAuthState) -> Any:
    async def register(request: Request) -> Response:
        body = await request.json()
        method = body.get("token_endpoint_auth_method") or "client_secret_basic"
        client = Client(
            client_id=f"dyn-{secrets.token_hex(4)}",
            secret=None if method == "none" else secrets.token_urlsafe(16),
            method=method,
            redirect_uris=list(body.get("redirect_uris") or []),
        )
        state.clients[client.client_id] = client
        answer = {**body, "client_id": client.client_id, "token_endpoint_auth_method": method}
        if client.secret:
            answer["client_secret"] = client.secret
        return JSONResponse(answer, status_code=201)

    return register


def _authorize(state: OAuthState) -> Any:
    async def authorize(request: Request) -> Response:
        q = request.query_params
        client = state.clients.get(q.get("client_id", ""))
        if client is None or q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        state.authorizations.append(dict(q))
        redirect = q["redirect_uri"]
        if state.deny:
            query = {"error": "access_denied", "state": q.get("state", "")}
        else:
            code = secrets.token_urlsafe(16)
            state.codes[code] = {
                "client_id": client.client_id,
                "challenge": q["code_challenge"],
                "redirect_uri": redirect,
                "scope": _granted(state, q.get("scope", "")),
            }
            query = {"code": code, "state": q.get("state", "")}
        return RedirectResponse(f"{redirect}?{urlencode(query)}", status_code=302)

    return authorize


def _granted(state: OAuthState, asked: str) -> str:
    wanted = asked.split()
    if state.grantable is not None:
        wanted = [s for s in wanted if s in state.grantable]
    return " ".join(wanted)


def _token(state: OAuthState) -> Any:
    async def token(request: Request) -> Response:
        form = dict(await request.form())
        client, how = _authenticate(state, request, form)
        record = {"grant": form.get("grant_type"), "auth": how, "resource": form.get("resource")}
        state.token_requests.append({**record, "scope": form.get("scope")})
        if client is None:
            sent = request.headers.get("authorization", "") + form.get("client_secret", "")
            if sent.startswith("Basic "):
                sent = base64.b64decode(sent[6:]).decode()
            described = {"error_description": f"bad credentials {sent}"} if state.echo else {}
            return JSONResponse({"error": "invalid_client", **described}, status_code=401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            code = state.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
            if (
                code is None
                or code["client_id"] != client.client_id
                or challenge.decode() != code["challenge"]
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return _issue(state, client.client_id, code["scope"], refresh=True)
        if grant == "refresh_token":
            held = state.refresh.pop(form.get("refresh_token", ""), None)
            if held is None or held.client_id != client.client_id:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return _issue(state, client.client_id, held.scope, refresh=True)
        if grant == "client_credentials":
            return _issue(state, client.client_id, _granted(state, form.get("scope", "")), refresh=False)
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

    return token


def _authenticate(state: OAuthState, request: Request, form: dict[str, Any]) -> tuple[Client | None, str]:
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        client = state.clients.get(client_id)
        ok = client is not None and client.secret == secret and client.method == "client_secret_basic"
        return (client if ok else None), "client_secret_basic"
    if "client_assertion" in form:
        try:
            claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
            client = state.clients.get(claims.get("iss", ""))
            if client is None or client.public_key is None:
                return None, "private_key_jwt"
            jwt.decode(
                form["client_assertion"],
                client.public_key,
                algorithms=["RS256", "ES256"],
                audience=f"{state.base_url}/as",
            )
        except jwt.PyJWTError:
            return None, "private_key_jwt"
        return client, "private_key_jwt"
    client = state.clients.get(form.get("client_id", ""))
    if "client_secret" in form:
        ok = (
            client is not None
            and client.secret == form["client_secret"]
            and client.method == "client_secret_post"
        )
        return (client if ok else None), "client_secret_post"
    return (client if client is not None and client.method == "none" else None), "none"


def _issue(state: OAuthState, client_id: str, scope: str, *, refresh: bool) -> Response:
    access = f"at-{secrets.token_urlsafe(12)}"
    state.access[access] = Grant(client_id, scope, time.time() + state.expires_in)
    body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": state.expires_in}
    if scope:
        body["scope"] = scope
    if refresh:
        token = f"rt-{secrets.token_urlsafe(12)}"
        state.refresh[token] = Grant(client_id, scope, 0)
        body["refresh_token"] = token
    return JSONResponse(body)


class _Guard:
    """Bearer tokens of this authorization server in front of the MCP app."""

    def __init__(self, state: OAuthState, app: ASGIApp):
        self.state, self.app = state, app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        refusal = self._refusal(Request(scope), body)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _refusal(self, request: Request, body: bytes) -> Response | None:
        state = self.state
        metadata = f'resource_metadata="{state.base_url}/.well-known/oauth-protected-resource/mcp"'
        header = request.headers.get("authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        grant = state.access.get(token)
        if token:
            state.bearer_seen.append(token)
        if grant is None or grant.expires_at < time.time():
            state.unauthorized += 1
            error = ', error="invalid_token"' if token else ""
            return JSONResponse(
                {"error": "invalid_token"},
                status_code=401,
                headers={"WWW-Authenticate": f"Bearer {metadata}{error}"},
            )
        needed = _needed_scope(state, body)
        if needed and needed not in grant.scope.split():
            challenge = f'Bearer error="insufficient_scope", scope="{" ".join([*grant.scope.split(), needed])}", {metadata}'
            return JSONResponse(
                {"error": "insufficient_scope"}, status_code=403, headers={"WWW-Authenticate": challenge}
            )
        return None


def _needed_scope(state: OAuthState, body: bytes) -> str | None:
    try:
        message = json.loads(body or b"{}")
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return None
    return state.tool_scopes.get((message.get("params") or {}).get("name", ""))


def _calculator() -> MCPServer:
    """The example calculator's tools (names, descriptions, schemas: what the tiny model knows),
    in a server of its own; its ``crash`` fails the call instead of ending this process."""
    calc = load_example_server("calc")
    server = MCPServer("vault")
    for fn in (calc.add, calc.multiply, calc.divide):
        server.add_tool(fn, description=_DESCRIPTIONS[fn.__name__], annotations=calc.READ_ONLY)

    def crash() -> str:
        raise ToolError("not here")

    server.add_tool(crash, description=_DESCRIPTIONS["crash"])
    return server


_DESCRIPTIONS = {
    "add": "Add two integers.",
    "multiply": "Multiply two integers.",
    "divide": "Divide a by b.",
    "crash": "Stop the calculator process (for fault tests).",
}


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    state = OAuthState(base_url=f"http://127.0.0.1:{args.port}")
    state.clients[CLIENT_ID] = Client(CLIENT_ID, CLIENT_SECRET, "client_secret_basic")
    uvicorn.run(oauth_app(state), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
