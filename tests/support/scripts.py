"""Scripted tool-calling conversations the tiny test model is trained to reproduce.

Each :class:`Script` is one Responses request (servers, client function tools, instructions,
user text) and the turns the model produces for it: a list of tool calls, or a final text.
Tool lists come from the example MCP servers in ``examples/servers`` and the 121-tool test server
``tests/e2e/servers/many_tools.py`` (run in memory), and the tools offered to the model are built
with the plugin's own :mod:`vllm_mcp_ext.loop.toolset` (and :mod:`vllm_mcp_ext.loop.tool_search`
for servers with ``defer_loading``), so the prompts the model was trained on are the prompts the
plugin renders. Results of successful calls come from calling those servers; tool searches run
the plugin's own search; error results are the fixed texts the plugin feeds back.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import threading
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from mcp import types
from openai.types.responses.tool import McpAllowedTools, McpAllowedToolsMcpToolFilter

from tests.e2e.servers import many_tools
from vllm_mcp_ext.loop.calls import CallOutcome, outcome_of, parse_arguments, unknown_tool
from vllm_mcp_ext.loop.tool_search import TOOL_SEARCH, SearchCall, ToolIndex, offered
from vllm_mcp_ext.loop.tool_search import result_text as search_result_text
from vllm_mcp_ext.loop.toolset import ServerTools, ToolSet, filter_allowed
from vllm_mcp_ext.types.source import LOST, Code, protocol_error

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SERVERS_DIR = REPO_ROOT / "examples" / "servers"
# Server label used in the tests -> module in examples/servers.
SERVER_MODULES: dict[str, str] = {"calc": "calculator", "notes": "notes", "facts": "facts"}
# The 121-tool test server's label (tests/e2e/test_tool_search.py serves it under this name).
MANY = "many"

# Tool results the plugin feeds back for failures (the model is trained on exactly these).
# The one result the servers cannot give in memory: the plugin's text for a server that died.
ERROR_CONNECTION_LOST = protocol_error(Code.CONNECTION_CLOSED, LOST).model_text

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@dataclass(frozen=True)
class Call:
    """One tool call the model makes, by the name the model sees."""

    name: str
    arguments: dict[str, Any]
    # Fixed result text; None means: call the real example server and use its text output.
    result: str | None = None

    @property
    def arguments_json(self) -> str:
        """The arguments exactly as the model writes them (and as the parser returns them)."""
        return json.dumps(self.arguments, ensure_ascii=False)

    def text(self) -> str:
        """The model's output for this call inside a tool-call turn."""
        return f'<tool_call>\n{{"name": "{self.name}", "arguments": {self.arguments_json}}}\n</tool_call>'


Turn = str | tuple[Call, ...]


@dataclass(frozen=True)
class Script:
    name: str
    servers: tuple[tuple[str, McpAllowedTools | None], ...]
    user: str
    turns: tuple[Turn, ...]
    function_tools: tuple[dict[str, Any], ...] = ()
    instructions: str | None = None
    # Exposed name of the tool the request forces with tool_choice, if any.
    tool_choice: str | None = None
    # Per turn: reasoning the model writes first in <think>...</think> (Qwen3 style); served by a
    # server with --reasoning-parser qwen3. The template drops it from earlier turns.
    reasoning: tuple[str, ...] = ()
    # Labels of the servers with defer_loading: the request also has a tool_search tool, and the
    # model sees the search function instead of their tools until it finds them.
    deferred: tuple[str, ...] = ()

    @property
    def server_labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.servers)

    @property
    def final_text(self) -> str | None:
        """The final answer, or None when the script ends on a tool call turn."""
        last = self.turns[-1]
        return last if isinstance(last, str) else None

    @property
    def calls(self) -> tuple[Call, ...]:
        return tuple(call for turn in self.turns if not isinstance(turn, str) for call in turn)


@dataclass(frozen=True)
class Sample:
    """One generation step: the chat-completions prompt and the exact completion (without eos)."""

    script: str
    turn: int
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    completion: str
    tool_choice: str | None = None


@dataclass(frozen=True)
class ResolvedScript:
    """A script with the tools the model sees and every call's result text."""

    script: Script
    tools: list[dict[str, Any]]
    results: dict[tuple[int, int], str] = field(default_factory=dict)  # (turn, call) -> text

    def samples(self) -> list[Sample]:
        return script_samples(self)


