"""The OpenAI Agents SDK (`openai-agents`), used as its docs show, against the real server.

Hosted MCP tools (`HostedMCPTool`) through `Runner.run` and `Runner.run_streamed`, a forced tool
(`MCPToolChoice`), and approvals in both ways the SDK resumes a run:

- its default: the whole conversation goes back as ``input`` items (``mcp_list_tools``,
  ``mcp_approval_request``, then the new ``mcp_approval_response``) without
  ``previous_response_id``, and a forced ``tool_choice`` is sent again;
- ``auto_previous_response_id=True``: only the new ``mcp_approval_response``, with
  ``previous_response_id``.

Each through ``on_approval_request`` and through the run's interruptions and `RunState`. Every
request body the SDK sends is recorded, so each test also shows which resume mode it exercised.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

import openai
import pytest
from agents import (
    Agent,
    FunctionTool,
    HostedMCPTool,
    MCPToolApprovalFunctionResult,
    MCPToolApprovalRequest,
    ModelSettings,
    OpenAIResponsesModel,
    RawResponsesStreamEvent,
    RunItemStreamEvent,
    Runner,
    RunResult,
    RunResultStreaming,
    RunState,
    SQLiteSession,
    ToolCallItem,
    set_tracing_disabled,
)
from agents.model_settings import MCPToolChoice
from openai.types.shared import Reasoning

from tests.e2e.conftest import REPO

pytestmark = pytest.mark.e2e

ASK, ANSWER = "What is 2 plus 3?", "2 plus 3 is 5."
MULTIPLY, PRODUCT = "Use the multiply tool on 4 and 5.", "4 times 5 is 20."
FORCE_MULTIPLY = MCPToolChoice(server_label="calc", name="multiply")
REASON = "not today"

Result = RunResult | RunResultStreaming
ApprovalHook = Callable[[MCPToolApprovalRequest], MCPToolApprovalFunctionResult]


@dataclass
class Sdk:
    """What a user of the SDK sets up: an `AsyncOpenAI` pointed at the server, and agents with
    the server's `calc` tools. ``sent`` holds the body of every Responses request, in order."""

    client: openai.AsyncOpenAI
    sent: list[dict[str, Any]] = field(default_factory=list)

    def agent(
        self,
        require_approval: str = "never",
        on_approval_request: ApprovalHook | None = None,
        tool_choice: MCPToolChoice | None = None,
        store: bool | None = None,
        instructions: str | None = None,
        function_tools: tuple[FunctionTool, ...] = (),
    ) -> Agent:
        # Instructions become a system message: the tiny model only knows them in one script.
        tool = HostedMCPTool(
            tool_config={"type": "mcp", "server_label": "calc", "require_approval": require_approval},
            on_approval_request=on_approval_request,
        )
        return Agent(
            name="calculator",
            instructions=instructions,
            model=OpenAIResponsesModel(model="tiny", openai_client=self.client),
            tools=[tool, *function_tools],
            model_settings=ModelSettings(temperature=0, tool_choice=tool_choice, store=store),
        )


@asynccontextmanager
async def open_sdk(server: str) -> AsyncIterator[Sdk]:
    set_tracing_disabled(True)  # nothing to send traces to
    sent: list[dict[str, Any]] = []

    async def record(request: Any) -> None:
        if request.url.path.endswith("/responses"):
            sent.append(json.loads(request.content))

    http = openai.DefaultAsyncHttpxClient(event_hooks={"request": [record]})
    client = openai.AsyncOpenAI(
        base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=120, http_client=http
    )
    async with client:
        yield Sdk(client, sent)


@pytest.fixture
async def sdk(vllm_server: str) -> AsyncIterator[Sdk]:
    async with open_sdk(vllm_server) as sdk:
        yield sdk


async def run(
    agent: Agent, input: str | RunState, *, streamed: bool = False, auto_previous: bool = False
) -> Result:
    """`Runner.run`, or `Runner.run_streamed` with its events drained."""
    if not streamed:
        return await Runner.run(agent, input, auto_previous_response_id=auto_previous)
    result = Runner.run_streamed(agent, input, auto_previous_response_id=auto_previous)
    async for _ in result.stream_events():
        pass
    return result


def mcp_calls(result: Result) -> list[Any]:
    return [
        i.raw_item for i in result.new_items if isinstance(i, ToolCallItem) and i.raw_item.type == "mcp_call"
    ]


