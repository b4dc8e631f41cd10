"""What a response's MCP calls answer for their servers (`servers.client_handlers.ClientHandlers`).

* `ResponseSampler`: ``sampling/createMessage`` on the response's own engine and model, within
  the server's caps (`config.client_features.SamplingPolicy`); its tokens count in the response's
  ``usage``, each sampling shows in the response's trace, and closing the sampler (the response
  ended, was cancelled, or its client left) cancels the sampling still running.
* `ProgressRelay`: a call's ``notifications/progress`` as ``response.mcp_call.progress`` events,
  for a request that opted in (`events.progress`); it wakes the loop, which is waiting for the
  calls, so the events stream while the calls run.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Collection
from typing import Any

from mcp import types

from vllm_mcp_ext.engine.turns import ModelTurns
from vllm_mcp_ext.events import ResponseStream
from vllm_mcp_ext.events.progress import McpCallProgress
from vllm_mcp_ext.observe import trace
from vllm_mcp_ext.servers.client_handlers import refuse_sampling
from vllm_mcp_ext.types.client_handlers import Progress, SamplingAnswer
from vllm_mcp_ext.types.parts import TextDelta, TurnEnd, TurnRequest

_STOP_REASONS = {"stop": "endTurn", "length": "maxTokens"}


class ResponseSampler:
    def __init__(self, turns: ModelTurns, response_id: str, model: str, stream: ResponseStream):
        self.turns = turns
        self.response_id = response_id
        self.model = model
        self.stream = stream
        self.used = 0  # output tokens sampled for this response, all servers together
        self._trace = trace.current()  # the loop's; sampling runs in the MCP session's task
        self._numbers = itertools.count()
        self._running: set[asyncio.Task[SamplingAnswer]] = set()
        self._closed = False

    async def sample(
        self, server: str, params: types.CreateMessageRequestParams, budget: int
    ) -> SamplingAnswer:
        """`types.client_handlers.Sample`: ``params.max_tokens`` is already within the server's
        per-request cap; ``budget`` is its cap on all sampling of this response."""
        if self._closed:
            return refuse_sampling("the response has ended")
        room = budget - self.used
        if room <= 0:
            return refuse_sampling(f"this response's sampling budget of {budget} tokens is spent")
        messages = chat_messages(params)
        if isinstance(messages, types.ErrorData):
            return messages
        cap = min(params.max_tokens, room)
        start = time.perf_counter()
        task = asyncio.create_task(self._generate(messages, params, cap))
        self._running.add(task)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()  # the server cancelled its request, or the session closed
            if self._closed:
                return refuse_sampling("the response has ended")
            raise
        finally:
            self._running.discard(task)
            if self._trace is not None:
                self._trace.calls.append(
                    trace.CallTrace(server, "sampling/createMessage", start, time.perf_counter())
                )

    async def _generate(
        self, messages: list[dict[str, Any]], params: types.CreateMessageRequestParams, cap: int
    ) -> SamplingAnswer:
        turn = TurnRequest(
            request_id=f"{self.response_id}-sampling-{next(self._numbers)}",
            messages=messages,
            tools=[],
            tool_choice="none",
            max_tokens=cap,
            temperature=params.temperature,
            model=self.model,
        )
        text: list[str] = []
        end: TurnEnd | None = None
        async for part in self.turns.run_turn(turn):
            if isinstance(part, TextDelta):
                text.append(part.text)
            elif isinstance(part, TurnEnd):
                end = part
        assert end is not None
        self.stream.usage.add(end.usage)
        self.used += end.usage.output_tokens
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="".join(text)),
            model=self.model,
            stop_reason=_STOP_REASONS.get(end.finish_reason or "", end.finish_reason),
        )

    def close(self) -> None:
        self._closed = True
        for task in self._running:
            task.cancel()


def chat_messages(params: types.CreateMessageRequestParams) -> list[dict[str, Any]] | types.ErrorData:
    """The request as chat messages: its system prompt, then its text messages. Tools and
    non-text content are refused (we declare neither)."""
    if params.tools:
        return refuse_sampling("tools in sampling are not supported")
    messages: list[dict[str, Any]] = []
    if params.system_prompt:
        messages.append({"role": "system", "content": params.system_prompt})
    for message in params.messages:
        blocks = message.content if isinstance(message.content, list) else [message.content]
        if not all(isinstance(b, types.TextContent) for b in blocks):
            return refuse_sampling("only text content is supported")
        text = "".join(b.text for b in blocks if isinstance(b, types.TextContent))
        messages.append({"role": message.role, "content": text})
    return messages


class ProgressRelay:
    def __init__(self, stream: ResponseStream):
        self.stream = stream
        self._news = asyncio.Event()

    def for_item(self, index: int) -> Progress:
        async def report(progress: float, total: float | None, message: str | None) -> None:
            self.stream.mcp_call_progress(
                index, McpCallProgress(progress=progress, total=total, message=message)
            )
            self._news.set()

        return report

    async def while_running(self, calls: Collection[asyncio.Future[Any]]) -> AsyncIterator[None]:
        """Until every call is done, once per batch of progress the stream got meanwhile."""
        pending = {c for c in calls if not c.done()}
        while pending:
            news = asyncio.ensure_future(self._news.wait())
            try:
                _, pending = await asyncio.wait({*pending, news}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                news.cancel()
            pending.discard(news)
            if self._news.is_set():
                self._news.clear()
                yield
