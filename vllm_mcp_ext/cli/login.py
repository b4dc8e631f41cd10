"""The operator's one-time login to an MCP server that only offers the authorization-code flow.

    VLLM_MCP_STORE=... python -m vllm_mcp_ext.cli.login LABEL --tool-server mcp.json

It connects to the server labelled ``LABEL`` in the tool-server file (whose ``oauth`` block says
``"grant": "authorization_code"`` or names no secret), discovers its authorization server,
registers a client when none is configured, prints the authorization URL, takes the browser's
redirect on the loopback ``redirect_uri`` of the block (default http://127.0.0.1:33418/callback)
and keeps the tokens in the response store, where every API server process reads them and
refreshes them. Nothing it prints or logs holds a token. ``--force`` forgets held tokens first
(to log in as someone else, or for more scope).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from mcp import ClientSession
from mcp.shared.auth import AuthorizationCodeResult

from vllm_mcp_ext import redact
from vllm_mcp_ext.config import HttpServerSpec, tool_server_config
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import ConfigError, McpExtError
from vllm_mcp_ext.servers import transports
from vllm_mcp_ext.servers.oauth import Authorizer, OAuthClients, credentials_key
from vllm_mcp_ext.servers.session import describe, innermost
from vllm_mcp_ext.store import ResponseStore, open_store

LOGIN_TIMEOUT = 300.0  # seconds to wait for the browser's redirect
_PAGE = b"<!doctype html><title>vllm-mcp-ext</title><p>%s You can close this window.</p>"


class LoginFailed(McpExtError):
    pass


@dataclass(frozen=True)
class Login:
    label: str
    spec: HttpServerSpec
    store: ResponseStore


def loopback_authorizer(
    redirect_uri: str, timeout: float = LOGIN_TIMEOUT, show: Callable[[str], None] = print
) -> Authorizer:
    """Shows the authorization URL, then waits for the browser's redirect to ``redirect_uri``
    (a loopback address) and answers it with a page that says it worked."""
    target = urlsplit(redirect_uri)

    async def authorize(url: str) -> AuthorizationCodeResult:
        arrived: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

        async def on_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            line = (await reader.readline()).decode("latin-1").split()
            path = urlsplit(line[1]) if len(line) > 1 else None
            if path is None or path.path != target.path:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                query = {k: v[0] for k, v in parse_qs(path.query).items()}
                message = b"Login failed." if "error" in query else b"Logged in."
                page = _PAGE % message
                head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(page)}\r\n"
                writer.write(head.encode() + b"Connection: close\r\n\r\n" + page)
                if not arrived.done():
                    arrived.set_result(query)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(on_request, target.hostname, target.port)
        try:
            show(f"Open this URL in a browser to authorize access:\n\n  {url}\n")
            show(f"Waiting for the redirect to {redirect_uri} ...")
            query = await asyncio.wait_for(arrived, timeout)
        except TimeoutError:
            raise LoginFailed(f"no redirect to {redirect_uri} within {timeout:g}s") from None
        finally:
            server.close()
        if "error" in query:
            reason = query.get("error_description") or query["error"]
            raise LoginFailed(f"the authorization server refused: {reason}")
        return AuthorizationCodeResult(
            code=query.get("code", ""), state=query.get("state"), iss=query.get("iss")
        )

    return authorize


def find_server(tool_server: str, label: str) -> HttpServerSpec:
    config = tool_server_config(tool_server)
    for spec in config.servers:
        if spec.label == label:
            if not isinstance(spec, HttpServerSpec) or spec.oauth is None:
                raise ConfigError(f"MCP server {label!r} has no 'oauth' block")
            if spec.oauth.grant != "authorization_code":
                raise ConfigError(f"MCP server {label!r} uses client credentials: it needs no login")
            return spec
    raise ConfigError(f"no MCP server labelled {label!r} in {tool_server}")


async def login(target: Login, authorizer: Authorizer, *, force: bool = False) -> int:
    """Log in to the server and open one session with the tokens; the number of its tools."""
    if force:
        held = await target.store.get_credentials(credentials_key(target.label, target.spec.url)) or {}
        await target.store.put_credentials(
            credentials_key(target.label, target.spec.url), {**held, "tokens": None, "expires_at": None}
        )
    clients = OAuthClients(target.store, authorizer)
    transport = transports.configured(target.spec, clients.auth_for(target.label, target.spec))
    try:
        async with transport.open() as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
    except Exception as exc:  # the transport's task group wraps what the OAuth flow raised
        inner = innermost(exc)
        if isinstance(inner, LoginFailed):
            raise inner from None
        raise
    finally:
        clients.close()
    return len(tools.tools)


async def _main(args: argparse.Namespace) -> int:
    spec = find_server(args.tool_server, args.label)
    store = open_store(args.store or Settings.from_env().store)
    if store is None:
        raise ConfigError("the login keeps its tokens in the response store, and VLLM_MCP_STORE is off")
    await store.open()
    try:
        assert spec.oauth is not None
        authorizer = loopback_authorizer(spec.oauth.redirect_uri, args.timeout)
        count = await login(Login(args.label, spec, store), authorizer, force=args.force)
    finally:
        await store.close()
    print(f"Logged in to MCP server {args.label!r} ({count} tools); the tokens are kept in the {store!r}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vllm_mcp_ext.cli.login", description=__doc__.split("\n")[0]
    )
    parser.add_argument("label", help="the server's label in the tool-server file")
    parser.add_argument("--tool-server", required=True, help="the mcp.json the API server is started with")
    parser.add_argument(
        "--store", help="the response store (default: VLLM_MCP_STORE, else the SQLite default)"
    )
    parser.add_argument(
        "--timeout", type=float, default=LOGIN_TIMEOUT, help="seconds to wait for the browser"
    )
    parser.add_argument("--force", action="store_true", help="forget held tokens and log in again")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    redact.install_log_redaction()
    try:
        return asyncio.run(_main(args))
    except McpExtError as exc:
        print(f"login failed: {exc.message}", file=sys.stderr)
    except Exception as exc:  # the SDK's OAuth errors, transport errors
        print(f"login failed: {describe(exc)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
