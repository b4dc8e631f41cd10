"""Numbers, tables and the three ways of running a tool task: (a) the plugin's server-side loop,
(b) a client-side loop over chat completions with an MCP client, (c) LiteLLM's proxy."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from benchmarks.scripted import Plan
from benchmarks.stack import LITELLM_KEY, MODEL_NAME, Stack

# -- numbers and tables -----------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ratio(value: float, base: float) -> float:
    return value / base if base and not math.isnan(base) else math.nan


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True))
    out = [f"\n== {title}", line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    text = "\n".join(out)
    print(text, flush=True)
    return text


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


# -- one task, three ways ---------------------------------------------------------------------


@dataclass
class Outcome:
    ok: bool
    seconds: float
    detail: str = ""
    turns: list[dict[str, Any]] = field(default_factory=list)  # per model turn: token counts
    response_id: str | None = None


Runner = Callable[[Plan], Awaitable[Outcome]]


def nonce() -> str:
    """Makes every conversation unique, so only its own earlier turns can hit the prefix cache."""
    return uuid.uuid4().hex[:12]


def user_text(plan: Plan) -> str:
    return f"Task {nonce()}. {plan.marker()}"


async def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    events = []
    async for line in response.aiter_lines():
        if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
            events.append(json.loads(line[5:]))
    return events


def check_output(plan: Plan, output: list[dict[str, Any]]) -> str:
    """'' when the response ran every planned call and ended on the planned answer."""
    calls = [o for o in output if o.get("type") == "mcp_call"]
    failed = [o for o in calls if o.get("error")]
    texts = [c.get("text", "") for o in output if o.get("type") == "message" for c in o.get("content", [])]
    if len(calls) != sum(plan.calls) or failed:
        return f"{len(calls)} calls ({len(failed)} failed), planned {sum(plan.calls)}"
    if not texts or texts[-1].strip() != plan.final_text():
        return f"final text {texts[-1:]!r}"
    return ""


async def fetch_trace(http: httpx.AsyncClient, stack: Stack, response_id: str | None) -> dict[str, Any]:
    """The plugin's trace of a finished response (the server runs with VLLM_MCP_TRACE=1)."""
    reply = await http.get(f"{stack.vllm_url}/v1/mcp/traces/{response_id}")
    if reply.status_code != 200:
        raise RuntimeError(
            f"no trace for response {response_id}: HTTP {reply.status_code} {reply.text[:300]}"
        )
    trace: dict[str, Any] = reply.json()
    return trace


class PluginLoop:
    """(a) One streamed /v1/responses request; the plugin runs the loop in the engine's process."""

    name = "plugin /v1/responses"

    def __init__(self, stack: Stack, http: httpx.AsyncClient, server_label: str = "bench"):
        self.url = f"{stack.vllm_url}/v1/responses"
        self.http = http
        self.label = server_label

    async def __call__(self, plan: Plan, *, stream: bool = True) -> Outcome:
        body = {
            "model": MODEL_NAME,
            "input": user_text(plan),
            "tools": [{"type": "mcp", "server_label": self.label, "require_approval": "never"}],
            "temperature": 0,
            "stream": stream,
        }
        start = time.perf_counter()
        if stream:
            async with self.http.stream("POST", self.url, json=body) as response:
                events = await sse_events(response)
            final = next((e["response"] for e in reversed(events) if "response" in e), {})
        else:
            final = (await self.http.post(self.url, json=body)).json()
        seconds = time.perf_counter() - start
        problem = check_output(plan, final.get("output", [])) if final else "no final response"
        return Outcome(not problem, seconds, problem, response_id=final.get("id"))


