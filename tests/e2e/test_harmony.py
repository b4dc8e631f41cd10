"""gpt-oss end to end: a tiny `GptOssForCausalLM` (tests/support/harmony_model), trained to call
``calc.add`` in harmony on cue, served by a real vLLM with the plugin; the real calculator MCP
server; the real `openai` SDK. Its own vLLM server, for this module only (another model)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.conftest import sdk_client, serve
from tests.e2e.wire import Captured
from tests.support.harmony_model import ANSWER, ARGUMENTS, QUESTION, START_DATE, build_harmony_model

TOOLS: list[Any] = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]


@pytest.fixture(scope="module")
def harmony_server(mcp_config: Path, logs: Path, store_path: Path) -> Iterator[str]:
    model = build_harmony_model()
    old = os.environ.get("VLLM_SYSTEM_START_DATE")
    os.environ["VLLM_SYSTEM_START_DATE"] = START_DATE  # the date the model was trained with
    try:
        # vLLM refuses another tool parser for a harmony model (`serve` passes hermes first)
        flags = ("--tool-call-parser", "openai")
        with serve(model, mcp_config, logs / "vllm-harmony.log", *flags, store=store_path) as url:
            yield url
    finally:
        if old is None:
            os.environ.pop("VLLM_SYSTEM_START_DATE", None)
        else:
            os.environ["VLLM_SYSTEM_START_DATE"] = old


@pytest.fixture(scope="module")
def gpt_oss(harmony_server: str, wire_log: list[Captured]) -> openai.OpenAI:
    return sdk_client(harmony_server, wire_log)


def test_harmony_gpt_oss_calls_an_mcp_tool_through_the_loop(gpt_oss: openai.OpenAI) -> None:
    with gpt_oss.responses.stream(model="tiny", input=QUESTION, tools=TOOLS, temperature=0) as stream:
        kinds = [event.type for event in stream]
        r = stream.get_final_response()
    assert [i.type for i in r.output] == ["mcp_list_tools", "reasoning", "mcp_call", "message"]
    call = r.output[2]
    assert (call.server_label, call.name, call.arguments, call.output) == ("calc", "add", ARGUMENTS, "5")
    assert r.output_text == ANSWER
    assert "response.mcp_call_arguments.delta" in kinds and "response.reasoning_text.delta" in kinds
    # the second turn continued the first token-exactly: the prefix cache served its prompt
    assert r.usage is not None and r.usage.input_tokens_details.cached_tokens > 0
