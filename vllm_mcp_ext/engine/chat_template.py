"""Model turns for chat-template models: vLLM renders the conversation with the model's template,
the engine generates, and the configured tool and reasoning parsers turn text into parts.

This is the single "render the next turn" step of the loop. A harmony (gpt-oss) implementation
would provide the same `run_turn`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Protocol

from vllm_mcp_ext._compat import ChatCompletionRequest, EngineSeam
from vllm_mcp_ext.engine.continuation import HeldTokens
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
from vllm_mcp_ext.trace import TurnTrace
from vllm_mcp_ext.trace import current as current_trace

logger = logging.getLogger(__name__)


class ModelTurns(Protocol):
    model_name: str

    def run_turn(self, turn: TurnRequest) -> AsyncIterator[Part]: ...


class ChatTemplateTurns:
    def __init__(self, seam: EngineSeam):
        self._seam = seam
        self.model_name = seam.model_name
        self._logged: set[str] = set()

    async def run_turn(self, turn: TurnRequest) -> AsyncIterator[Part]:
        record = TurnTrace(time.perf_counter()) if (trace := current_trace()) is not None else None
        request = self._chat_request(turn)
        generation = await self._seam.start(request, turn.request_id, turn.held)
        if generation.rewritten is not None:
            self._log_rewrite(generation.rewritten)
        parser = generation.parser
        output_ids: list[int] = []
        prompt_ids = generation.prompt_token_ids
        cached, finish = 0, None
        mark = time.perf_counter()
        if record is not None:
            record.render_s = mark - record.start
        raw_text: list[str] = []  # what the model wrote, for a turn the parser made nothing of
        parsed_any = False
        async for result in generation.outputs:
            if record is not None:
                now = time.perf_counter()
                record.engine_s += now - mark
                record.outputs += 1
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
            if record is not None:
                mark = time.perf_counter()
                record.plugin_s += mark - now
        if parser is not None and not parsed_any and "".join(raw_text).strip():
            # e.g. a `<tool_call>` without valid JSON: the tool parser keeps it back, but nothing
            # the model wrote is dropped (vLLM's non-streaming chat returns it as content too).
            yield TextDelta("".join(raw_text))
        usage = TurnUsage(
            prompt_tokens=len(prompt_ids),
            cached_tokens=cached,
            output_tokens=len(output_ids),
            reasoning_tokens=parser.count_reasoning_tokens(output_ids) if parser else 0,
        )
        held = None
        if generation.prompt_text is not None:
            held = HeldTokens(generation.prompt_text, prompt_ids, output_ids)
        if record is not None and trace is not None:
            record.end = time.perf_counter()
            record.prompt_tokens, record.cached_tokens = usage.prompt_tokens, cached
            record.output_tokens = usage.output_tokens
            record.continued, record.rewritten = generation.continued, generation.rewritten
            record.held_tokens = len(turn.held.token_ids) if generation.continued and turn.held else 0
            trace.turns.append(record)
        yield TurnEnd(finish_reason=finish, usage=usage, held=held)

    def _log_rewrite(self, reason: str) -> None:
        """Once per model and reason: the prefix cache then serves only part of each turn."""
        if reason in self._logged:
            return
        self._logged.add(reason)
        logger.info(
            "model %r: %s, so its tool turns re-render the whole conversation (the prefix cache "
            "serves only the part that renders the same)",
            self.model_name,
            reason,
        )

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
                reasoning_effort=turn.reasoning_effort,  # type: ignore[arg-type]
                stream=True,
                seed=None,
            )
        except ValueError as exc:
            raise InvalidRequest(f"invalid request for the model: {exc}") from None
