"""``POST /v1/responses/compact`` in process (tests/support/asgi.py): the plugin's real route and
store, a scripted engine, and the real ``openai`` SDK's ``client.responses.compact``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.asgi import BASE_URL, CALC, plugin_app
from tests.support.scripted import ScriptedTurns, play, tool_call
from vllm_mcp_ext.engine.fit import PromptSize
from vllm_mcp_ext.loop.compaction import COMPACT_PROMPT, decode, summary_message
from vllm_mcp_ext.types.parts import TextDelta

TOOLS: list[Any] = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
SUMMARY = "The user asked for 2+3; add returned 5."


@pytest.fixture(scope="module")
async def http(
    scripted: ScriptedTurns, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """The plugin's routes over `scripted`, the calculator, a store and two API keys."""
    store = tmp_path_factory.mktemp("compact") / "responses.sqlite3"
    async with (
        plugin_app(scripted, (CALC,), store, api_keys=("key-a", "key-b")) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client,
    ):
        yield client


def sdk(http: httpx.AsyncClient, key: str = "key-a") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{BASE_URL}/v1", api_key=key, http_client=http, max_retries=0)


@pytest.fixture
def client(http: httpx.AsyncClient, engine: ScriptedTurns) -> openai.AsyncOpenAI:
    return sdk(http)


