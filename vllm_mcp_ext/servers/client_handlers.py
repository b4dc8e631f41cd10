"""The server-to-client half of MCP, as one session answers it: elicitation, sampling, progress, logs.

`types.client_handlers.ClientHandlers` is what whoever makes a tools/call (the loop, the ``/mcp``
gateway) lends the session for that call. One long-lived session serves many calls at once,
and MCP ties a server's request to no call (stdio never, HTTP only by the stream it came on, which
the SDK does not surface), so `InFlight` routes a request to the handlers of the calls in flight
when they all lend the same ones (one response's calls), and to none otherwise. Progress needs no
routing: the SDK matches each notification to its call by the call's progress token.

What a session does without handlers is the server's policy (`config.client_features`):
`policy_answer` for elicitation, a refusal for sampling. Log messages go to our log, labelled.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp import types

from vllm_mcp_ext.config.client_features import ClientFeatures
from vllm_mcp_ext.types.client_handlers import ClientHandlers, Elicit, Sample

logger = logging.getLogger(__name__)

LOG_TEXT_LIMIT = 2000  # characters of one server log message kept in our log
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}


class InFlight:
    """The handlers of the calls in flight on one session."""

    def __init__(self) -> None:
        self._calls: dict[int, ClientHandlers] = {}
        self._next = 0

    @contextmanager
    def track(self, handlers: ClientHandlers) -> Iterator[None]:
        key, self._next = self._next, self._next + 1
        self._calls[key] = handlers
        try:
            yield
        finally:
            del self._calls[key]

    def sampler(self) -> Sample | None:
        """The one ``sample`` every call in flight lends; None when none or several."""
        owners = {h.sample for h in self._calls.values()}
        return owners.pop() if len(owners) == 1 else None

    def elicitor(self) -> Elicit | None:
        owners = {h.elicit for h in self._calls.values()}
        return owners.pop() if len(owners) == 1 else None

    def __len__(self) -> int:
        return len(self._calls)


def policy_answer(features: ClientFeatures, params: types.ElicitRequestParams) -> types.ElicitResult:
    """The answer the server's elicitation policy gives, with no one to ask."""
    if features.elicitation == "accept_defaults" and isinstance(params, types.ElicitRequestFormParams):
        content = schema_defaults(params.requested_schema)
        if content is not None:
            return types.ElicitResult(action="accept", content=content)
    return types.ElicitResult(action="decline")


def schema_defaults(schema: dict[str, Any]) -> dict[str, Any] | None:
    """Each property's ``default``; None when a required property has none (a form that cannot
    be filled in without asking someone)."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        properties = {}
    content = {
        name: prop["default"]
        for name, prop in properties.items()
        if isinstance(prop, dict) and "default" in prop
    }
    required = schema.get("required")
    if isinstance(required, list) and any(name not in content for name in required):
        return None
    return content


def refuse_sampling(reason: str) -> types.ErrorData:
    return types.ErrorData(code=types.INVALID_REQUEST, message=f"Sampling refused: {reason}")


def log_message(label: str, params: types.LoggingMessageNotificationParams) -> None:
    """A server's ``notifications/message`` in our log, with the server's label."""
    data = params.data if isinstance(params.data, str) else json.dumps(params.data, default=str)
    if len(data) > LOG_TEXT_LIMIT:
        data = f"{data[:LOG_TEXT_LIMIT]}... [{len(data)} characters]"
    source = f"{label}/{params.logger}" if params.logger else label
    logger.log(_LEVELS.get(params.level, logging.INFO), "MCP server %s: %s", source, data)
