"""Request settings through the MCP loop, end to end: logprobs, ``truncation: "auto"`` and
vLLM's own extensions (sampling extras, ``cache_salt``, ``request_id``,
``enable_response_messages``), each honoured on every turn and echoed."""

from __future__ import annotations

from typing import Any

import openai
import pytest

pytestmark = pytest.mark.e2e

ASK, ANSWER = "What is 2 plus 3?", "2 plus 3 is 5."
CALC = {"type": "mcp", "server_label": "calc", "require_approval": "never"}


def create(client: openai.OpenAI, input: Any = ASK, **kw: Any):
    return client.responses.create(model="tiny", input=input, tools=[CALC], temperature=0, **kw)


def kinds(response: Any) -> list[str]:
    return [item.type for item in response.output]


def test_output_text_logprobs_with_top_logprobs(client: openai.OpenAI) -> None:
    r = create(client, include=["message.output_text.logprobs"], top_logprobs=2)
    assert kinds(r) == ["mcp_list_tools", "mcp_call", "message"]
    assert r.top_logprobs == 2
    logprobs = r.output[2].content[0].logprobs
    assert "".join(lp.token for lp in logprobs).strip() == r.output_text == ANSWER
    for lp in logprobs:
        assert lp.logprob <= 0
        assert len(lp.top_logprobs) == 2
        assert lp.top_logprobs[0].token == lp.token  # greedy: the sampled token ranks first
        assert bytes(lp.bytes).decode() == lp.token
    plain = create(client)
    assert plain.output[2].content[0].logprobs == []


def test_streamed_text_deltas_carry_their_logprobs(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model="tiny", input=ASK, tools=[CALC], temperature=0, include=["message.output_text.logprobs"]
    ) as stream:
        deltas = [e for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    streamed = [lp.token for e in deltas for lp in e.logprobs]
    assert streamed == [lp.token for lp in final.output[2].content[0].logprobs]
    assert all(lp.top_logprobs == [] for e in deltas for lp in e.logprobs)  # top_logprobs: 0


def long_history() -> list[dict[str, Any]]:
    """An earlier exchange far longer than the server's 2048-token context, then the question."""
    filler = "Here is a very long story about nothing at all. " * 300
    return [
        {"role": "user", "content": filler},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": ASK},
    ]


def test_truncation_auto_drops_the_oldest_items_when_the_context_is_full(client: openai.OpenAI) -> None:
    # without truncation the first turn does not fit: the client's to fix, a 400 before the response
    with pytest.raises(openai.BadRequestError) as refused:
        create(client, long_history())
    assert refused.value.code == "context_length_exceeded" and "context window" in refused.value.message
    r = create(client, long_history(), truncation="auto")
    assert r.status == "completed" and r.truncation == "auto"
    assert kinds(r) == ["mcp_list_tools", "mcp_call", "message"]
    assert (r.output[1].name, r.output[1].output, r.output_text) == ("add", "5", ANSWER)
    assert r.usage.input_tokens < 2 * 2048  # two turns, each within the window


def test_sampling_extras_reach_every_turn(client: openai.OpenAI) -> None:
    r = create(client, extra_body={"stop": [" is"], "seed": 1, "top_k": 5, "repetition_penalty": 1.0})
    assert kinds(r) == ["mcp_list_tools", "mcp_call", "message"]
    assert r.output[1].output == "5"  # the tool-call turn ran too ...
    assert r.output_text == "2 plus 3"  # ... and the answer turn stopped at the stop string


def test_a_bad_extension_is_a_400_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        create(client, extra_body={"min_p": 3})
    assert info.value.param == "min_p"


def test_a_chat_template_of_the_request_is_refused_as_vllm_refuses_it(client: openai.OpenAI) -> None:
    """The server does not trust request templates (no --trust-request-chat-template) nor
    multimodal options: the loop renders nothing with them. The first turn is rendered before the
    response starts (to check it fits the context), so the refusal is a 400 with vLLM's reason,
    as stock vLLM's own chat completions answer."""
    template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(openai.BadRequestError) as refused:
        create(client, extra_body={"chat_template_kwargs": {"chat_template": template}})
    assert "--trust-request-chat-template" in refused.value.message
    with pytest.raises(openai.BadRequestError) as mm:
        create(client, extra_body={"mm_processor_kwargs": {"num_crops": 4}})
    assert "--trust-request-mm-kwargs" in mm.value.message


def test_cache_salt_keeps_the_prefix_cache_apart(client: openai.OpenAI) -> None:
    def cached(salt: str) -> int:
        r = create(
            client,
            "Say something about salt and caches.",
            tool_choice="none",
            extra_body={"cache_salt": salt},
        )
        return r.usage.input_tokens_details.cached_tokens

    cached("salt-one")
    assert cached("salt-one") > 0
    assert cached("salt-two") == 0


def test_request_id_names_the_response(client: openai.OpenAI) -> None:
    r = create(client, extra_body={"request_id": "resp_chosen_by_the_client"})
    assert r.id == "resp_chosen_by_the_client"
    assert client.responses.retrieve(r.id).output_text == ANSWER


def test_enable_response_messages_shows_every_turn_as_the_engine_saw_it(vllm_server: str) -> None:
    # its own client: the extra fields are vLLM's, not in the Open Responses schema
    plain = openai.OpenAI(base_url=f"{vllm_server}/v1", api_key="unused", max_retries=0, timeout=120)
    r = create(plain, extra_body={"enable_response_messages": True})
    extra = r.model_extra or {}
    inputs, outputs = extra["input_messages"], extra["output_messages"]
    assert [m["type"] for m in inputs + outputs] == ["raw_message_tokens"] * 4  # two turns
    assert ASK in inputs[0]["message"] and "<tool_response>\n5\n</tool_response>" in inputs[1]["message"]
    assert '"name": "add"' in outputs[0]["message"] and ANSWER in outputs[1]["message"]
    assert sum(len(m["tokens"]) for m in inputs) == r.usage.input_tokens
    assert sum(len(m["tokens"]) for m in outputs) == r.usage.output_tokens
    assert "input_messages" not in (create(plain).model_extra or {})
