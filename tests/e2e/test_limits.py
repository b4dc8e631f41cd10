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