def _call(name: str, result: str | None = None, **arguments: Any) -> Call:
    return Call(name, arguments, result)


CALC: tuple[tuple[str, McpAllowedTools | None], ...] = (("calc", None),)
# The tool_search script's request (tests/e2e/test_tool_search.py sends it on both doors).
SEARCH_USER = "Search the tools for one that watches webhooks, then watch webhook 7."

SCRIPTS: dict[str, Script] = {
    s.name: s
    for s in [
        Script("one_call", CALC, "What is 2 plus 3?", ((_call("add", a=2, b=3),), "2 plus 3 is 5.")),
        Script(
            "two_sequential",
            CALC,
            "Multiply 6 by 7, then add 8.",
            ((_call("multiply", a=6, b=7),), (_call("add", a=42, b=8),), "The answer is 50."),
        ),
        Script(
            "two_parallel",
            (("notes", None), ("facts", None)),
            "Save a note about Peru and tell me its capital.",
            (
                (_call("add_note", text="Peru"), _call("capital", country="Peru")),
                "Saved. The capital of Peru is Lima.",
            ),
        ),
        Script(
            "forced",
            CALC,
            "Use the multiply tool on 4 and 5.",
            ((_call("multiply", a=4, b=5),), "4 times 5 is 20."),
            tool_choice="multiply",
        ),
        Script(
            "failing_tool",
            CALC,
            "Divide 1 by 0.",
            ((_call("divide", a=1, b=0),), "I cannot divide by zero."),
        ),
        Script(
            "collision",
            (("calc", None), ("facts", None)),
            "Add 2 and 3 with the facts server.",
            ((_call("facts__add", a=2, b=3),), "The facts server says 2 + 3 = 5."),
        ),
        Script(
            "function_tool",
            CALC,
            "What is the weather in Paris?",
            ((_call("get_weather", city="Paris"),),),
            function_tools=(WEATHER_TOOL,),
        ),
        Script(
            "bad_arguments",
            CALC,
            "Add two and three.",
            (
                (_call("add", a="two", b=3),),
                (_call("add", a=2, b=3),),
                "2 plus 3 is 5.",
            ),
        ),
        Script(
            "unknown_tool",
            CALC,
            "Subtract 3 from 5.",
            ((_call("subtract", a=5, b=3),), "I cannot subtract."),
        ),
        Script(
            "crash",
            CALC,
            "Crash the calculator.",
            ((_call("crash", ERROR_CONNECTION_LOST),), "The calculator stopped."),
        ),
        Script(
            "read_only",
            (("calc", McpAllowedToolsMcpToolFilter(read_only=True)),),
            "What is 4 plus 4?",
            ((_call("add", a=4, b=4),), "4 plus 4 is 8."),
        ),
        Script(
            "with_instructions",
            CALC,
            "What is 3 times 3?",
            ((_call("multiply", a=3, b=3),), "9."),
            instructions="Answer briefly.",
        ),
        Script(
            "reasoning",
            CALC,
            "Think, then add 1 and 1.",
            ((_call("add", a=1, b=1),), "1 plus 1 is 2."),
            reasoning=("I should use the add tool.", "The tool said 2."),
        ),
        Script(
            "tool_search",
            ((MANY, None),),
            SEARCH_USER,
            (
                (_call(TOOL_SEARCH, query="watch webhook", limit=1),),
                (_call("watch_webhook", id="7"),),
                "Watching webhook 7.",
            ),
            deferred=(MANY,),
        ),
    ]
}


