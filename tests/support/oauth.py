"""A browser for the authorization-code flow in tests: the test authorization servers (the
conformance suite's, tests/support/oauth_server.py) approve at once, so an authorization is a GET
of the authorization URL and a look at where its redirect points."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from mcp.shared.auth import AuthorizationCodeResult


async def follow_authorization(url: str) -> AuthorizationCodeResult:
    """The code, state and issuer of the redirect that answers ``url`` (the redirect itself is
    not followed: nothing listens there in a server process)."""
    async with httpx.AsyncClient() as client:
        answer = await client.get(url, follow_redirects=False)
    if answer.status_code not in (301, 302, 303, 307, 308):
        raise RuntimeError(f"authorization answered HTTP {answer.status_code}: {answer.text[:200]}")
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    first = {key: values[0] for key, values in query.items()}
    return AuthorizationCodeResult(code=first.get("code", ""), state=first.get("state"), iss=first.get("iss"))
