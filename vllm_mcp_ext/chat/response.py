"""The core's typed Responses events and final `Response`, as chat completion chunks and bodies.

What stock chat clients read is stock: ``message.content`` (every text the model wrote, its final
answer last), ``message.tool_calls`` with ``finish_reason: "tool_calls"`` for function tools the
client runs, ``usage`` summed over the turns. What the plugin adds is in extra fields they ignore:

- ``message.mcp_calls`` (streamed: ``delta.mcp_calls``, one chunk per call when it is done): the
  MCP calls the server ran, ``{"id", "server_label", "name", "arguments", "output", "error",
  "approval_request_id"}`` (``error`` is null or ``{"type", "message"[, "code"]}``).
- ``message.mcp_approval_requests`` (streamed: ``delta.mcp_approval_requests``): calls waiting
  for the client's approval, ``{"id", "server_label", "name", "arguments"}``; the completion
  then ends with ``finish_reason: "stop"``. The client answers in its next request (see
  `chat.request`).
- ``message.reasoning`` (streamed: ``delta.reasoning``): reasoning text, as vLLM names it.
"""

from __future__ import annotations

from typing import Any, Literal

from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import (
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
)
from openai.types.completion_usage import CompletionUsage, PromptTokensDetails
from openai.types.responses import Response, ResponseStreamEvent

from vllm_mcp_ext.errors import McpExtError


def completion_id(response_id: str) -> str:
    return "chatcmpl-" + response_id.removeprefix("resp_")


def mcp_call_entry(item: Any) -> dict[str, Any]:
    """An ``mcp_call`` output item as ``message.mcp_calls`` shows it."""
    data = item.model_dump(mode="json", exclude={"type", "status"})
    return {
        k: data.get(k)
        for k in ("id", "server_label", "name", "arguments", "output", "error", "approval_request_id")
    }


def approval_entry(item: Any) -> dict[str, Any]:
    return item.model_dump(mode="json", include={"id", "server_label", "name", "arguments"})


FinishReason = Literal["stop", "length", "tool_calls"]


def finish_reason(response: Response) -> FinishReason:
    if response.status == "incomplete":
        return "length"
    return "tool_calls" if any(i.type == "function_call" for i in response.output) else "stop"


def usage(response: Response) -> CompletionUsage | None:
    if response.usage is None:
        return None
    u = response.usage
    return CompletionUsage(
        prompt_tokens=u.input_tokens,
        completion_tokens=u.output_tokens,
        total_tokens=u.total_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=u.input_tokens_details.cached_tokens),
    )


class Failed(McpExtError):
    """The response failed after it started (an engine error): a 500 with the core's message."""


def failure(response: Response) -> Failed:
    message = response.error.message if response.error else "the response failed"
    return Failed(message, code=response.error.code if response.error else None)


# -- non-streaming ----------------------------------------------------------------------------


def completion(response: Response) -> ChatCompletion:
    """The final response as one chat completion; `Failed` when it failed."""
    if response.status == "failed":
        raise failure(response)
    texts: list[str] = []
    reasoning: list[str] = []
    extra: dict[str, list[dict[str, Any]]] = {"mcp_calls": [], "mcp_approval_requests": []}
    calls: list[dict[str, Any]] = []
    for item in response.output:
        if item.type == "message":
            texts += [p.text for p in item.content if p.type == "output_text"]
        elif item.type == "reasoning":
            reasoning += [p.text for p in item.content or []]
        elif item.type == "mcp_call":
            extra["mcp_calls"].append(mcp_call_entry(item))
        elif item.type == "mcp_approval_request":
            extra["mcp_approval_requests"].append(approval_entry(item))
        elif item.type == "function_call":
            function = {"name": item.name, "arguments": item.arguments}
            calls.append({"id": item.call_id, "type": "function", "function": function})
    message = ChatCompletionMessage.model_validate(
        {
            "role": "assistant",
            "content": "".join(texts) if texts or not calls else None,
            "tool_calls": calls or None,
            "reasoning": "".join(reasoning) if reasoning else None,
            **extra,
        }
    )
    choice = Choice(index=0, message=message, finish_reason=finish_reason(response), logprobs=None)
    return ChatCompletion(
        id=completion_id(response.id),
        object="chat.completion",
        created=int(response.created_at),
        model=response.model,
        choices=[choice],
        usage=usage(response),
    )


# -- streaming --------------------------------------------------------------------------------


class ChunkWriter:
    """One completion's chunks from the core's events: the one state object of the stream
    (the completion's id, the next tool-call index)."""

    def __init__(self, include_usage: bool):
        self.include_usage = include_usage
        self.id = ""
        self.created = 0
        self.model = ""
        self.tool_calls = 0

    def chunks(self, event: ResponseStreamEvent) -> list[ChatCompletionChunk]:
        """The chunks ``event`` makes (most make none); `Failed` for a failed response."""
        if event.type == "response.created":
            r = event.response
            self.id, self.created, self.model = completion_id(r.id), int(r.created_at), r.model
            return [self._chunk(ChoiceDelta(role="assistant", content=""))]
        if event.type == "response.output_text.delta":
            return [self._chunk(ChoiceDelta(content=event.delta))]
        if event.type == "response.reasoning_text.delta":
            return [self._chunk(ChoiceDelta(reasoning=event.delta))]  # type: ignore[call-arg]
        if event.type == "response.output_item.done":
            return self._item(event.item)
        if event.type in ("response.completed", "response.incomplete"):
            return self._end(event.response)
        if event.type == "response.failed":
            raise failure(event.response)
        return []

    def _item(self, item: Any) -> list[ChatCompletionChunk]:
        if item.type == "mcp_call":
            return [self._chunk(ChoiceDelta(mcp_calls=[mcp_call_entry(item)]))]  # type: ignore[call-arg]
        if item.type == "mcp_approval_request":
            return [self._chunk(ChoiceDelta(mcp_approval_requests=[approval_entry(item)]))]  # type: ignore[call-arg]
        if item.type == "function_call":
            function = ChoiceDeltaToolCallFunction(name=item.name, arguments=item.arguments)
            call = ChoiceDeltaToolCall(
                index=self.tool_calls, id=item.call_id, type="function", function=function
            )
            self.tool_calls += 1
            return [self._chunk(ChoiceDelta(tool_calls=[call]))]
        return []

    def _end(self, response: Response) -> list[ChatCompletionChunk]:
        chunks = [self._chunk(ChoiceDelta(), finish_reason(response))]
        if self.include_usage:
            chunks.append(self._chunk(None, usage=usage(response)))
        return chunks

    def _chunk(
        self, delta: ChoiceDelta | None, finish: FinishReason | None = None, **extra: Any
    ) -> ChatCompletionChunk:
        choices = (
            [] if delta is None else [ChunkChoice(index=0, delta=delta, finish_reason=finish, logprobs=None)]
        )  # type: ignore[arg-type]
        return ChatCompletionChunk(
            id=self.id,
            object="chat.completion.chunk",
            created=self.created,
            model=self.model,
            choices=choices,
            **extra,
        )


def chunk_wire(chunk: ChatCompletionChunk) -> dict[str, Any]:
    """A chunk as stock servers send it: set fields only, ``finish_reason`` always."""
    data = chunk.model_dump(mode="json", exclude_unset=True)
    for choice in data.get("choices", []):
        choice.setdefault("finish_reason", None)
    return data


def completion_wire(body: ChatCompletion) -> dict[str, Any]:
    return body.model_dump(mode="json")