def load_example_server(label: str) -> ModuleType:
    """Import ``examples/servers/<module>.py`` for a server label, under a private module name."""
    module_name = SERVER_MODULES[label]
    qualified = f"_vllm_mcp_ext_example_{module_name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, EXAMPLE_SERVERS_DIR / f"{module_name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load example server {module_name!r} from {EXAMPLE_SERVERS_DIR}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module


def server_of(label: str) -> Any:
    """The in-memory MCP server a script's label names."""
    return many_tools.build() if label == MANY else load_example_server(label).server


def build_toolset(
    script: Script, server_tools: Mapping[str, Sequence[types.Tool]]
) -> tuple[ToolSet, list[dict[str, Any]], ToolIndex | None]:
    """The tool set, the function tools the model sees and the index tool_search searches (with
    deferred servers), as the plugin builds them (``loop/runner.py``)."""
    function_tools = [dict(tool) for tool in script.function_tools]
    names = [tool["function"]["name"] for tool in function_tools]
    toolset = ToolSet.build(
        [
            ServerTools(label, filter_allowed(server_tools[label], allowed))
            for label, allowed in script.servers
        ],
        reserved=names + ([TOOL_SEARCH] if script.deferred else []),
    )
    if not script.deferred:
        return toolset, toolset.function_params() + function_tools, None
    tools, index = offered(toolset, script.deferred, function_tools, ())
    return toolset, tools, index


def script_samples(resolved: ResolvedScript) -> list[Sample]:
    """Every generation step of a script: (messages, tools) prompt and expected completion."""
    script = resolved.script
    messages: list[dict[str, Any]] = []
    if script.instructions is not None:
        messages.append({"role": "system", "content": script.instructions})
    messages.append({"role": "user", "content": script.user})
    samples: list[Sample] = []
    for t, turn in enumerate(script.turns):
        completion = turn if isinstance(turn, str) else "\n".join(call.text() for call in turn)
        if script.reasoning:
            completion = f"<think>\n{script.reasoning[t]}\n</think>\n\n{completion}"
        samples.append(
            Sample(
                script.name,
                t,
                [dict(m) for m in messages],
                resolved.tools,
                completion,
                script.tool_choice if t == 0 else None,
            )
        )
        if isinstance(turn, str):
            break
        ids = [f"call_{script.name}_{t}_{i}" for i in range(len(turn))]
        messages.append(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments_json},
                    }
                    for call_id, call in zip(ids, turn, strict=True)
                ],
            }
        )
        if t + 1 < len(script.turns):
            for i, call_id in enumerate(ids):
                messages.append(
                    {"role": "tool", "tool_call_id": call_id, "content": resolved.results[(t, i)]}
                )
    return samples


async def _resolve_all() -> dict[str, ResolvedScript]:
    from mcp.client.client import Client

    labels = sorted({label for s in SCRIPTS.values() for label in s.server_labels})
    async with AsyncExitStack() as stack:
        clients = {label: await stack.enter_async_context(Client(server_of(label))) for label in labels}
        server_tools = {label: tuple((await c.list_tools()).tools) for label, c in clients.items()}
        resolved: dict[str, ResolvedScript] = {}
        for script in SCRIPTS.values():
            toolset, tools, index = build_toolset(script, server_tools)
            results: dict[tuple[int, int], str] = {}
            # The last turn's calls (if any) end the response: they need no results.
            for t, turn in enumerate(script.turns[:-1]):
                assert not isinstance(turn, str)
                for i, call in enumerate(turn):
                    if call.result is not None:
                        results[(t, i)] = call.result
                        continue
                    if index is not None and call.name == TOOL_SEARCH:  # the loop runs it
                        asked = SearchCall.parse(call.arguments_json)
                        results[(t, i)] = search_result_text(index.search(asked.query, asked.limit))
                        continue
                    # What the plugin itself shows the model, failures included.
                    exposed = toolset.lookup(call.name)
                    if exposed is None:
                        results[(t, i)] = unknown_tool(call.name, toolset).model_text
                        continue
                    checked = parse_arguments(exposed, call.arguments_json)
                    if isinstance(checked, CallOutcome):
                        results[(t, i)] = checked.model_text
                        continue
                    result = await clients[exposed.server_label].call_tool(exposed.name, checked)
                    results[(t, i)] = outcome_of(result).model_text
            resolved[script.name] = ResolvedScript(script, tools, results)
    return resolved


@cache
def resolved_scripts() -> dict[str, ResolvedScript]:
    """All scripts with tools and results, computed once per process.

    Runs the in-memory servers on a private event loop in a thread, so it also works when
    called from async code (a running loop).
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(_resolve_all())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, name="vllm-mcp-ext-scripts")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


# Scripts only the searching model (tiny_model's ``model-search``) learns: taught to the main
# model they changed its untrained answers (json_schema answers, recorded client requests).
SEARCH_ONLY = frozenset({"tool_search"})


def all_samples(search: bool = False) -> list[Sample]:
    """The samples of the main model's scripts; with ``search``, of the searching model's (all)."""
    return [
        sample
        for name, resolved in resolved_scripts().items()
        if search or name not in SEARCH_ONLY
        for sample in resolved.samples()
    ]
