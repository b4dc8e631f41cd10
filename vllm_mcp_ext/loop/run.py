"""`Run`: one response, from its validated request to its last event; its one owner. `Plan`: what
`AgentLoop.prepare` found before the response starts (tools listed, ``tool_choice`` resolved)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openai.types.responses import Response

from vllm_mcp_ext.events import ResponseStream
from vllm_mcp_ext.loop.context import ParsableContext
from vllm_mcp_ext.loop.context_edits import AppliedEdits, ContextEdits
from vllm_mcp_ext.loop.tool_search import ToolIndex
from vllm_mcp_ext.loop.toolset import ToolSet
from vllm_mcp_ext.observe.trace import ResponseTrace
from vllm_mcp_ext.servers import RequestSources
from vllm_mcp_ext.types.request import ResponsesRequest


@dataclass(frozen=True)
class Listing:
    label: str
    tools: tuple[Any, ...]
    error: str | None
    cached: bool = False  # an earlier `mcp_list_tools` of the conversation still holds
    key: str = ""


@dataclass(frozen=True)
class Plan:
    listings: list[Listing]
    toolset: ToolSet
    tools: list[dict[str, Any]]  # every tool, as the model sees them after the first turn
    first_tools: list[dict[str, Any]]
    first_choice: str | dict[str, Any]
    search: ToolIndex | None = None  # the deferred tools, with a tool_search tool
    first_prompt_tokens: int = 0  # as measured before the response started (0: not measured)


@dataclass
class Run:
    """The request (parsed once), the plan (tools listed, ``tool_choice`` resolved: nothing can
    fail it with a 4xx any more), the conversation the loop extends and the response state.

    `stream` holds the response's items and events; every response object handed out or stored
    is one of its snapshots.
    """

    request: ResponsesRequest
    context: ParsableContext
    plan: Plan
    # What the request's tool sources borrow (remote sessions), given back by `release`; made
    # from the request's servers unless the caller already holds the scope.
    sources: RequestSources | None = None
    trace: ResponseTrace | None = None  # timings, with VLLM_MCP_TRACE=1
    owner: str | None = None  # the key hash of the caller that created it (`access.Caller`)
    # Anthropic's context editing (set by /v1/messages) and what it cleared (loop/context_edits.py)
    context_edits: ContextEdits | None = None
    applied_edits: AppliedEdits = field(default_factory=AppliedEdits)
    generate: bool = True  # False: lists tools and ends at once (a WebSocket ``generate: false`` warm-up)
    # The context's held tokens are the engine's from the previous response (a WebSocket
    # connection's memory): the first turn continues them instead of rendering everything.
    keeps_held: bool = False
    stream: ResponseStream = field(init=False)

    def __post_init__(self) -> None:
        self.stream = ResponseStream(self.request)
        if self.sources is None:
            self.sources = RequestSources(use.source for use in self.request.servers)

    @property
    def id(self) -> str:
        return self.request.id

    def snapshot(self) -> Response:
        """The response as it stands: queued, in progress, or final."""
        if self.stream.final is not None:
            return self.stream.final
        return self.stream.snapshot("in_progress" if self.stream.started else "queued")

    def release(self) -> None:
        """Give back the remote MCP sessions the request borrowed (idempotent)."""
        assert self.sources is not None
        self.sources.close()
