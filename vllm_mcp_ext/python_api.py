"""The in-process front door: vLLM's engine and the MCP loop in your own Python program.

``McpEngine(...).responses`` takes the keyword arguments of the ``openai`` SDK's
``client.responses`` and returns its types, with no HTTP in between: the same loop, items,
events and response store as ``/v1/responses`` of the plugin server. See docs/python-api.md.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, cast

from openai.types.responses import CompactedResponse, Response, ResponseStreamEvent
from pydantic import BaseModel

from vllm_mcp_ext import _compat
from vllm_mcp_ext.config import tool_server_config
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import McpExtError
from vllm_mcp_ext.runtime import Runtime

__all__ = ["McpEngine", "ResponseEvents", "Responses"]

# Arguments of the openai SDK's methods that shape the HTTP call, not the request.
_TRANSPORT_ONLY = ("extra_headers", "extra_query", "timeout")


class McpEngine:
    """vLLM's engine plus the MCP tool loop, in this process.

    ``McpEngine("Qwen/Qwen3-8B", tool_server="mcp.json", tool_call_parser="hermes",
    enable_auto_tool_choice=True)`` takes what ``vllm serve`` takes, by argument name
    (``--max-model-len 4096`` is ``max_model_len=4096``), and ``tool_server`` as
    ``--tool-server`` takes it, or an ``mcp.json`` path or dict. ``engine=`` reuses an
    `AsyncLLM` you built (it is not shut down on exit). Use it as ``async with``.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        tool_server: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        engine: Any = None,
        settings: Settings | None = None,
        **vllm_args: Any,
    ):
        if model is None and engine is None:
            raise TypeError("McpEngine needs a model name or path, or engine=AsyncLLM")
        if engine is not None and model is None:
            model = engine.model_config.model
        self._args = _compat.serve_args(model, vllm_args)
        self._config = tool_server_config(tool_server)
        self._settings = settings
        self._engine = engine
        self._owned_engine: Any = None  # the context manager of an engine we started
        self._runtime: Runtime | None = None
        self.responses = Responses(self)

    async def start(self) -> McpEngine:
        if self._runtime is not None:
            return self
        if self._engine is None:
            self._owned_engine = _compat.start_engine(self._args)
            self._engine = await self._owned_engine.__aenter__()
        try:
            state = await _compat.serving_state(self._engine, self._args)
            runtime = await Runtime.start(state, self._config, self._settings)
            if runtime is None:
                raise McpExtError("this engine cannot generate text")
            self._runtime = runtime
        except BaseException:
            await self.aclose()
            raise
        return self

    async def aclose(self) -> None:
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            await runtime.aclose()
        owned, self._owned_engine = self._owned_engine, None
        if owned is not None:
            self._engine = None
            await owned.__aexit__(None, None, None)

    async def __aenter__(self) -> McpEngine:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("McpEngine is not started: use `async with McpEngine(...)` or `await start()`")
        return self._runtime

    @property
    def model_name(self) -> str:
        return self.runtime.service.turns.model_name


class Responses:
    """``client.responses`` of the ``openai`` SDK, served in process.

    Errors a client can cause raise `vllm_mcp_ext.errors.McpExtError` subclasses carrying the
    HTTP ``status``, ``code`` and ``param`` the server would answer with.
    """

    def __init__(self, engine: McpEngine):
        self._engine = engine

    async def create(self, **kwargs: Any) -> Any:
        """A `Response`; with ``stream=True``, the `ResponseEvents` of one instead."""
        if kwargs.get("stream") is True:
            return await self.stream(**kwargs).start()
        service = self._engine.runtime.service
        run = await service.prepare(_body(kwargs, stream=False))
        if run.request.background:
            return await service.start_background(run)
        return await service.complete(run)

    def stream(self, **kwargs: Any) -> ResponseEvents:
        """The response's typed events as the HTTP stream carries them, ``async for``-able;
        ``async with`` it to be sure its work stops when you stop reading."""
        return ResponseEvents(self._engine, _body(kwargs, stream=True))

    async def retrieve(self, response_id: str) -> Response:
        record = await self._engine.runtime.service.stored.get(response_id)
        return _response(record.response)

    async def delete(self, response_id: str) -> None:
        await self._engine.runtime.service.stored.delete(response_id)

    async def cancel(self, response_id: str) -> Response:
        return _response(await self._engine.runtime.service.stored.cancel(response_id))

    async def compact(self, **kwargs: Any) -> CompactedResponse:
        """The conversation of ``input`` / ``previous_response_id`` compacted by the model, as
        ``POST /v1/responses/compact`` answers it: the user messages and a compaction item."""
        body = {k: v for k, v in _body(kwargs, stream=False).items() if k != "stream"}
        compacted = await self._engine.runtime.service.compact(body)
        return cast(CompactedResponse, _parsed(CompactedResponse, compacted.to_wire()))


class ResponseEvents:
    """One response's stream of `ResponseStreamEvent` values. Closing it early (leaving
    ``async with``, ``aclose()``) cancels the response's engine requests and MCP calls, as a
    client that disconnects does."""

    def __init__(self, engine: McpEngine, body: dict[str, Any]):
        self._engine = engine
        self._body = body
        self._events: AsyncIterator[Any] | None = None
        self.final: Response | None = None

    async def start(self) -> ResponseEvents:
        """Validate the request (raising its 4xx error now) before the first event is read."""
        if self._events is None:
            service = self._engine.runtime.service
            run = await service.prepare(self._body)
            if run.request.background:
                await service.start_background(run)
                self._events = service.stored.follow(run.id, None)  # stored wire events
            else:
                self._events = service.stream(run)
        return self

    async def __aenter__(self) -> ResponseEvents:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> ResponseEvents:
        return self

    async def __anext__(self) -> ResponseStreamEvent:
        await self.start()
        assert self._events is not None
        event = _event(await self._events.__anext__())
        response = getattr(event, "response", None)
        if isinstance(response, Response):
            self.final = response
        return event

    async def get_final_response(self) -> Response:
        """Read to the end; the response as ``response.completed`` (or its like) carries it."""
        async for _ in self:
            pass
        assert self.final is not None
        return self.final

    async def aclose(self) -> None:
        events, self._events = self._events, None
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


def _body(kwargs: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """The JSON body the ``openai`` SDK would send for these keyword arguments."""
    body = {k: _plain(v) for k, v in kwargs.items() if k not in (*_TRANSPORT_ONLY, "extra_body")}
    body.update(_plain(kwargs.get("extra_body") or {}))
    body["stream"] = stream
    return {k: v for k, v in body.items() if v is not None}


def _plain(value: Any) -> Any:
    """SDK objects (items of an earlier response's ``output``, typed params) as JSON values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _response(wire: dict[str, Any]) -> Response:
    """A stored response (wire JSON) as the SDK's type."""
    return _parsed(Response, wire)


def _event(event: Any) -> ResponseStreamEvent:
    """Live events are typed already; a background response's are read back from the store."""
    if isinstance(event, BaseModel):
        return cast(ResponseStreamEvent, event)
    return cast(ResponseStreamEvent, _parsed(ResponseStreamEvent, event))


def _parsed(kind: Any, wire: Any) -> Any:
    # The openai SDK's own lenient parsing, as its HTTP client does with a body: our incomplete
    # reasons ("max_tool_calls") lie outside its Literal types.
    from openai._models import construct_type

    return construct_type(type_=kind, value=wire)