async def test_the_model_summarizes_the_input_into_the_user_messages_and_a_compaction_item(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    play(engine, [TextDelta(SUMMARY)])
    compacted = await client.responses.compact(
        model="scripted",
        instructions="Be brief.",
        input=[
            {"role": "developer", "content": "Use the calculator."},
            {"role": "user", "content": "2+3?"},
            {"role": "assistant", "content": "5."},
            {"role": "user", "content": [{"type": "input_text", "text": "And 4+4?"}]},
        ],
    )
    assert compacted.object == "response.compaction" and compacted.id.startswith("resp_")
    assert [(i.type, getattr(i, "role", None)) for i in compacted.output] == [
        ("message", "user"),
        ("message", "user"),
        ("compaction", None),
    ]
    texts = [i.content[0].text for i in compacted.output[:2]]  # type: ignore[index, union-attr]
    assert texts == ["2+3?", "And 4+4?"]
    item = compacted.output[2]
    assert item.type == "compaction" and item.id.startswith("cmp_")
    assert decode(item.encrypted_content) == SUMMARY
    # the summary turn: the whole conversation with the instructions, then the ask; no tools
    summarizing = engine.seen[-1]
    assert summarizing[0] == {"role": "system", "content": "Be brief."}
    assert summarizing[-1] == {"role": "user", "content": COMPACT_PROMPT}
    assert len(summarizing) == 6 and engine.choices[-1] == "none"
    usage = compacted.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (10, 5, 15)
    assert usage.input_tokens_details.cached_tokens == 4


async def test_a_stored_response_is_compacted_by_its_id_and_the_result_continues_it(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    first = await client.responses.create(model="scripted", input="2+3?", tools=TOOLS)
    assert first.output_text == "It is 5."
    play(engine, [TextDelta(SUMMARY)], [TextDelta("Then 9.")])
    compacted = await client.responses.compact(model="scripted", previous_response_id=first.id)
    summarizing = engine.seen[-1]
    assert [m["role"] for m in summarizing] == ["user", "assistant", "tool", "assistant", "user"]
    assert summarizing[2]["content"] == "5"  # the tool result the model summarizes
    assert [i.type for i in compacted.output] == ["message", "compaction"]
    # the SDK's output items, sent back as they came, then the next question
    nxt = await client.responses.create(
        model="scripted", input=[*compacted.output, {"role": "user", "content": "Add 4."}]
    )
    assert nxt.output_text == "Then 9."
    assert engine.seen[-1] == [
        {"role": "user", "content": "2+3?"},
        summary_message(SUMMARY),
        {"role": "user", "content": "Add 4."},
    ]


async def test_input_after_a_previous_response_is_compacted_with_it(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    first = await client.responses.create(model="scripted", input="2+3?", tools=TOOLS)
    play(engine, [TextDelta(SUMMARY)])
    compacted = await client.responses.compact(
        model="scripted", previous_response_id=first.id, input="Add 4."
    )
    texts = [i.content[0].text for i in compacted.output if i.type == "message"]  # type: ignore[index, union-attr]
    assert texts == ["2+3?", "Add 4."]


async def test_an_earlier_compaction_is_summarized_again_not_kept(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    play(engine, [TextDelta(SUMMARY)], [TextDelta("Both sums.")])
    once = await client.responses.compact(model="scripted", input="2+3?")
    twice = await client.responses.compact(
        model="scripted", input=[*once.output, {"role": "user", "content": "4+4?"}]
    )
    assert engine.seen[-1][1] == summary_message(SUMMARY)  # the model saw the first summary
    assert [i.type for i in twice.output] == ["message", "message", "compaction"]
    assert decode(twice.output[2].encrypted_content) == "Both sums."  # type: ignore[union-attr]


async def test_another_keys_stored_response_answers_as_one_that_does_not_exist(
    http: httpx.AsyncClient, engine: ScriptedTurns
) -> None:
    first = await sdk(http, "key-a").responses.create(model="scripted", input="2+3?", tools=TOOLS)
    seen = len(engine.seen)
    errors = []
    for response_id in (first.id, "resp_nowhere"):  # as POST /v1/responses answers both
        with pytest.raises(openai.BadRequestError) as info:
            await sdk(http, "key-b").responses.compact(model="scripted", previous_response_id=response_id)
        assert isinstance(info.value.body, dict)
        errors.append((info.value.body["code"], info.value.body["param"]))
        assert response_id in info.value.body["message"]
    assert errors == [("previous_response_not_found", "previous_response_id")] * 2
    assert len(engine.seen) == seen  # the model never ran
    with pytest.raises(openai.AuthenticationError):
        await sdk(http, "key-c").responses.compact(model="scripted", input="hi")


async def test_a_model_this_server_does_not_serve_is_openais_404(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.responses.compact(model="gpt-5", input="hi")
    assert isinstance(info.value.body, dict)
    assert (info.value.body["code"], info.value.body["param"]) == ("model_not_found", "model")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi"}, "model"),
        ({"model": "scripted"}, "input"),
        ({"model": "scripted", "input": []}, "input"),
        ({"model": "scripted", "input": [{"type": "reasoning", "summary": []}]}, "input"),
        ({"model": "scripted", "input": [{"role": "robot", "content": "hi"}]}, "input[0].role"),
        ({"model": "scripted", "input": "hi", "tools": TOOLS}, "tools"),
        ({"model": "scripted", "input": "hi", "stream": True}, "stream"),
        ({"model": "scripted", "input": [{"type": "compaction", "encrypted_content": "x"}]}, "input[0]"),
    ],
)
async def test_bad_input_is_a_400_in_openais_shape_and_the_model_never_runs(
    http: httpx.AsyncClient, engine: ScriptedTurns, body: dict[str, Any], param: str
) -> None:
    answer = await http.post("/v1/responses/compact", json=body, headers={"Authorization": "Bearer key-a"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]
    assert engine.seen == []


async def test_the_fields_the_sdk_sends_that_change_nothing_here_are_accepted(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    play(engine, [TextDelta(SUMMARY)])
    compacted = await client.responses.compact(
        model="scripted",
        input="2+3?",
        prompt_cache_key="k",
        service_tier="auto",
        safety_identifier="user-1",
        prompt_cache_retention="24h",
    )
    assert [i.type for i in compacted.output] == ["message", "compaction"]


async def test_a_compact_answer_is_not_stored(client: openai.AsyncOpenAI, engine: ScriptedTurns) -> None:
    play(engine, [TextDelta(SUMMARY)])
    compacted = await client.responses.compact(model="scripted", input="2+3?")
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(compacted.id)


async def test_the_wire_body_has_no_nulls_where_open_responses_forbids_them(
    http: httpx.AsyncClient, engine: ScriptedTurns
) -> None:
    play(engine, [TextDelta(SUMMARY)])
    answer = await http.post(
        "/v1/responses/compact",
        json={"model": "scripted", "input": "2+3?"},
        headers={"Authorization": "Bearer key-a"},
    )
    body = answer.json()
    assert sorted(body) == ["created_at", "id", "object", "output", "usage"]
    assert body["output"][0] == {
        "id": body["output"][0]["id"],
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": "2+3?"}],
    }
    assert sorted(body["output"][1]) == ["encrypted_content", "id", "type"]


async def test_a_call_in_the_conversation_is_summarized_too(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    play(engine, tool_call("add", '{"a": 2, "b": 3}'), [TextDelta("It is 5.")], [TextDelta(SUMMARY)])
    first = await client.responses.create(model="scripted", input="2+3?", tools=TOOLS, store=False)
    compacted = await client.responses.compact(
        model="scripted", input=[{"role": "user", "content": "2+3?"}, *first.output]
    )
    assert [m["role"] for m in engine.seen[-1]] == ["user", "assistant", "tool", "assistant", "user"]
    assert [i.type for i in compacted.output] == ["message", "compaction"]


async def test_mcp_engine_compacts_in_process_with_the_sdks_type(engine: ScriptedTurns) -> None:
    from openai.types.responses import CompactedResponse

    from vllm_mcp_ext.python_api import McpEngine

    play(engine, [TextDelta(SUMMARY)])
    async with plugin_app(engine) as app:
        mcp = McpEngine("scripted")
        mcp._runtime = app.state.vllm_mcp_ext  # the app's runtime stands in for a started engine
        compacted = await mcp.responses.compact(
            model="scripted", input="2+3?", extra_body={"instructions": "Be brief."}
        )
    assert isinstance(compacted, CompactedResponse) and compacted.object == "response.compaction"
    assert [i.type for i in compacted.output] == ["message", "compaction"]
    assert decode(compacted.output[1].encrypted_content) == SUMMARY  # type: ignore[union-attr]
    assert engine.seen[-1][0] == {"role": "system", "content": "Be brief."}


class MeasuringTurns(ScriptedTurns):
    """A scripted engine that counts tokens: 100 per message, in a 250-token window."""

    context_window = 250

    def __init__(self) -> None:
        super().__init__([[TextDelta(SUMMARY)]])
        self.measured: list[list[dict[str, Any]]] = []

    async def prompt_size(self, turn: Any) -> PromptSize:
        self.measured.append(list(turn.messages))
        return PromptSize(100 * len(turn.messages), 0, self.context_window)

    def cut_to_tokens(self, text: str, budget: int) -> None:
        return None

    def count_tokens(self, text: str) -> int:
        return 100


async def test_a_conversation_whose_summary_turn_cannot_fit_is_a_400_before_the_model_runs() -> None:
    engine = MeasuringTurns()
    async with (
        plugin_app(engine) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http,
    ):
        fits = await sdk(http).responses.compact(model="scripted", input="2+3?")  # 2 x 100 tokens
        assert [i.type for i in fits.output] == ["message", "compaction"]
        assert engine.measured == [
            [{"role": "user", "content": "2+3?"}, {"role": "user", "content": COMPACT_PROMPT}]
        ]
        with pytest.raises(openai.BadRequestError) as info:
            await sdk(http).responses.compact(model="scripted", input=[{"role": "user", "content": "a"}] * 2)
    body = info.value.body
    assert isinstance(body, dict) and (body["code"], body["param"]) == ("context_length_exceeded", "input")
    assert "300 tokens" in body["message"] and "context window is 250 tokens" in body["message"]
    assert len(engine.seen) == 1  # the summary that fit; the other never ran