class ClientLoop:
    """(b) What users write today: the openai SDK over /v1/chat/completions and an mcp SDK
    client session (opened once, shared by all requests), running the calls of a turn
    concurrently."""

    name = "client loop /v1/chat/completions"

    def __init__(self, stack: Stack):
        self.stack = stack
        self.exit = AsyncExitStack()
        self.tools: list[dict[str, Any]] = []
        self.session: ClientSession | None = None
        self.openai = openai.AsyncOpenAI(base_url=f"{stack.vllm_url}/v1", api_key="unused", max_retries=0)

    async def __aenter__(self) -> ClientLoop:
        http = await self.exit.enter_async_context(create_mcp_http_client())
        read, write = await self.exit.enter_async_context(
            streamable_http_client(self.stack.mcp_url, http_client=http)
        )
        self.session = await self.exit.enter_async_context(ClientSession(read, write))
        await self.session.initialize()
        listed = await self.session.list_tools()
        self.tools = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description or "",
                    "parameters": t.input_schema,
                },
            }
            for t in listed.tools
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.openai.close()
        await self.exit.aclose()

    async def __call__(self, plan: Plan) -> Outcome:
        assert self.session is not None
        messages: list[dict[str, Any]] = [{"role": "user", "content": user_text(plan)}]
        turns: list[dict[str, Any]] = []
        calls_made = 0
        start = time.perf_counter()
        while True:
            text, calls, usage = await self._turn(messages)
            turns.append(usage)
            if not calls:
                break
            messages.append({"role": "assistant", "content": text or None, "tool_calls": calls})
            results = await asyncio.gather(
                *(
                    self.session.call_tool(
                        c["function"]["name"], json.loads(c["function"]["arguments"] or "{}")
                    )
                    for c in calls
                )
            )
            calls_made += len(calls)
            for call, result in zip(calls, results, strict=True):
                content = "\n".join(b.text for b in result.content if getattr(b, "type", "") == "text")
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})
        seconds = time.perf_counter() - start
        problem = ""
        if calls_made != sum(plan.calls) or text.strip() != plan.final_text():
            problem = f"{calls_made} calls, final text {text!r}"
        return Outcome(not problem, seconds, problem, turns)

    async def _turn(self, messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
        stream = await self.openai.chat.completions.create(
            model=MODEL_NAME,
            messages=messages,  # type: ignore[arg-type]
            tools=self.tools,  # type: ignore[arg-type]
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        usage: dict[str, Any] = {}
        async for chunk in stream:
            if chunk.usage is not None:
                details = chunk.usage.prompt_tokens_details
                usage = {
                    "prompt_tokens": chunk.usage.prompt_tokens,
                    "cached_tokens": (details.cached_tokens or 0) if details else 0,
                    "output_tokens": chunk.usage.completion_tokens,
                }
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    text.append(delta.content)
                for tc in delta.tool_calls or []:
                    call = calls.setdefault(
                        tc.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
                    )
                    if tc.id:
                        call["id"] = tc.id
                    if tc.function and tc.function.name:
                        call["function"]["name"] = tc.function.name
                    if tc.function and tc.function.arguments:
                        call["function"]["arguments"] += tc.function.arguments
        return "".join(text), [calls[i] for i in sorted(calls)], usage


class LiteLLMLoop:
    """(c) LiteLLM's proxy with MCP auto-execution (`server_url: litellm_proxy`), streamed.

    LiteLLM 1.106 runs one round of tool calls without streaming. Streamed, it runs up to five
    rounds, but builds each follow-up from the original input plus the latest round only: a
    model that needs two dependent calls never sees the first result again and repeats it.
    So it can do tasks of one round (any number of calls in it). It names the tools
    `<server>-<tool>`; the plan calls them so."""

    name = "LiteLLM proxy /v1/responses"

    def __init__(self, stack: Stack, http: httpx.AsyncClient):
        assert stack.litellm_url is not None
        self.url = f"{stack.litellm_url}/v1/responses"
        self.http = http

    async def __call__(self, plan: Plan) -> Outcome:
        plan = Plan(plan.calls, f"bench-{plan.tool}", plan.args, plan.json_style, plan.text)
        body = {
            "model": MODEL_NAME,
            "input": user_text(plan),
            "tools": [
                {
                    "type": "mcp",
                    "server_label": "litellm",
                    "server_url": "litellm_proxy",
                    "require_approval": "never",
                }
            ],
            "temperature": 0,
            "stream": True,
            "store": False,  # vLLM's stock /v1/responses (LiteLLM's backend here) keeps nothing
        }
        start = time.perf_counter()
        async with self.http.stream(
            "POST", self.url, json=body, headers={"Authorization": f"Bearer {LITELLM_KEY}"}
        ) as response:
            events = await sse_events(response)
        seconds = time.perf_counter() - start
        final = next((e["response"] for e in reversed(events) if "response" in e), {})
        problem = (
            check_output(plan, final.get("output", [])) if final else f"no final response: {events[-1:]}"
        )
        return Outcome(not problem, seconds, problem)


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=600, limits=httpx.Limits(max_connections=256, max_keepalive_connections=256)
    )
