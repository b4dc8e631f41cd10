"""The reasoning parser's output becomes reasoning items, turn by turn (server with qwen3 parser)."""

from __future__ import annotations

import openai
import pytest

pytestmark = pytest.mark.e2e

CALC = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
QUESTION = "Think, then add 1 and 1."


def test_reasoning_of_each_turn_is_its_own_item(reasoning_client: openai.OpenAI) -> None:
    r = reasoning_client.responses.create(model="tiny", input=QUESTION, tools=CALC, temperature=0)
    assert [i.type for i in r.output] == ["mcp_list_tools", "reasoning", "mcp_call", "reasoning", "message"]
    assert r.output[1].content[0].text.strip() == "I should use the add tool."
    assert (r.output[2].name, r.output[2].output) == ("add", "2")
    assert r.output[3].content[0].text.strip() == "The tool said 2."
    assert r.output_text == "1 plus 1 is 2."
    assert r.usage.output_tokens_details.reasoning_tokens > 0


def test_reasoning_streams_as_reasoning_text_deltas(reasoning_client: openai.OpenAI) -> None:
    with reasoning_client.responses.stream(model="tiny", input=QUESTION, tools=CALC, temperature=0) as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert "I should use the add tool." in deltas and "The tool said 2." in deltas
    done = [e.text.strip() for e in events if e.type == "response.reasoning_text.done"]
    assert done == ["I should use the add tool.", "The tool said 2."]
    assert final.output_text == "1 plus 1 is 2."
