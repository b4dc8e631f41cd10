"""A request whose ``model`` is a served LoRA adapter runs every turn of the MCP loop on it
(server: the reasoning server, with two adapters the suite writes; see conftest)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

pytestmark = pytest.mark.e2e

CALC = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
QUESTION = "Think, then add 1 and 1."


def create(client: openai.OpenAI, model: str) -> Any:
    return client.responses.create(
        model=model, input=QUESTION, tools=CALC, temperature=0, max_output_tokens=120
    )


def shape(r: Any) -> list[tuple[str, str]]:
    out = []
    for item in r.output:
        if item.type == "mcp_call":
            out.append((item.type, f"{item.name}{item.arguments}={item.output}"))
        elif item.type in ("message", "reasoning"):
            out.append((item.type, item.content[0].text.strip()))
        else:
            out.append((item.type, ""))
    return out


def test_every_turn_runs_on_the_named_adapter(reasoning_client: openai.OpenAI) -> None:
    base = create(reasoning_client, "tiny")
    same = create(reasoning_client, "tiny-same")  # an adapter that changes nothing: the same loop
    assert same.model == "tiny-same" and same.status == "completed"
    assert shape(same) == shape(base)
    assert [t for t, _ in shape(same)] == ["mcp_list_tools", "reasoning", "mcp_call", "reasoning", "message"]
    noise = create(reasoning_client, "tiny-noise")  # an adapter that changes the weights: not the same
    assert shape(noise) != shape(base)


def test_an_adapter_that_is_not_served_is_a_404(reasoning_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        create(reasoning_client, "tiny-missing")
