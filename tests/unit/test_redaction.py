"""Redaction covers short secrets, Basic credentials and every URL password form; operator URLs
are shown without userinfo, query or fragment (issue 14)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import pytest
from mcp import types

from tests.e2e.servers import remote_mcp
from tests.support.processes import free_port
from vllm_mcp_ext.config import HttpServerSpec
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.redact import MASK, Redactor, display_url, redact_url, secrets_of
from vllm_mcp_ext.servers import ServerConnection
from vllm_mcp_ext.store.postgres import redact_url as store_redact_url


def test_basic_credentials_are_scrubbed_decoded_too() -> None:
    basic = base64.b64encode(b"alice:hunter2-pw").decode()
    redactor = Redactor(secrets_of({"Authorization": f"Basic {basic}"}))
    text = redactor.text(f"sent {basic}; the server said alice:hunter2-pw, so hunter2-pw is wrong")
    assert "hunter2-pw" not in text and basic not in text
    assert text.count(MASK) == 3


def test_short_secrets_are_scrubbed_where_they_stand_alone() -> None:
    redactor = Redactor(secrets_of({"X-Pin": "k9"}))
    assert redactor.text('{"X-Pin": "k9"} and pin=k9') == f'{{"X-Pin": "{MASK}"}} and pin={MASK}'
    assert redactor.text("k99 ok9 are other words") == "k99 ok9 are other words"


def test_results_with_short_secrets_and_numbers_stay_valid() -> None:
    redactor = Redactor(secrets_of({"X-Pin": "12"}))
    result = types.CallToolResult(
        content=[types.TextContent(type="text", text="pin 12")], structured_content={"n": 12, "s": "12"}
    )
    scrubbed = redactor.model(result)
    assert scrubbed.content[0].text == f"pin {MASK}"  # type: ignore[union-attr]
    assert scrubbed.structured_content == {"n": 12, "s": MASK}


@pytest.mark.parametrize(
    ("url", "hidden"),
    [
        ("postgresql://app:s3cret-pw@db:5432/responses", "s3cret-pw"),
        ("postgresql://app:p%40ss%2Fword@db/responses", "p%40ss%2Fword"),
        ("postgresql://db/responses?sslmode=require&password=hunter2", "hunter2"),
        ("postgresql://db/responses?user=app&PassWord=hunter%232", "hunter%232"),
    ],
)
def test_store_urls_lose_every_password_form(url: str, hidden: str) -> None:
    for redacted in (store_redact_url(url), redact_url(url)):
        assert hidden not in redacted
        assert "db" in redacted and "responses" in redacted
    assert "sslmode=require" in redact_url("postgresql://db/r?sslmode=require&password=x1")


def test_operator_urls_are_shown_without_userinfo_query_or_fragment() -> None:
    assert display_url("https://u:pw@mcp.example:8443/mcp?token=abc#f") == "https://mcp.example:8443/mcp"
    assert display_url("http://[::1]:9/sse?key=1") == "http://[::1]:9/sse"
    spec = HttpServerSpec(url="http://bob:pw-SECRET@127.0.0.1:9/mcp?token=tok", transport="streamable_http")
    assert spec.provisional_label == "127.0.0.1:9"


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    with remote_mcp.running_in_thread(free_port()) as url:
        yield url


@pytest.mark.parametrize("transport", ["sse", "streamable_http"])
async def test_configured_server_errors_never_show_url_credentials(hostile: str, transport: str) -> None:
    url = f"{hostile.replace('://', '://bob:pw-SECRET-1@')}/missing/{transport}?token=tok-SECRET-2#frag"
    connection = ServerConnection(HttpServerSpec(url=url, transport=transport), Settings(connect_timeout=3))
    connection.start()
    try:
        await asyncio.wait_for(connection.wait_first_attempt(), 10)
        snapshot = connection.snapshot()
    finally:
        await connection.stop()
    assert snapshot.last_error, snapshot
    shown = f"{snapshot.label} {snapshot.last_error}"
    assert "SECRET" not in shown and "bob" not in shown and "frag" not in shown, shown
