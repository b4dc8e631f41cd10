"""The agent loop: list tools, then model turn -> MCP calls -> model turn ... until an answer.

`AgentLoop.prepare` does everything that can still fail the request with a 400 (listing tools,
resolving ``tool_choice``); `AgentLoop.events` then streams the response. The non-streaming
response is the last event of the same stream.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mcp import types
from openai.types.responses import ResponseStreamEvent

from vllm_mcp_ext import observe
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.engine.fit import (
    MeasuresPrompts,
    PromptSize,
    cut_result,
    result_budget,
    token_counter,
    too_long,
)
from vllm_mcp_ext.engine.turns import ModelTurns
from vllm_mcp_ext.errors import ContextTooLong, InvalidRequest, McpExtError
from vllm_mcp_ext.events import ResponseStream
from vllm_mcp_ext.events.ids import new_id
from vllm_mcp_ext.events.stream import response_error_code
from vllm_mcp_ext.loop.approvals import CANNOT_ASK, PendingApproval, denial_text
from vllm_mcp_ext.loop.calls import (
    CallOutcome,
    parse_arguments,
    protocol_error,
    refused,
    run_call,
    unknown_tool,
    with_text,
)
from vllm_mcp_ext.loop.compaction import COMPACT_MAX_TOKENS, COMPACT_PROMPT, DEFAULT_SHARE, Summary, compacted
from vllm_mcp_ext.loop.compaction import encode as encode_compaction
from vllm_mcp_ext.loop.context import ListedServer, ParsableContext, WaitingCall, allowed_key
from vllm_mcp_ext.loop.context_edits import AppliedEdits, ContextEdits
from vllm_mcp_ext.loop.context_edits import apply as apply_edits
from vllm_mcp_ext.loop.elicitation import (
    EXPIRED,
    CallGate,
    ElicitationReply,
    HeldCall,
    HeldCalls,
    PendingElicitation,
    request_item,
    settle,
)
from vllm_mcp_ext.loop.guards import CallGuard, again, with_note
from vllm_mcp_ext.loop.run import Listing, Plan, Run
from vllm_mcp_ext.loop.server_requests import ProgressRelay, ResponseSampler
from vllm_mcp_ext.loop.tool_search import TOOL_SEARCH, SearchCall, ToolIndex, found_tools, offered
from vllm_mcp_ext.loop.tool_search import result_text as search_result_text
from vllm_mcp_ext.loop.toolset import ExposedTool, ServerTools, ToolSet, filter_allowed, listed_tool
from vllm_mcp_ext.loop.turn import PendingCall, TurnBuilder
from vllm_mcp_ext.observe import metrics, spans
from vllm_mcp_ext.policy.audit import AuditRecord, Outcome, Stopwatch
from vllm_mcp_ext.policy.guardrails import Answer, CallInfo, Refuse, Result
from vllm_mcp_ext.policy.operator import OperatorPolicy
from vllm_mcp_ext.servers.remote import RemoteSource
from vllm_mcp_ext.types.client_handlers import ClientHandlers, InputRound, Resume
from vllm_mcp_ext.types.parts import TextDelta, TurnEnd, TurnRequest, TurnUsage
from vllm_mcp_ext.types.request import ApprovalDecision, ForcedTool, McpServerUse, ResponsesRequest
from vllm_mcp_ext.types.source import Code, ServerUnavailable

logger = logging.getLogger(__name__)


@dataclass
class _Budget:
    """What one response has spent, what bounds it, and who it runs for."""

    guard: CallGuard
    deadline: float = math.inf  # time.monotonic() past which it ends (policy maxResponseSeconds)
    owner: str | None = None  # the caller's key hash, for guardrails and the audit record
    calls_made: int = 0
    tokens_used: int = 0
    turns: int = 0
    found: dict[str, None] = field(default_factory=dict)  # tools tool_search loaded, in order
    edits: ContextEdits | None = None  # Anthropic's context editing (loop/context_edits.py)
    applied: AppliedEdits = field(default_factory=AppliedEdits)
    last_turn_tokens: int = 0  # the last turn's prompt and output: the next prompt's estimate

    def room(self, req: ResponsesRequest) -> int | None:
        return None if req.max_tool_calls is None else max(req.max_tool_calls - self.calls_made, 0)

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.0)

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.deadline


class AgentLoop:
    def __init__(
        self,
        turns: ModelTurns,
        settings: Settings,
        policy: OperatorPolicy | None = None,
        held: HeldCalls | None = None,
    ):
        self.turns = turns
        self.settings = settings
        self.policy = policy or OperatorPolicy()
        # calls waiting for the user's answers (loop.elicitation)
        self.held = held if held is not None else HeldCalls()

    # -- before the response starts -------------------------------------------------------

    async def prepare(self, req: ResponsesRequest, context: ParsableContext, *, measure: bool = True) -> Plan:
        """The plan; ``measure``: a first turn that cannot fit is a 400 now (`compact` measures
        its own turn instead)."""
        plan = await self._plan(req, context)
        return await self._check_fits(req, context, plan) if measure else plan

    async def _check_fits(self, req: ResponsesRequest, context: ParsableContext, plan: Plan) -> Plan:
        """A first turn that cannot fit the context window is the client's to fix: a 400 with
        the counts, before the response starts (a turn resuming approved calls is not checked:
        its prompt waits for their results)."""
        if context.resuming or not isinstance(self.turns, MeasuresPrompts):
            return plan
        first = self._turn_request(req, context, plan, self._budget(), 0, plan.first_tools, plan.first_choice)
        size = await self.turns.prompt_size(first)
        if size is not None and not size.fits:
            raise too_long(size)
        return plan if size is None else replace(plan, first_prompt_tokens=size.tokens)

    def _budget(self) -> _Budget:
        return _Budget(CallGuard(self.settings.max_repeated_calls))

    async def _plan(self, req: ResponsesRequest, context: ParsableContext) -> Plan:
        listings = await asyncio.gather(*(self._list(use, context) for use in req.servers))
        function_names = [t["function"]["name"] for t in req.function_tools]
        toolset = ToolSet.build(
            (ServerTools(x.label, x.tools) for x in listings if x.error is None),
            reserved=function_names + ([TOOL_SEARCH] if req.tool_search else []),
        )
        tools, search = _offered(req, toolset)
        choice = req.tool_choice
        if not isinstance(choice, ForcedTool) or context.resuming:
            # A turn that resumes approved calls is not forced to call again.
            return Plan(
                list(listings),
                toolset,
                tools,
                tools,
                "auto" if isinstance(choice, ForcedTool) else choice,
                search,
            )
        if choice.kind == "function":
            if choice.name not in function_names:
                raise InvalidRequest(
                    f"tool_choice names function {choice.name!r}, which is not in tools",
                    param="tool_choice",
                )
            return Plan(list(listings), toolset, tools, tools, _named(choice.name), search)
        listing = next(x for x in listings if x.label == choice.server_label)
        if listing.error is not None:
            raise InvalidRequest(
                f"tool_choice names MCP server {choice.server_label!r}, which is unavailable: "
                f"{listing.error}",
                param="tool_choice",
            )
        if choice.name is None:  # any tool of that server
            server_tools = [t.function_param() for t in toolset.tools if t.server_label == listing.label]
            return Plan(list(listings), toolset, tools, server_tools, "required", search)
        forced = toolset.find(listing.label, choice.name)
        if forced is None:
            allowed = ", ".join(t.name for t in listing.tools) or "none"
            raise InvalidRequest(
                f"tool_choice names tool {choice.name!r} of server {listing.label!r}, which is not "
                f"among its allowed tools ({allowed})",
                param="tool_choice.name",
            )
        return Plan(list(listings), toolset, tools, tools, _named(forced.exposed_name), search)

    async def _list(self, use: McpServerUse, context: ParsableContext) -> Listing:
        key = allowed_key(use.allowed) + (f" denied {sorted(use.denied)}" if use.denied else "")
        earlier = context.listed.get(use.label)
        if earlier is not None and _still_listed(earlier, key, use.allowed):
            return Listing(use.label, _shown(earlier.tools, use), None, True, key)
        try:
            tools = await use.source.current_tools()
        except ServerUnavailable as exc:
            return Listing(use.label, (), exc.message, key=key)
        return Listing(use.label, _shown(tools, use), None, key=key)

    # -- the response ---------------------------------------------------------------------

    async def events(self, run: Run) -> AsyncIterator[ResponseStreamEvent]:
        """The response's events, made on ``run.stream``; ``run.context`` grows with each turn."""
        req, plan, stream = run.request, run.plan, run.stream
        if not run.keeps_held:
            run.context.held = None  # held tokens serve the turns of one response
        stream.start()
        for listing in plan.listings:
            if listing.cached:
                continue
            stream.list_tools(listing.label, [listed_tool(t) for t in listing.tools], listing.error)
            if listing.error is None:
                run.context.listed[listing.label] = ListedServer(listing.label, listing.tools, listing.key)
        for event in stream.take():
            yield event
        if not run.generate:
            stream.finish()
            for event in stream.take():
                yield event
            return
        try:
            async for event in self._respond(req, run.context, plan, stream, run):
                yield event
        except McpExtError as exc:
            stream.fail(response_error_code(exc.code, exc.status), exc.message)
        except Exception:
            logger.exception("response %s failed", req.id)
            stream.fail("server_error", "The server failed while generating this response.")
        for event in stream.take():
            yield event

    async def _respond(
        self, req: ResponsesRequest, context: ParsableContext, plan: Plan, stream: ResponseStream, run: Run
    ) -> AsyncIterator[ResponseStreamEvent]:
        budget = self._budget()
        budget.edits, budget.applied = run.context_edits, run.applied_edits
        budget.deadline = time.monotonic() + self.policy.max_response_seconds
        budget.owner = run.owner
        asks = _ServerRequests(
            ResponseSampler(self.turns, req.id, req.model, stream),
            ProgressRelay(stream) if req.mcp_progress else None,
            {} if req.mcp_elicitation else None,
        )
        try:
            async for event in self._turns(req, context, plan, stream, budget, asks):
                yield event
        finally:
            asks.sampler.close()
            metrics.loop_turns(budget.turns)

    async def _turns(
        self,
        req: ResponsesRequest,
        context: ParsableContext,
        plan: Plan,
        stream: ResponseStream,
        budget: _Budget,
        asks: _ServerRequests,
    ) -> AsyncIterator[ResponseStreamEvent]:
        resumed = context.resuming
        await self._resume_held(req, context, plan, stream, budget, asks)
        self.held.drop(context.answered, budget.owner)  # questions the conversation moved past
        for event in stream.take():
            yield event
        if context.waiting:  # some approvals are still unanswered
            stream.finish(None)
            return
        tools, choice = (plan.tools, "auto") if resumed else (plan.first_tools, plan.first_choice)
        for turn_number in range(self.settings.max_turns):
            turn = TurnBuilder(
                stream,
                plan.toolset,
                {t["function"]["name"] for t in req.function_tools},
                req.servers[0].label if req.servers else "",
                _approval_check(req),
                searching=plan.search is not None,
                hold_answers=self.policy.guardrails.checks_answers,
            )
            running: dict[str, asyncio.Task[CallOutcome]] = {}
            if await self._compact_if_due(req, context, plan, budget, stream, turn_number):
                for event in stream.take():
                    yield event
            self._edit_context(context, plan, budget, turn_number)
            budget.turns += 1
            try:
                try:
                    with spans.span("mcp.turn", **{"gen_ai.response.id": req.id, "mcp.turn": turn_number}):
                        async for part in self.turns.run_turn(
                            self._turn_request(req, context, plan, budget, turn_number, tools, choice)
                        ):
                            turn.feed(part)  # per token: the checks below cost nothing when idle
                            if turn.answer_to_check is not None:
                                await self._check_answer(turn, req, budget)
                            if turn.has_complete:
                                self._start(turn.take_complete(), running, req, plan, budget, asks)
                            for event in stream.take():
                                yield event
                            if budget.expired:
                                break  # the engine request is aborted as the turn's generator closes
                except ContextTooLong as exc:
                    # Past the first turn the client cannot fix the prompt: the response ends
                    # as one cut for length does (OpenAI's reasons are max_output_tokens and
                    # content_filter; running out of the window is running out of output room).
                    logger.info("response %s: %s; it ends incomplete", req.id, exc.message)
                    stream.finish("max_output_tokens")
                    return
                if turn.end is None:  # cut by the time bound: the engine reported nothing
                    turn.end = TurnEnd("abort", TurnUsage())
                turn.close()
                await self._check_answer(turn, req, budget)
                self._start(turn.take_complete(), running, req, plan, budget, asks)
                for event in stream.take():
                    yield event
                if asks.progress is not None:  # progress events stream while the calls run
                    watched = asks.watch(running)
                    try:
                        async for _ in asks.progress.while_running(watched):
                            for event in stream.take():
                                yield event
                    finally:
                        for future in set(watched) - set(running.values()):
                            future.cancel()  # a watcher of call or question, not the call
                assert turn.end is not None
                stream.usage.add(turn.end.usage)
                if req.response_messages and turn.end.raw is not None:
                    stream.add_raw_turn(turn.end.raw)
                budget.tokens_used += turn.end.usage.output_tokens
                budget.last_turn_tokens = turn.end.usage.prompt_tokens + turn.end.usage.output_tokens
                # the next prompt continues what the engine holds after this turn
                context.append_turn(turn.assistant_message(), turn.end.held)
                if turn_number + 2 == self.settings.max_turns:
                    budget.guard.last_turn_next()  # the last turn answers
                await self._finish_calls(turn, running, context, stream, req, budget, plan, asks)
                for call in turn.calls:
                    if call.kind == "approval" and call.tool is not None:
                        metrics.approval(_metrics_label(req, call.tool.server_label), "requested")
            finally:
                for task in running.values():
                    task.cancel()
            for event in stream.take():
                yield event
            if budget.expired:
                stream.finish(MAX_RESPONSE_TIME)
                return
            finish = _after_turn(turn, req, context, budget)
            if finish is not None:
                stream.finish(finish.incomplete_reason)
                return
            tools, choice = self._next_tools(req, plan, budget)
        stream.finish("max_turns")

    async def _check_answer(self, turn: TurnBuilder, req: ResponsesRequest, budget: _Budget) -> None:
        """The operator's answer guardrails on each message the turn holds back."""
        while turn.answer_to_check is not None:
            answer = Answer(req.id, budget.owner, turn.answer_to_check)
            checked = await self.policy.guardrails.on_answer(answer)
            turn.release(checked.text if isinstance(checked, Answer) else withheld(checked.reason))

    async def _compact_if_due(
        self,
        req: ResponsesRequest,
        context: ParsableContext,
        plan: Plan,
        budget: _Budget,
        stream: ResponseStream,
        turn_number: int,
    ) -> bool:
        """Compaction: past the threshold, the model summarizes the conversation (a turn without
        tools) into a compaction item, and the conversation goes on from it. A summary turn that
        cannot fit the window is skipped: the turn goes on (and ends the response ``incomplete``
        if it cannot fit either)."""
        threshold = req.compact_threshold
        if threshold is None:
            return False
        if not threshold and isinstance(self.turns, MeasuresPrompts):
            threshold = int(self.turns.context_window * DEFAULT_SHARE)
        estimate = budget.last_turn_tokens if turn_number else plan.first_prompt_tokens
        if not threshold or estimate < threshold:
            return False
        turn = self._summary_turn(req, context, plan, budget, turn_number)
        if (size := await self._too_long(turn)) is not None:
            logger.info(
                "response %s: not compacted: the summary turn (%d tokens) cannot fit", req.id, size.tokens
            )
            return False
        index = stream.open_compaction()
        summary = await self._summarize(req.id, turn_number, turn)
        stream.usage.add(summary.usage)
        stream.close_compaction(index, encode_compaction(summary.text))
        context.messages = compacted(context.messages, summary.text)
        context.held = None
        budget.last_turn_tokens = 0
        return True

    async def compact(self, run: Run) -> Summary:
        """``POST /v1/responses/compact``: the summary turn alone, over the run's conversation
        (which it leaves as it is). A summary prompt past the context window is a 400 before
        anything runs (measured once: the turn takes that rendering)."""
        turn = self._summary_turn(run.request, run.context, run.plan, self._budget(), 0)
        if (size := await self._too_long(turn)) is not None:
            raise ContextTooLong(
                f"The conversation to compact is {size.tokens} tokens with the summary "
                f"instruction, but the model's context window is {size.context_window} tokens: "
                "it cannot be summarized in one turn. Compact before it grows this long.",
                param="input",
            )
        return await self._summarize(run.request.id, 0, turn)

    async def _too_long(self, turn: TurnRequest) -> PromptSize | None:
        """The turn's size when its prompt cannot fit the window; None when it fits or the engine
        cannot tell. The engine keeps the rendering for the turn (one render)."""
        if not isinstance(self.turns, MeasuresPrompts):
            return None
        size = await self.turns.prompt_size(turn)
        return size if size is not None and not size.fits else None

    def _summary_turn(
        self, req: ResponsesRequest, context: ParsableContext, plan: Plan, budget: _Budget, turn_number: int
    ) -> TurnRequest:
        """The turn in which the model summarizes the conversation for itself: without tools, on
        the whole conversation rendered anew, at most `COMPACT_MAX_TOKENS`."""
        messages = [*context.model_messages(), {"role": "user", "content": COMPACT_PROMPT}]
        return replace(
            self._turn_request(req, context, plan, budget, turn_number, [], "none"),
            request_id=f"{req.id}-compact-{turn_number}",
            messages=messages,
            max_tokens=COMPACT_MAX_TOKENS,
            response_format=None,
            held=None,
        )

    async def _summarize(self, response_id: str, turn_number: int, turn: TurnRequest) -> Summary:
        text: list[str] = []
        usage = TurnUsage()
        with spans.span("mcp.compact", **{"gen_ai.response.id": response_id, "mcp.turn": turn_number}):
            async for part in self.turns.run_turn(turn):
                if isinstance(part, TextDelta):
                    text.append(part.text)
                elif isinstance(part, TurnEnd):
                    usage = part.usage
        return Summary("".join(text).strip(), usage)

    def _edit_context(self, context: ParsableContext, plan: Plan, budget: _Budget, turn_number: int) -> None:
        """Anthropic's context edits, before a turn; an edited conversation renders anew."""
        if budget.edits is None:
            return
        count = token_counter(self.turns)
        estimate = budget.last_turn_tokens if turn_number else plan.first_prompt_tokens
        if not estimate:
            estimate = sum(count(str(m.get("content") or "")) for m in context.model_messages())
        if apply_edits(budget.edits, context.messages, estimate, count, budget.applied):
            context.held = None

    def _next_tools(
        self, req: ResponsesRequest, plan: Plan, budget: _Budget
    ) -> tuple[list[dict[str, Any]], str | dict[str, Any]]:
        """The next turn's tools: all of them, or, once tools are off (max_tool_calls spent or
        calls repeated: loop/guards.py), only the client's function tools, so the model answers."""
        if budget.guard.off is None:
            return plan.tools, "auto"
        return req.function_tools, "auto" if req.function_tools else "none"

    def _turn_request(
        self,
        req: ResponsesRequest,
        context: ParsableContext,
        plan: Plan,
        budget: _Budget,
        turn_number: int,
        tools: list[dict[str, Any]],
        choice: str | dict[str, Any],
    ) -> TurnRequest:
        return TurnRequest(
            request_id=f"{req.id}-{turn_number}",
            messages=context.model_messages(),
            tools=tools,
            tool_choice=choice,
            max_tokens=None if req.max_output_tokens is None else req.max_output_tokens - budget.tokens_used,
            temperature=req.temperature,
            top_p=req.top_p,
            parallel_tool_calls=req.parallel_tool_calls,
            response_format=req.response_format,
            reasoning_effort=req.reasoning_effort,
            engine_options=req.engine_options,
            truncate=req.truncation == "auto",
            model=req.model,
            logprobs=req.output_logprobs,
            held=context.held,
            tool_servers={t.exposed_name: (t.server_label, t.name) for t in plan.toolset.tools},
            loaded_tools=tuple(t["function"]["name"] for t in tools) + tuple(budget.found),
        )

    # -- calls ----------------------------------------------------------------------------

    def _start(
        self,
        calls: list[PendingCall],
        running: dict[str, asyncio.Task[CallOutcome]],
        req: ResponsesRequest,
        plan: Plan,
        budget: _Budget,
        asks: _ServerRequests,
    ) -> None:
        """Start each call the moment its arguments are complete (early tool execution), while
        the model keeps generating. Calls that wait for approval never start here."""
        guard = budget.guard
        for call in calls:
            if call.kind not in ("mcp", "unknown") or guard.off is not None:
                continue  # tools off: a call the model writes anyway does not run
            earlier = guard.earlier_run(call.exposed_name, call.arguments)
            if earlier is not None:
                running[call.call_id] = asyncio.create_task(again(earlier))
                continue
            room = budget.room(req)
            if (room is not None and room <= 0) or budget.expired:
                continue
            budget.calls_made += 1
            task = asyncio.create_task(
                self._call(
                    req,
                    budget,
                    plan.toolset,
                    call.tool,
                    call.exposed_name,
                    call.arguments,
                    asks.handlers(call.output_index, call.call_id),
                )
            )
            running[call.call_id] = task
            guard.ran(call.exposed_name, call.arguments, task)

    async def _finish_calls(
        self,
        turn: TurnBuilder,
        running: dict[str, asyncio.Task[CallOutcome]],
        context: ParsableContext,
        stream: ResponseStream,
        req: ResponsesRequest,
        budget: _Budget,
        plan: Plan,
        asks: _ServerRequests,
    ) -> None:
        """Close the turn's call items in order; the conversation gets their results (each cut
        to the tool-result budget). Once tools go off, the last result tells the model so. A call
        whose server asks the user something pauses (`_outcome_or_pause`)."""
        waiting: list[WaitingCall] = []
        skipped = False
        tools_were_on = budget.guard.off is None
        for call in turn.calls:
            if call.kind == "function":
                waiting.append(WaitingCall(call.call_id))
            elif call.kind == "search":
                assert plan.search is not None
                asked = SearchCall.parse(call.arguments)
                found = plan.search.search(asked.query, asked.limit)
                budget.found.update((t.name, None) for t in found)
                stream.tool_search_output(call.call_id, found_tools(found))
                waiting.append(WaitingCall(call.call_id, search_result_text(found)))
            elif call.kind == "approval":
                assert call.tool is not None and call.approval_id is not None
                approval = PendingApproval(
                    call.approval_id, call.call_id, call.tool.server_label, call.tool.name, call.arguments
                )
                waiting.append(WaitingCall(call.call_id, approval=approval))
            elif call.call_id in running:
                assert call.tool is not None or call.kind == "unknown"
                label, name = (
                    (call.tool.server_label, call.tool.name) if call.tool else ("", call.exposed_name)
                )
                started = PendingElicitation(
                    "", call.call_id, label, name, call.arguments, "form", item_id=call.call_id
                )
                task, gate = running[call.call_id], asks.gate(call.call_id)
                result = await self._outcome_or_pause(task, gate, started, budget, stream, call.output_index)
                if isinstance(result, PendingElicitation):
                    del running[call.call_id]  # it goes on, held (loop.elicitation)
                    waiting.append(WaitingCall(call.call_id, elicitation=result))
                    continue
                waiting.append(WaitingCall(call.call_id, self._for_model(result)))
            else:
                skipped = True
                stream.close_mcp_call_skipped(call.output_index)
                waiting.append(WaitingCall(call.call_id, NOT_RUN_LIMIT if tools_were_on else NOT_RUN_OFF))
        if skipped or budget.room(req) == 0:
            budget.guard.limit_reached()
        shown = [w for w in waiting if w.approval is None and w.result is not None]
        if shown and (note := budget.guard.note_for_model()) is not None:
            assert shown[-1].result is not None
            shown[-1].result = with_note(shown[-1].result, note)
        context.wait_for(waiting)

    def _for_model(self, outcome: CallOutcome) -> str | list[dict[str, Any]]:
        """A tool result as the model sees it: cut to VLLM_MCP_MAX_TOOL_RESULT_TOKENS (the item
        keeps it whole)."""
        budget = result_budget(self.settings.max_tool_result_tokens, self.turns)
        text = cut_result(outcome.model_text, budget, self.turns)
        return (
            outcome.model_content
            if text is outcome.model_text
            else replace(outcome, model_text=text).model_content
        )

    async def _resume_held(
        self,
        req: ResponsesRequest,
        context: ParsableContext,
        plan: Plan,
        stream: ResponseStream,
        budget: _Budget,
        asks: _ServerRequests,
    ) -> None:
        """The work the last response left waiting for the user, resumed with the user's
        answers, one kind of answer after the other: approvals (`_approved`), then answers to
        the servers' questions (`_replied`). Each resumed call's item closes with its outcome
        and the model gets its result, or it pauses again on a new question."""
        for kind in (self._approved, self._replied):
            calls = await kind(req, context, plan, stream, budget, asks)
            await self._settle_resumed(calls, context, budget, stream)

    async def _approved(
        self,
        req: ResponsesRequest,
        context: ParsableContext,
        plan: Plan,
        stream: ResponseStream,
        budget: _Budget,
        asks: _ServerRequests,
    ) -> list[_Resumed]:
        """The user's answers to earlier approval requests: approved calls run now, exactly as
        the model asked for them; denied ones tell the model so."""
        pending = context.pending()
        approved: list[tuple[PendingApproval, int]] = []
        for answer in context.answers:
            approval = pending[answer.approval_id]
            context.answered.add(answer.approval_id)
            decision = "approved" if answer.approve else "denied"
            metrics.approval(_metrics_label(req, approval.server_label), decision)
            if not answer.approve:
                context.give_result(approval.call_id, denial_text(answer.reason))
                await self._audit(
                    req, budget, approval.server_label, approval.name, Stopwatch(), None, "denied"
                )
                continue
            index = stream.open_whole_mcp_call(
                approval.server_label, approval.name, approval.arguments, approval.approval_id
            )
            approved.append((approval, index))
        context.answers = []
        budget.calls_made += len(approved)
        return [
            _Resumed(
                PendingElicitation(
                    "",
                    a.call_id,
                    a.server_label,
                    a.name,
                    a.arguments,
                    "form",
                    item_id=stream.output[index].id or "",
                ),
                index,
                self._start_call(
                    req, plan, budget, a.server_label, a.name, a.arguments, asks.handlers(index, a.call_id)
                ),
                asks.gate(a.call_id),
            )
            for a, index in approved
        ]

    async def _replied(
        self,
        req: ResponsesRequest,
        context: ParsableContext,
        plan: Plan,
        stream: ResponseStream,
        budget: _Budget,
        asks: _ServerRequests,
    ) -> list[_Resumed]:
        """The user's answers to the questions of servers whose calls wait (`loop.elicitation`):
        each held call gets its answer and goes on as a new ``mcp_call`` item; a 2026-07-28 call
        no longer held here resumes from its round's answer; any other fails, saying so."""
        asked = context.asking()
        resumed: list[_Resumed] = []
        for reply in context.replies:
            pending = asked[reply.elicitation_id]
            context.answered.add(reply.elicitation_id)
            index = stream.open_whole_mcp_call(
                pending.server_label,
                pending.name,
                pending.arguments,
                elicitation_request_id=reply.elicitation_id,
            )
            held = self.held.take(reply.elicitation_id, budget.owner)
            if held is not None:
                held.gate.answer(reply.result())
                resumed.append(_Resumed(pending, index, held.task, held.gate))
            elif pending.input_key is not None:
                task = self._resume(req, plan, budget, asks, pending, reply, index)
                resumed.append(_Resumed(pending, index, task, asks.gate(pending.call_id)))
            else:
                resumed.append(_Resumed(pending, index, None))
        context.replies = []
        return resumed

    async def _settle_resumed(
        self, calls: list[_Resumed], context: ParsableContext, budget: _Budget, stream: ResponseStream
    ) -> None:
        """Each resumed call's outcome, in order, to the model; a call with nothing left to
        resume fails saying its question expired; a call that asks again is held again."""
        held_again: set[str] = set()
        try:
            for resumed in calls:
                call, index, task = resumed.call, resumed.index, resumed.task
                result: CallOutcome | PendingElicitation
                if task is None:
                    result = protocol_error(Code.REQUEST_TIMEOUT, EXPIRED)
                    stream.close_mcp_call(index, result.output, result.error)
                else:
                    result = await self._outcome_or_pause(task, resumed.gate, call, budget, stream, index)
                if isinstance(result, PendingElicitation):
                    held_again.add(call.call_id)  # it goes on, held (loop.elicitation)
                    context.ask_again(call.call_id, result)
                else:
                    context.give_result(call.call_id, self._for_model(result))
        finally:
            for resumed in calls:
                if resumed.task is not None and resumed.call.call_id not in held_again:
                    resumed.task.cancel()  # done already, unless this response was cancelled

    def _resume(
        self,
        req: ResponsesRequest,
        plan: Plan,
        budget: _Budget,
        asks: _ServerRequests,
        pending: PendingElicitation,
        reply: ElicitationReply,
        index: int,
    ) -> asyncio.Task[CallOutcome]:
        """A 2026-07-28 call sent again with its round's answer (stateless: no held call needed)."""
        assert pending.input_key is not None
        resume = Resume(InputRound(pending.input_key, pending.request_state), reply.result())
        handlers = replace(asks.handlers(index, pending.call_id), resume=resume)
        return self._start_call(
            req, plan, budget, pending.server_label, pending.name, pending.arguments, handlers
        )

    def _start_call(
        self,
        req: ResponsesRequest,
        plan: Plan,
        budget: _Budget,
        server_label: str,
        name: str,
        arguments: str,
        handlers: ClientHandlers,
    ) -> asyncio.Task[CallOutcome]:
        """A resumed call, run as the model asked for it, in a task of its own."""
        tool = plan.toolset.find(server_label, name)
        return asyncio.create_task(self._call(req, budget, plan.toolset, tool, name, arguments, handlers))

    async def _outcome_or_pause(
        self,
        task: asyncio.Task[CallOutcome],
        gate: CallGate | None,
        call: PendingElicitation,
        budget: _Budget,
        stream: ResponseStream,
        index: int,
    ) -> CallOutcome | PendingElicitation:
        """The call's outcome, its item closed; or, when its server asks the user something first
        (elicitation ``ask``), the question: the item pauses, an ``mcp_elicitation_request``
        follows and the call is held for the response that brings the answer (past the bound on
        held calls, the question is declined and the call goes on)."""
        while True:
            try:
                outcome = await settle(task, gate, budget.remaining())
            except TimeoutError:
                task.cancel()
                await asyncio.wait({task}, timeout=2.0)
                outcome = self._out_of_time()
            if outcome is not None:
                stream.close_mcp_call(index, outcome.output, outcome.error)
                return outcome
            assert gate is not None and gate.question is not None
            question = gate.question
            pending = replace(
                call,
                elicitation_id=new_id("mcpe"),
                mode=question.mode or "form",
                requested_schema=getattr(question, "requested_schema", None),
                input_key=gate.round.key if gate.round is not None else None,
                request_state=gate.round.request_state if gate.round is not None else None,
            )
            if self.held.hold(HeldCall(pending, task, gate, budget.owner)):
                stream.pause_mcp_call(index)
                stream.elicitation_request(request_item(pending, question))
                return pending
            gate.answer(types.ElicitResult(action="decline"))

    async def _call(
        self,
        req: ResponsesRequest,
        budget: _Budget,
        toolset: ToolSet,
        tool: ExposedTool | None,
        name: str,
        arguments: str,
        handlers: ClientHandlers,
    ) -> CallOutcome:
        if tool is None:
            return unknown_tool(name, toolset)
        watch = Stopwatch()
        outcome: CallOutcome | None = None
        kind: Outcome = "cancelled"
        try:
            outcome, kind = await self._checked_call(req, budget, tool, arguments, handlers)
            return outcome
        finally:
            await self._audit(req, budget, tool.server_label, tool.name, watch, outcome, kind)

    async def _checked_call(
        self,
        req: ResponsesRequest,
        budget: _Budget,
        tool: ExposedTool,
        arguments: str,
        handlers: ClientHandlers,
    ) -> tuple[CallOutcome, Outcome]:
        """The call through the operator's rules and guardrails: before it, the call, after it."""
        parsed = parse_arguments(tool, arguments)
        if isinstance(parsed, CallOutcome):
            return parsed, "error"
        if _approval(req, tool) == "refuse":
            return refused(CANNOT_ASK), "refused"
        rails = self.policy.guardrails
        info = CallInfo(req.id, budget.owner, tool.server_label, tool.name)
        if rails:
            checked = await rails.before_call(info, parsed)
            if isinstance(checked, Refuse):
                return refused(checked.reason), "refused"
            parsed = checked
        source = next(use.source for use in req.servers if use.label == tool.server_label)
        outcome = await run_call(
            source, tool, parsed, max_output=self.settings.max_tool_output, handlers=handlers
        )
        if rails:
            after = await rails.after_call(info, Result(outcome.model_text, outcome.failed))
            if isinstance(after, Refuse):
                return refused(after.reason), "refused"
            outcome = with_text(outcome, after)
        return outcome, "error" if outcome.failed else "ok"

    async def _audit(
        self,
        req: ResponsesRequest,
        budget: _Budget,
        label: str,
        tool: str,
        watch: Stopwatch,
        outcome: CallOutcome | None,
        kind: Outcome,
    ) -> None:
        code = getattr(outcome.error, "code", None) if outcome is not None else None
        record = AuditRecord(
            watch.at,
            budget.owner,
            req.id,
            label,
            tool,
            kind,
            watch.ms(),
            code if isinstance(code, int) else None,
        )
        try:
            await asyncio.shield(self.policy.audit.record(record))
        except Exception:  # the call's result matters more than its record
            logger.exception("audit record of response %s failed", req.id)

    def _out_of_time(self) -> CallOutcome:
        seconds = self.policy.max_response_seconds
        return protocol_error(
            Code.REQUEST_TIMEOUT,
            f"the tool call was cancelled: the response reached its {seconds:g}s time limit",
        )


