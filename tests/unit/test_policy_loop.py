"""Operator policy through the plugin's real HTTP door in process (tests/support/asgi.py): a real
stdio server whose tools carry MCP annotations, a scripted engine, the `openai` SDK as client."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.support.asgi import BASE_URL, httpx2_client, plugin_app
from tests.support.scripted import ScriptedTurns, tool_call
from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.config.policy import ApprovalRules, Policy
from vllm_mcp_ext.policy.guardrails import Arguments, CallInfo, Guardrail, Refuse
from vllm_mcp_ext.types.parts import TextDelta

ROOT = Path(__file__).resolve().parents[2]
NOTES = StdioServerSpec("notes", sys.executable, ("-m", "tests.unit.servers.annotated"), cwd=str(ROOT))
UNSET: list[Any] = [{"type": "mcp", "server_label": "notes"}]  # no require_approval
RULES = ApprovalRules({"readOnly": "never", "destructive": "always", "openWorld": "always", "other": "never"})
HOOKS = (f"{__name__}:NoDeletes", "examples.guardrails.redact_email:RedactEmails")


@asynccontextmanager
async def door(
    engine: ScriptedTurns, tmp_path: Path, policy: Policy, keys: tuple[str, ...] = ()
) -> AsyncIterator[httpx.AsyncClient]:
    rules = policy.approvals.merged(None) if policy.approvals else None
    async with (
        plugin_app(
            engine, (replace(NOTES, approvals=rules),), tmp_path / "r.db", api_keys=keys, policy=policy
        ) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http,
    ):
        http.app = app  # type: ignore[attr-defined]  # for httpx2_client (the anthropic SDK)
        yield http


def sdk(http: httpx.AsyncClient, key: str = "-") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{BASE_URL}/v1", api_key=key, http_client=http, max_retries=0)


class NoDeletes(Guardrail):
    async def before_call(self, call: CallInfo, arguments: Arguments) -> Refuse | None:
        return Refuse("notes are never deleted here") if call.tool == "delete_notes" else None


async def test_a_request_without_require_approval_asks_before_a_destructive_call_not_a_read(
    tmp_path: Path,
) -> None:
    engine = ScriptedTurns(
        [tool_call("read_notes", "{}"), tool_call("delete_notes", "{}", index=0), [TextDelta("Done.")]]
    )
    async with door(engine, tmp_path, Policy(approvals=RULES)) as http:
        first = await sdk(http).responses.create(model="scripted", input="read", tools=UNSET)
        # the read ran without asking; the model then asked to delete: that waits for the user
        assert [i.type for i in first.output] == ["mcp_list_tools", "mcp_call", "mcp_approval_request"]
        assert first.output[1].output == "buy milk"
        assert first.output[2].name == "delete_notes"


async def test_a_request_may_not_loosen_what_the_operator_asks_for(tmp_path: Path) -> None:
    engine = ScriptedTurns([tool_call("delete_notes", "{}"), [TextDelta("Done.")]])
    never: list[Any] = [{**UNSET[0], "require_approval": "never"}]
    async with door(engine, tmp_path, Policy(approvals=RULES)) as http:
        r = await sdk(http).responses.create(model="scripted", input="delete", tools=never)
    assert [i.type for i in r.output] == ["mcp_list_tools", "mcp_approval_request"]


async def test_where_the_operator_allows_it_a_request_loosens(tmp_path: Path) -> None:
    engine = ScriptedTurns([tool_call("delete_notes", "{}"), [TextDelta("Done.")]])
    never: list[Any] = [{**UNSET[0], "require_approval": "never"}]
    loosen = ApprovalRules(RULES.asks, frozenset({"destructive"}))
    async with door(engine, tmp_path, Policy(approvals=loosen)) as http:
        r = await sdk(http).responses.create(model="scripted", input="delete", tools=never)
    assert [i.type for i in r.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert r.output[1].output == "deleted"


async def test_a_refusing_hook_fails_the_call_and_the_model_is_told_why(tmp_path: Path) -> None:
    engine = ScriptedTurns([tool_call("delete_notes", "{}"), [TextDelta("I may not.")]])
    never: list[Any] = [{**UNSET[0], "require_approval": "never"}]
    async with door(engine, tmp_path, Policy(guardrails=HOOKS)) as http:
        r = await sdk(http).responses.create(model="scripted", input="delete", tools=never)
    call = r.output[1]
    assert (call.type, call.status) == ("mcp_call", "failed")
    assert "notes are never deleted here" in str(call.error)
    assert "Refused by policy: notes are never deleted here" in engine.seen[1][-1]["content"]


async def test_a_redacting_hook_changes_the_result_and_the_answer_streamed_or_not(tmp_path: Path) -> None:
    script = [tool_call("contact", "{}"), [TextDelta("Mail ada."), TextDelta("lovelace@example.org now.")]]
    never: list[Any] = [{**UNSET[0], "require_approval": "never"}]
    async with door(ScriptedTurns(list(script) * 2), tmp_path, Policy(guardrails=HOOKS)) as http:
        r = await sdk(http).responses.create(model="scripted", input="who?", tools=never)
        async with sdk(http).responses.stream(model="scripted", input="who?", tools=never) as stream:
            deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            streamed = await stream.get_final_response()
    assert r.output[1].output == "Write to [email] for details."
    assert r.output_text == "Mail [email] now."
    assert "".join(deltas) == streamed.output_text == "Mail [email] now."  # never the address
    assert [i.type for i in streamed.output] == ["mcp_list_tools", "mcp_call", "message"]


async def test_the_audit_record_is_kept_per_key(tmp_path: Path) -> None:
    engine = ScriptedTurns(
        [
            tool_call("read_notes", "{}"),
            [TextDelta("a")],
            tool_call("fetch", '{"url": "x"}'),
            [TextDelta("b")],
        ]
    )
    never: list[Any] = [{**UNSET[0], "require_approval": "never"}]
    async with door(engine, tmp_path, Policy(), keys=("key-a", "key-b")) as http:
        await sdk(http, "key-a").responses.create(model="scripted", input="1", tools=never)
        await sdk(http, "key-b").responses.create(model="scripted", input="2", tools=never)
        seen_a = (await http.get("/v1/mcp/audit", headers={"Authorization": "Bearer key-a"})).json()["data"]
        seen_b = (await http.get("/v1/mcp/audit", headers={"Authorization": "Bearer key-b"})).json()["data"]
        anonymous = await http.get("/v1/mcp/audit")
    assert [(r["tool"], r["outcome"], r["server_label"]) for r in seen_a] == [("read_notes", "ok", "notes")]
    assert [(r["tool"], r["outcome"]) for r in seen_b] == [("fetch", "ok")]
    assert seen_a[0]["caller"] != seen_b[0]["caller"] and "key-a" not in str(seen_a)
    assert seen_a[0]["duration_ms"] > 0
    assert anonymous.status_code == 401


async def test_a_response_past_its_time_bound_ends_incomplete_and_its_call_is_cancelled(
    tmp_path: Path,
) -> None:
    engine = ScriptedTurns([tool_call("slow", '{"seconds": 30}'), [TextDelta("never")]])
    never: list[Any] = [{**UNSET[0], "require_approval": "never"}]
    async with door(engine, tmp_path, Policy(max_response_seconds=1.5)) as http:
        r = await sdk(http).responses.create(model="scripted", input="slow", tools=never)
        audit = (await http.get("/v1/mcp/audit")).json()["data"]
    assert (r.status, r.incomplete_details.reason if r.incomplete_details else None) == (
        "incomplete",
        "max_response_time",
    )
    call = r.output[1]
    assert call.status == "failed" and "1.5s time limit" in str(call.error)
    assert [(a["tool"], a["outcome"]) for a in audit] == [("slow", "cancelled")]


async def test_an_unknown_label_names_only_the_servers_the_key_may_use(tmp_path: Path) -> None:
    engine = ScriptedTurns([])
    permissions = {"key-a": {"servers": ["notes"]}, "key-b": {"servers": []}}
    async with (
        plugin_app(
            engine,
            (NOTES, replace(NOTES, label="secret")),
            tmp_path / "r.db",
            api_keys=("key-a", "key-b"),
            permissions=permissions,
        ) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http,
    ):
        for key, shown in (("key-a", "notes"), ("key-b", "none")):
            with pytest.raises(openai.BadRequestError) as err:
                await sdk(http, key).responses.create(
                    model="scripted", input="x", tools=[{"type": "mcp", "server_label": "nope"}]
                )
            assert (
                f"configured MCP servers: {shown}" in err.value.message and "secret" not in err.value.message
            )
            listing = await http.get("/v1/mcp/servers/nope/tools", headers={"Authorization": f"Bearer {key}"})
            assert listing.status_code == 404 and "secret" not in listing.text


async def test_on_anthropic_messages_a_call_the_operator_wants_approved_is_refused_not_left_hanging(
    tmp_path: Path,
) -> None:
    engine = ScriptedTurns([tool_call("delete_notes", "{}"), [TextDelta("I could not.")]])
    async with door(engine, tmp_path, Policy(approvals=RULES)) as http:
        claude = anthropic.AsyncAnthropic(
            base_url=BASE_URL, api_key="-", http_client=httpx2_client(http), max_retries=0
        )
        m = await claude.beta.messages.create(
            model="scripted",
            max_tokens=64,
            messages=[{"role": "user", "content": "delete"}],
            mcp_servers=[{"type": "url", "url": "tool-server://notes", "name": "notes"}],
            tools=[{"type": "mcp_toolset", "mcp_server_name": "notes"}],
            betas=["mcp-client-2025-11-20"],
        )
    kinds = [(b.type, getattr(b, "is_error", None)) for b in m.content]
    assert kinds == [("mcp_tool_use", None), ("mcp_tool_result", True), ("text", None)]
    assert "cannot ask for" in str(m.content[1].content)
    assert m.content[2].text == "I could not." and m.stop_reason == "end_turn"


class SlowWriter(ScriptedTurns):
    """A model that writes one word a second and never stops by itself."""

    async def run_turn(self, turn: Any) -> AsyncIterator[Any]:
        self.seen.append([dict(m) for m in turn.messages])
        for _ in range(60):
            yield TextDelta("word ")
            await asyncio.sleep(1)


async def test_the_time_bound_cuts_a_turn_being_generated(tmp_path: Path) -> None:
    async with door(SlowWriter([]), tmp_path, Policy(max_response_seconds=2)) as http:
        started = asyncio.get_running_loop().time()
        r = await sdk(http).responses.create(model="scripted", input="talk")
        took = asyncio.get_running_loop().time() - started
    assert (r.status, r.incomplete_details.reason if r.incomplete_details else None) == (
        "incomplete",
        "max_response_time",
    )
    assert r.output_text.startswith("word") and took < 30
