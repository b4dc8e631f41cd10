"""Clear limits end to end (the session's vLLM server, 2,048-token context): a first turn that
cannot fit is a 400 in each door's own shape with the token counts, streamed or not, before any
event; spent max_tool_calls let the model answer without tools; a turn cut at its token limit
shows no tool-call markup as text."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

pytestmark = pytest.mark.e2e

CALC: Any = {"type": "mcp", "server_label": "calc", "require_approval": "never"}
TOO_LONG = "Please add these numbers: " + " ".join(str(n) for n in range(2500))
BETA = ["mcp-client-2025-11-20"]


def assert_counts(message: str) -> None:
    assert "The prompt is " in message and " of them the definitions of " in message
    assert "context window is 2048 tokens" in message


@pytest.mark.parametrize("stream", [False, True])
def test_a_responses_first_turn_past_the_window_is_a_400_with_the_counts(
    client: openai.OpenAI, stream: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="tiny", input=TOO_LONG, tools=[CALC], stream=stream)
    error = info.value.body
    assert isinstance(error, dict) and (error["code"], error["param"]) == ("context_length_exceeded", "input")
    assert_counts(error["message"])


def test_a_chat_first_turn_past_the_window_is_a_400_with_the_counts(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": TOO_LONG}], tools=[CALC], stream=True
        )
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "context_length_exceeded"
    assert_counts(error["message"])


def test_a_messages_first_turn_past_the_window_is_an_anthropic_400(vllm_server: str) -> None:
    claude = anthropic.Anthropic(base_url=vllm_server, api_key="unused", max_retries=0, timeout=120)
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.beta.messages.create(
            model="tiny",
            max_tokens=50,
            messages=[{"role": "user", "content": TOO_LONG}],
            mcp_servers=[{"type": "url", "url": "tool-server://calc", "name": "calc"}],
            tools=[{"type": "mcp_toolset", "mcp_server_name": "calc"}],
            betas=BETA,
        )
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert_counts(body["error"]["message"])


def test_truncation_auto_still_answers_a_long_first_turn(client: openai.OpenAI) -> None:
    # one user message cannot be dropped: it is still the client's to shorten
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="tiny", input=TOO_LONG, tools=[CALC], truncation="auto")


def test_spent_max_tool_calls_let_the_model_answer_without_tools(client: openai.OpenAI) -> None:
    r = client.responses.create(
        model="tiny",
        input="Multiply 6 by 7, then add 8.",
        tools=[CALC],
        temperature=0,
        max_tool_calls=1,
        max_output_tokens=200,
    )
    calls = [(i.name, i.status) for i in r.output if i.type == "mcp_call"]
    assert calls == [("multiply", "completed")]  # the model wanted add next: it got no tools
    assert r.output[-1].type == "message"
    # the tiny model was never trained to answer here: it may write until max_output_tokens,
    # but the response never ends for max_tool_calls (not one of OpenAI's reasons)
    assert r.incomplete_details is None or r.incomplete_details.reason == "max_output_tokens"


def test_a_turn_cut_at_max_output_tokens_shows_no_call_markup(client: openai.OpenAI) -> None:
    r = client.responses.create(
        model="tiny", input="What is 2 plus 3?", tools=[CALC], temperature=0, max_output_tokens=3
    )
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert "<tool_call>" not in r.output_text
    assert [i.type for i in r.output] == ["mcp_list_tools"]


def test_a_loop_past_its_compaction_threshold_compacts_and_finishes(
    beyond_spec_client: openai.OpenAI,
) -> None:
    # compaction items are newer than the Open Responses spec: not checked against it
    r = beyond_spec_client.responses.create(
        model="tiny",
        input="Multiply 6 by 7, then add 8.",
        tools=[CALC],
        temperature=0,
        max_output_tokens=300,
        extra_body={"context_management": [{"type": "compaction", "compact_threshold": 360}]},
    )
    kinds = [i.type for i in r.output]
    assert "compaction" in kinds and kinds.index("compaction") > kinds.index("mcp_call")
    assert r.status in ("completed", "incomplete") and r.error is None


def test_the_compact_endpoint_summarizes_a_stored_response_and_the_next_one_continues_from_it(
    client: openai.OpenAI, beyond_spec_client: openai.OpenAI
) -> None:
    ask = "What is 2 plus 3?"
    first = client.responses.create(model="tiny", input=ask, tools=[CALC], temperature=0)
    assert first.output_text == "2 plus 3 is 5."
    # `client`: the answer is checked against the spec's CompactResource at the session's end
    compacted = client.responses.compact(model="tiny", previous_response_id=first.id)
    assert compacted.object == "response.compaction" and compacted.id != first.id
    assert [(i.type, getattr(i, "role", None)) for i in compacted.output] == [
        ("message", "user"),
        ("compaction", None),
    ]
    assert compacted.output[0].content[0].text == ask
    item = compacted.output[1]
    assert item.type == "compaction" and item.encrypted_content
    usage = compacted.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    # sent back as input (no mcp tools: the compaction item keeps it with the plugin); the
    # first prompt of the next response holds the summary before the new question
    # (`enable_response_messages`, vLLM's extension, is not in the spec: the other client)
    nxt = beyond_spec_client.responses.create(
        model="tiny",
        input=[*compacted.output, {"role": "user", "content": "What is 4 plus 4?"}],
        temperature=0,
        max_output_tokens=40,
        extra_body={"enable_response_messages": True},
    )
    assert nxt.status in ("completed", "incomplete") and nxt.error is None
    prompt = (nxt.model_extra or {})["input_messages"][0]["message"]
    summary_at = prompt.index("Summary of the conversation so far (compacted):")
    assert prompt.index(ask) < summary_at < prompt.index("What is 4 plus 4?")
    assert "<tool_response>" not in prompt[:summary_at]  # the tool exchange was compacted away


def test_the_compact_endpoint_refuses_what_it_cannot_serve_in_openais_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.compact(model="no-such-model", input="hi")
    assert isinstance(missing.value.body, dict) and missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as empty:
        client.responses.compact(model="tiny")
    assert isinstance(empty.value.body, dict) and empty.value.body["param"] == "input"
    with pytest.raises(openai.BadRequestError) as too_long:
        client.responses.compact(model="tiny", input=TOO_LONG)
    assert isinstance(too_long.value.body, dict) and too_long.value.body["code"] == "context_length_exceeded"