@dataclass(frozen=True)
class _Resumed:
    """A call that goes on with the user's answer: the call, its new item, and the work that
    brings its outcome (None: nothing waits for the answer any more) with its questions' gate."""

    call: PendingElicitation
    index: int
    task: asyncio.Task[CallOutcome] | None
    gate: CallGate | None = None


@dataclass(frozen=True)
class _ServerRequests:
    """What one response's calls answer for their servers (`loop.server_requests`)."""

    sampler: ResponseSampler
    progress: ProgressRelay | None  # None: the request did not opt in to progress events
    # each call's questions to the user, by call id; None: the request did not opt in to them
    gates: dict[str, CallGate] | None = None

    def handlers(self, output_index: int, call_id: str | None = None) -> ClientHandlers:
        progress = self.progress.for_item(output_index) if self.progress is not None else None
        elicit = None
        if self.gates is not None and call_id is not None:
            elicit = self.gates.setdefault(call_id, CallGate()).elicit
        return ClientHandlers(progress=progress, sample=self.sampler.sample, elicit=elicit)

    def gate(self, call_id: str) -> CallGate | None:
        return None if self.gates is None else self.gates.get(call_id)

    def watch(self, running: dict[str, asyncio.Task[CallOutcome]]) -> list[asyncio.Future[Any]]:
        """What to wait for while calls run: each call, or, for one that may ask the user,
        the call or its question, whichever comes first."""
        return [
            task
            if (gate := self.gate(call_id)) is None
            else asyncio.ensure_future(_done_or_asked(task, gate))
            for call_id, task in running.items()
        ]


