"""Model turns for chat-template models: vLLM renders the conversation with the model's template,
the engine generates, and the configured tool and reasoning parsers turn text into parts.

This is the single "render the next turn" step of the loop. A harmony (gpt-oss) implementation
would provide the same `run_turn`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from vllm_mcp_ext._compat import ChatCompletionRequest, EngineSeam
from vllm_mcp_ext.engine.parts import (
    Part,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    TurnEnd,
    TurnRequest,
    TurnUsage,
)
from vllm_mcp_ext.errors import InvalidRequest


class ModelTurns(Protocol):
    model_name: str

    def run_turn(self, turn: TurnRequest) -> AsyncIterator[Part]: ...


class ChatTemplateTurns:
    def __init__(self, seam: EngineSeam):
        self._seam = seam
        self.model_name = seam.model_name

    async def run_turn(self, turn: TurnRequest) -> AsyncIterator[Part]:
        request = self._chat_request(turn)
        generation = await self._seam.start(request, turn.request_id)
        parser = generation.parser
        output_ids: list[int] = []
        prompt_tokens, cached, finish = len(generation.prompt_token_ids), 0, None
        raw_text: list[str] = []  # what the model wrote, for a turn the parser made nothing of
        parsed_any = False
        async for result in generation.outputs:
            if result.prompt_token_ids is not None:
                prompt_tokens = len(result.prompt_token_ids)
            cached = result.num_cached_tokens or cached
            for output in result.outputs:
                token_ids = list(output.token_ids)
                output_ids.extend(token_ids)
                finish = output.finish_reason
                raw_text.append(output.text)
                if parser is None:
                    if output.text:
                        yield TextDelta(output.text)
                    continue
                delta = parser.parse_delta(
                    delta_text=output.text,
                    delta_token_ids=token_ids,
                    request=request,
                    prompt_token_ids=result.prompt_token_ids,
                    finished=finish is not None,
                )
                if delta is None:
                    continue
                parsed_any = parsed_any or bool(delta.reasoning or delta.content or delta.tool_calls)
                if delta.reasoning:
                    yield ReasoningDelta(delta.reasoning)
                if delta.content:
                    yield TextDelta(delta.content)
                for call in delta.tool_calls:
                    function = call.function
                    yield ToolCallDelta(
                        index=call.index,
                        name=function.name if function else None,
                        arguments=(function.arguments or "") if function else "",
                    )
        if parser is not None and not parsed_any and "".join(raw_text).strip():
            # e.g. a `<tool_call>` without valid JSON: the tool parser keeps it back, but nothing
            # the model wrote is dropped (vLLM's non-streaming chat returns it as content too).
            yield TextDelta("".join(raw_text))
        usage = TurnUsage(
            prompt_tokens=prompt_tokens,
            cached_tokens=cached,
            output_tokens=len(output_ids),
            reasoning_tokens=parser.count_reasoning_tokens(output_ids) if parser else 0,
        )
        yield TurnEnd(finish_reason=finish, usage=usage)

    def _chat_request(self, turn: TurnRequest) -> ChatCompletionRequest:
        try:
            return ChatCompletionRequest(
                model=self.model_name,
                messages=turn.messages,  # type: ignore[arg-type]
                tools=turn.tools or None,  # type: ignore[arg-type]
                tool_choice=turn.tool_choice if turn.tools else "none",  # type: ignore[arg-type]
                max_completion_tokens=turn.max_tokens,
                temperature=turn.temperature,
                top_p=turn.top_p,
                parallel_tool_calls=turn.parallel_tool_calls,
                response_format=turn.response_format,  # type: ignore[arg-type]
                stream=True,
                seed=None,
            )
        except ValueError as exc:
            raise InvalidRequest(f"invalid request for the model: {exc}") from None