def calls(result: Result) -> list[tuple[str, str, str | None]]:
    return [(c.name, c.arguments, c.output) for c in mcp_calls(result)]


def item_types(body: dict[str, Any]) -> list[str]:
    return [item.get("type", "message") for item in body["input"]]


# -- runs without approvals ----------------------------------------------------------------


async def test_run_calls_the_hosted_mcp_tool_and_answers(sdk: Sdk) -> None:
    result = await Runner.run(sdk.agent(), ASK)
    assert result.final_output == ANSWER
    assert [i.type for i in result.new_items] == [
        "mcp_list_tools_item",
        "tool_call_item",
        "message_output_item",
    ]
    assert calls(result) == [("add", '{"a": 2, "b": 3}', "5")]
    assert result.new_items[0].raw_item.server_label == "calc"
    [body] = sdk.sent
    assert body["tools"] == [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
    assert body["input"] == [{"role": "user", "content": ASK}]


async def test_streamed_run_sees_every_event_in_order(sdk: Sdk) -> None:
    result = Runner.run_streamed(sdk.agent(), ASK)
    kinds: list[str] = []
    numbers: list[int] = []
    async for event in result.stream_events():
        if isinstance(event, RawResponsesStreamEvent):
            kinds.append(event.data.type)
            numbers.append(event.data.sequence_number)
        elif isinstance(event, RunItemStreamEvent):
            kinds.append(f"item:{event.name}")
        else:
            kinds.append(event.type)
    assert result.final_output == ANSWER
    assert calls(result) == [("add", '{"a": 2, "b": 3}', "5")]
    assert numbers == list(range(len(numbers)))
    # deltas come one or more at a time: compare the sequence with repeats folded
    assert [kind for kind, _ in groupby(kinds)] == [
        "agent_updated_stream_event",
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
        "item:mcp_list_tools",
        "item:tool_called",
        "item:message_output_created",
    ]


async def test_forced_tool_with_mcp_tool_choice(sdk: Sdk) -> None:
    result = await Runner.run(sdk.agent(tool_choice=FORCE_MULTIPLY), MULTIPLY)
    assert result.final_output == PRODUCT
    assert calls(result) == [("multiply", '{"a": 4, "b": 5}', "20")]
    [body] = sdk.sent
    assert body["tool_choice"] == {"type": "mcp", "server_label": "calc", "name": "multiply"}


async def test_agent_instructions_reach_the_model(sdk: Sdk) -> None:
    result = await Runner.run(sdk.agent(instructions="Answer briefly."), "What is 3 times 3?")
    assert result.final_output == "9."
    assert calls(result) == [("multiply", '{"a": 3, "b": 3}', "9")]
    assert sdk.sent[0]["instructions"] == "Answer briefly."


async def test_model_settings_the_sdk_forwards_are_accepted(sdk: Sdk) -> None:
    settings = ModelSettings(
        temperature=0,
        top_p=1.0,
        max_tokens=200,
        parallel_tool_calls=True,
        truncation="auto",
        metadata={"case": "settings"},
        store=True,
        reasoning=Reasoning(effort="low"),
        verbosity="low",
        top_logprobs=2,
    )
    agent = sdk.agent().clone(model_settings=settings)
    result = await Runner.run(agent, ASK)
    assert result.final_output == ANSWER
    [body] = sdk.sent
    assert body["max_output_tokens"] == 200 and body["truncation"] == "auto"
    assert body["reasoning"] == {"effort": "low"} and body["text"] == {"verbosity": "low"}
    assert body["include"] == ["message.output_text.logprobs"] and body["top_logprobs"] == 2


@pytest.mark.parametrize("mode", ["replay", "previous_response_id"])
async def test_sdk_function_tools_run_beside_hosted_mcp(sdk: Sdk, mode: str) -> None:
    """A function tool the SDK runs itself, next to the server's MCP tools: the function call
    ends the server's response, the SDK runs it and sends its output back."""
    ran: list[str] = []

    async def get_weather(context: Any, arguments: str) -> str:
        ran.append(arguments)
        return "Sunny, 21 C"

    weather = FunctionTool(
        name="get_weather",
        description="Current weather for a city.",  # the schema the tiny model was trained on
        params_json_schema={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        on_invoke_tool=get_weather,
        strict_json_schema=False,
    )
    agent = sdk.agent(function_tools=(weather,))
    result = await run(agent, "What is the weather in Paris?", auto_previous=mode == "previous_response_id")
    assert ran == ['{"city": "Paris"}']
    _, second = sdk.sent
    if mode == "replay":
        assert "previous_response_id" not in second
        assert item_types(second) == ["message", "mcp_list_tools", "function_call", "function_call_output"]
    else:
        assert second["previous_response_id"] == result.raw_responses[0].response_id
        assert item_types(second) == ["function_call_output"]
    assert second["input"][-1]["output"] == "Sunny, 21 C"
    # the tools were listed once, in the first response; the model answered after the result
    assert [i.type for i in result.raw_responses[0].output] == ["mcp_list_tools", "function_call"]
    assert [i.type for i in result.raw_responses[1].output] == ["message"]
    assert isinstance(result.final_output, str)


# -- approvals -----------------------------------------------------------------------------

APPROVAL_CASES = [
    # resume mode,          how the user answers, approve, streamed
    pytest.param("replay", "on_approval_request", True, False, id="replay-hook-approve"),
    pytest.param("replay", "on_approval_request", False, True, id="replay-hook-reject-streamed"),
    pytest.param("replay", "run_state", True, True, id="replay-state-approve-streamed"),
    pytest.param("replay", "run_state", False, False, id="replay-state-reject"),
    pytest.param("previous_response_id", "on_approval_request", True, True, id="prev-hook-approve-streamed"),
    pytest.param("previous_response_id", "on_approval_request", False, False, id="prev-hook-reject"),
    pytest.param("previous_response_id", "run_state", True, False, id="prev-state-approve"),
    pytest.param("previous_response_id", "run_state", False, True, id="prev-state-reject-streamed"),
]


@dataclass
class Approved:
    """An approval run: the result, the id of the approval request, and the id of the response
    that asked for it."""

    result: Result
    request_id: str
    asked_in: str | None


async def approve_or_reject(
    sdk: Sdk,
    how: str,
    approve: bool,
    *,
    text: str = ASK,
    tool_choice: MCPToolChoice | None = None,
    streamed: bool = False,
    auto_previous: bool = False,
    store: bool | None = None,
) -> Approved:
    """One approval, answered the way a user of the SDK would: with ``on_approval_request``
    (the SDK resumes within the same run), or from the run's interruptions with `RunState`."""
    if how == "on_approval_request":
        asked: list[Any] = []

        def decide(request: MCPToolApprovalRequest) -> MCPToolApprovalFunctionResult:
            asked.append(request.data)
            return {"approve": True} if approve else {"approve": False, "reason": REASON}

        agent = sdk.agent("always", decide, tool_choice, store)
        result = await run(agent, text, streamed=streamed, auto_previous=auto_previous)
        assert len(asked) == 1
        return Approved(result, asked[0].id, result.raw_responses[0].response_id)

    agent = sdk.agent("always", None, tool_choice, store)
    first = await run(agent, text, streamed=streamed, auto_previous=auto_previous)
    assert [i.tool_name for i in first.interruptions] == [mcp_tool(tool_choice)]
    [interruption] = first.interruptions
    state = first.to_state()
    if approve:
        state.approve(interruption)
    else:
        state.reject(interruption, rejection_message=REASON)
    result = await run(agent, state, streamed=streamed, auto_previous=auto_previous)
    return Approved(result, interruption.raw_item.id, first.last_response_id)


def mcp_tool(choice: MCPToolChoice | None) -> str:
    return choice.name if choice else "add"


def answer_item(request_id: str, approve: bool) -> dict[str, Any]:
    item = {"type": "mcp_approval_response", "approval_request_id": request_id, "approve": approve}
    return item if approve else {**item, "reason": REASON}


def assert_resumed(sdk: Sdk, mode: str, approved: Approved, approve: bool) -> dict[str, Any]:
    """The two requests of an approval: the question, then the answer in the mode's shape."""
    first, resumed = sdk.sent
    assert "previous_response_id" not in first
    assert resumed["input"][-1] == answer_item(approved.request_id, approve)
    if mode == "replay":
        assert "previous_response_id" not in resumed
        assert item_types(resumed) == [
            "message",
            "mcp_list_tools",
            "mcp_approval_request",
            "mcp_approval_response",
        ]
        assert resumed["input"][0] == first["input"][0]
        assert resumed["input"][2]["id"] == approved.request_id
    else:
        assert resumed["previous_response_id"] == approved.asked_in
        assert item_types(resumed) == ["mcp_approval_response"]
    return resumed


@pytest.mark.parametrize(("mode", "how", "approve", "streamed"), APPROVAL_CASES)
async def test_approval(sdk: Sdk, mode: str, how: str, approve: bool, streamed: bool) -> None:
    approved = await approve_or_reject(
        sdk, how, approve, streamed=streamed, auto_previous=mode == "previous_response_id"
    )
    assert_resumed(sdk, mode, approved, approve)
    result = approved.result
    assert result.interruptions == []
    if approve:
        # the call ran exactly as the model asked for it, once, and the model answered
        assert calls(result) == [("add", '{"a": 2, "b": 3}', "5")]
        assert mcp_calls(result)[0].approval_request_id == approved.request_id
        assert result.final_output == ANSWER
        # the tools are not listed again: the replayed or stored listing still holds
        assert [i.type for i in result.raw_responses[-1].output] == ["mcp_call", "message"]
    else:
        # nothing ran; the model had its turn after hearing no (words untrained: not asserted)
        assert calls(result) == []
        assert isinstance(result.final_output, str)
        assert [i.type for i in result.raw_responses[-1].output] == ["message"]


@pytest.mark.parametrize(
    ("mode", "how", "streamed"),
    [
        pytest.param("replay", "on_approval_request", False, id="replay-hook"),
        pytest.param("replay", "run_state", True, id="replay-state-streamed"),
        pytest.param("previous_response_id", "on_approval_request", True, id="prev-hook-streamed"),
        pytest.param("previous_response_id", "run_state", False, id="prev-state"),
    ],
)
async def test_forced_tool_choice_does_not_force_a_second_call_on_resume(
    sdk: Sdk, mode: str, how: str, streamed: bool
) -> None:
    approved = await approve_or_reject(
        sdk,
        how,
        True,
        text=MULTIPLY,
        tool_choice=FORCE_MULTIPLY,
        streamed=streamed,
        auto_previous=mode == "previous_response_id",
    )
    resumed = assert_resumed(sdk, mode, approved, True)
    # the SDK forces the tool again on the resumed request; the server runs the approved call
    # and lets the model answer instead of calling multiply a second time
    assert resumed["tool_choice"] == {"type": "mcp", "server_label": "calc", "name": "multiply"}
    assert calls(approved.result) == [("multiply", '{"a": 4, "b": 5}', "20")]
    assert approved.result.final_output == PRODUCT


@pytest.mark.parametrize("mode", ["replay", "previous_response_id"])
async def test_two_approvals_of_one_turn_are_answered_together(sdk: Sdk, mode: str) -> None:
    asked: list[str] = []

    def approve(request: MCPToolApprovalRequest) -> MCPToolApprovalFunctionResult:
        asked.append(request.data.name)
        return {"approve": True}

    agent = Agent(
        name="notes and facts",
        model=OpenAIResponsesModel(model="tiny", openai_client=sdk.client),
        tools=[
            HostedMCPTool(tool_config={"type": "mcp", "server_label": label}, on_approval_request=approve)
            for label in ("notes", "facts")
        ],
        model_settings=ModelSettings(temperature=0),
    )
    text = "Save a note about Peru and tell me its capital."
    result = await run(agent, text, auto_previous=mode == "previous_response_id")
    assert asked == ["add_note", "capital"]
    answers = ["mcp_approval_response", "mcp_approval_response"]
    if mode == "replay":
        requests = ["mcp_list_tools", "mcp_list_tools", "mcp_approval_request", "mcp_approval_request"]
        assert item_types(sdk.sent[1]) == ["message", *requests, *answers]
    else:
        assert item_types(sdk.sent[1]) == answers
    assert calls(result) == [
        ("add_note", '{"text": "Peru"}', "saved: Peru"),
        ("capital", '{"country": "Peru"}', "Lima"),
    ]
    assert result.final_output == "Saved. The capital of Peru is Lima."


async def test_default_resume_needs_no_stored_response(sdk: Sdk) -> None:
    approved = await approve_or_reject(sdk, "on_approval_request", True, store=False)
    assert [body["store"] for body in sdk.sent] == [False, False]
    assert_resumed(sdk, "replay", approved, True)
    assert approved.result.final_output == ANSWER


async def test_the_sdks_history_replays_the_stored_conversation(sdk: Sdk) -> None:
    """A next turn from ``to_input_list()`` or from a session (approval items, the approved call,
    the answer) is the same prompt as a next turn from ``previous_response_id``."""
    session = SQLiteSession("history")  # in memory
    agent = sdk.agent("always", lambda request: {"approve": True})
    first = await Runner.run(agent, ASK, session=session)
    assert first.final_output == ANSWER
    sdk.sent.clear()
    replayed = await Runner.run(agent, [*first.to_input_list(), {"role": "user", "content": ASK}])
    from_session = await Runner.run(agent, ASK, session=session)
    chained = await Runner.run(agent, ASK, previous_response_id=first.last_response_id)
    history = [
        "message",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
        "message",
    ]
    assert [item_types(body) for body in sdk.sent] == [
        [*history, "message"],
        [*history, "message"],
        ["message"],
    ]
    tokens = {r.raw_responses[0].usage.input_tokens for r in (replayed, from_session, chained)}
    assert len(tokens) == 1


async def test_a_reasoning_models_history_replays_the_stored_conversation(reasoning_server: str) -> None:
    """With reasoning the SDK replays `reasoning` items too; the message item leaves out the
    whitespace the model writes after </think>, and so does the stored conversation."""
    async with open_sdk(reasoning_server) as sdk:
        agent = sdk.agent("always", lambda request: {"approve": True})
        think = "Think, then add 1 and 1."
        first = await Runner.run(agent, think)
        assert first.final_output == "1 plus 1 is 2."
        assert item_types(sdk.sent[1]) == [
            "message",
            "mcp_list_tools",
            "reasoning",
            "mcp_approval_request",
            "mcp_approval_response",
        ]
        replayed = await Runner.run(agent, [*first.to_input_list(), {"role": "user", "content": think}])
        chained = await Runner.run(agent, think, previous_response_id=first.last_response_id)
        assert "reasoning" in item_types(sdk.sent[2])
        usages = [r.raw_responses[0].usage for r in (replayed, chained)]
        assert usages[0].input_tokens == usages[1].input_tokens


async def test_conversation_ids_are_a_400(sdk: Sdk) -> None:
    """A conversation id the server does not hold is a 400, as an unknown previous_response_id."""
    with pytest.raises(openai.BadRequestError) as info:
        await Runner.run(sdk.agent(), ASK, conversation_id="conv_123")
    assert info.value.body["param"] == "conversation"


async def test_run_state_approves_later_from_its_saved_string(sdk: Sdk) -> None:
    """Human in the loop across processes: the run's state is saved as a string, restored later
    and approved; the server holds the conversation (``previous_response_id``)."""
    agent = sdk.agent("always")
    first = await Runner.run(agent, ASK, auto_previous_response_id=True)
    saved = first.to_state().to_string()
    state = await RunState.from_string(agent, saved)
    [interruption] = state.get_interruptions()
    state.approve(interruption)
    result = await Runner.run(agent, state, auto_previous_response_id=True)
    assert result.final_output == ANSWER
    assert sdk.sent[1]["input"] == [answer_item(first.interruptions[0].raw_item.id, True)]


def test_the_documented_example_runs(vllm_server: str) -> None:
    """examples/agents_sdk.py, as docs/agents-sdk.md tells users to run it, answering "y"."""
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "agents_sdk.py"), f"{vllm_server}/v1"],
        input="y\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # the question has no newline after it: the answer typed on the terminal would end the line
    assert (
        done.stdout == f'run add({{"a": 2, "b": 3}}) on calc? [y/N] add({{"a": 2, "b": 3}}) -> 5\n{ANSWER}\n'
    )


async def test_a_run_in_a_conversation_keeps_its_items_there(sdk: Sdk) -> None:
    conversation = await sdk.client.conversations.create()
    result = await Runner.run(sdk.agent(), ASK, conversation_id=conversation.id)
    assert result.final_output == ANSWER
    assert sdk.sent[0]["conversation"] == conversation.id
    items = await sdk.client.conversations.items.list(conversation.id, order="asc")
    assert [i.type for i in items.data] == ["message", "mcp_list_tools", "mcp_call", "message"]