async def _done_or_asked(task: asyncio.Task[CallOutcome], gate: CallGate) -> None:
    asked = asyncio.ensure_future(gate.asked.wait())
    try:
        await asyncio.wait({task, asked}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        asked.cancel()


def withheld(reason: str) -> str:
    """What the client reads instead of an answer a guardrail refused."""
    return f"[This answer was withheld by the server's policy: {reason}]"


MAX_RESPONSE_TIME = "max_response_time"  # incomplete_details.reason past policy maxResponseSeconds


NOT_RUN_LIMIT = "This tool call did not run: the response reached max_tool_calls."
NOT_RUN_OFF = "This tool call did not run: tools are off for the rest of this response."


@dataclass(frozen=True)
class Finish:
    """The response ends after this turn: completed (no reason) or incomplete for a reason."""

    incomplete_reason: str | None = None


def _after_turn(
    turn: TurnBuilder, req: ResponsesRequest, context: ParsableContext, budget: _Budget
) -> Finish | None:
    """What follows a model turn: the response finishes, or (None) the model runs again with the
    tool results (without tools once they are off, so it answers)."""
    assert turn.end is not None
    if context.waiting or not any(c.kind in ("mcp", "unknown", "search") for c in turn.calls):
        # An answer, a client function call, or calls waiting for approval: back to the client.
        return Finish("max_output_tokens" if turn.end.finish_reason == "length" else None)
    if req.max_output_tokens is not None and budget.tokens_used >= req.max_output_tokens:
        return Finish("max_output_tokens")
    return None


def _metrics_label(req: ResponsesRequest, label: str) -> str:
    """A server as metrics name it: remote servers all as one (a request names them freely)."""
    use = next((u for u in req.servers if u.label == label), None)
    remote = use is None or isinstance(use.source, RemoteSource)
    return observe.server_label(use.source.label if use is not None else label, remote=remote)


def _approval(req: ResponsesRequest, tool: ExposedTool) -> ApprovalDecision:
    """Whether a call of ``tool`` runs, waits for approval or is refused (`ApprovalPolicy.decide`):
    the turn asks it to show an approval request, the call to refuse where no one can approve."""
    return next(use.approval for use in req.servers if use.label == tool.server_label).decide(tool.tool)


def _approval_check(req: ResponsesRequest) -> Callable[[ExposedTool], bool]:
    return lambda tool: _approval(req, tool) == "ask"


def _shown(tools: Sequence[types.Tool], use: McpServerUse) -> tuple[types.Tool, ...]:
    """The server's tools that ``allowed_tools`` allows and ``denied_tools`` does not hide."""
    return tuple(t for t in filter_allowed(tools, use.allowed) if t.name not in use.denied)


def _still_listed(earlier: ListedServer, key: str, allowed: Any) -> bool:
    """Whether the conversation's earlier listing serves this request's ``allowed_tools``."""
    if earlier.allowed_key is not None:
        return earlier.allowed_key == key
    # Replayed by the client: its allowed_tools are unknown; it serves if it has every named tool.
    names = allowed if isinstance(allowed, list) else getattr(allowed, "tool_names", None)
    return names is None or {t.name for t in earlier.tools} >= set(names)


def _offered(req: ResponsesRequest, toolset: ToolSet) -> tuple[list[dict[str, Any]], ToolIndex | None]:
    """The tools the prompt shows, and the index of those with ``defer_loading`` (with a
    tool_search tool; the prompt then shows the search function instead of them)."""
    if not req.tool_search:
        return toolset.function_params() + req.function_tools, None
    later = {s.label for s in req.servers if s.deferred}
    return offered(toolset, later, req.function_tools, req.deferred_functions)


def _named(exposed_name: str | None) -> dict[str, Any]:
    return {"type": "function", "function": {"name": exposed_name}}
