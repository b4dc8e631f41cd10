"""Guardrail hooks: operator code called before each MCP call (see, change or refuse the
arguments), after it (see, change or refuse the result) and on the final answer.

A hook is a class the tool-server file names (``"module.path:Name"``, or the name of an entry
point in the ``vllm_mcp_ext.guardrails`` group) with any of the three async methods of
`Guardrail`. Each call of a hook is bounded by ``guardrailTimeout``; a hook that raises or runs
past it refuses (fails closed), and the refusal reaches the model as the tool's error and the
client as the call's error. Hooks never see the caller's key, only its hash.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import Any, TypeVar

from vllm_mcp_ext.errors import ConfigError

logger = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "vllm_mcp_ext.guardrails"
T = TypeVar("T")


@dataclass(frozen=True)
class CallInfo:
    """Who calls what: the same for every hook of one call."""

    response_id: str
    caller: str | None  # the hash of the caller's API key (never the key); None without --api-key
    server_label: str
    tool: str  # the MCP tool's own name


@dataclass(frozen=True)
class Refuse:
    """A hook's no: ``reason`` reaches the model and the client as the call's error."""

    reason: str


@dataclass(frozen=True)
class Arguments:
    value: dict[str, Any]


@dataclass(frozen=True)
class Result:
    """A call's result as the model reads it (``text``) and as the client's item carries it."""

    text: str
    is_error: bool = False


@dataclass(frozen=True)
class Answer:
    response_id: str
    caller: str | None
    text: str


class Guardrail:
    """Override any of these; returning None (the default) lets the value through unchanged."""

    async def before_call(self, call: CallInfo, arguments: Arguments) -> Arguments | Refuse | None:
        return None

    async def after_call(self, call: CallInfo, result: Result) -> Result | Refuse | None:
        return None

    async def on_answer(self, answer: Answer) -> Answer | Refuse | None:
        return None


class Guardrails:
    """The configured hooks, run in order, each bounded by ``timeout`` seconds."""

    def __init__(self, hooks: Sequence[Guardrail], timeout: float):
        self.hooks = tuple(hooks)
        self.timeout = timeout

    def __bool__(self) -> bool:
        return bool(self.hooks)

    @property
    def checks_answers(self) -> bool:
        return any(type(h).on_answer is not Guardrail.on_answer for h in self.hooks)

    async def before_call(self, call: CallInfo, arguments: dict[str, Any]) -> dict[str, Any] | Refuse:
        value = Arguments(arguments)
        for hook in self.hooks:
            out = await self._run(hook, "before_call", hook.before_call(call, value))
            if isinstance(out, Refuse):
                return out
            value = out or value
        return value.value

    async def after_call(self, call: CallInfo, result: Result) -> Result | Refuse:
        for hook in self.hooks:
            out = await self._run(hook, "after_call", hook.after_call(call, result))
            if isinstance(out, Refuse):
                return out
            result = out or result
        return result

    async def on_answer(self, answer: Answer) -> Answer | Refuse:
        for hook in self.hooks:
            out = await self._run(hook, "on_answer", hook.on_answer(answer))
            if isinstance(out, Refuse):
                return out
            answer = replace(answer, text=out.text) if out else answer
        return answer

    async def _run(self, hook: Guardrail, stage: str, step: Awaitable[T]) -> T | Refuse:
        name = type(hook).__name__
        try:
            return await asyncio.wait_for(step, self.timeout)
        except TimeoutError:
            logger.warning("guardrail %s.%s took longer than %gs: refused", name, stage, self.timeout)
            return Refuse(f"guardrail {name} did not answer within {self.timeout:g}s")
        except Exception:
            logger.exception("guardrail %s.%s failed: refused", name, stage)
            return Refuse(f"guardrail {name} failed")


NONE = Guardrails((), 0.0)


def load_guardrails(names: Sequence[str], timeout: float) -> Guardrails:
    """Instantiate each named hook at start-up. Raises `ConfigError` naming the one that fails."""
    return Guardrails([_load(name) for name in names], timeout) if names else NONE


def _load(name: str) -> Guardrail:
    target = _resolve(name)
    hook = target() if isinstance(target, type) else target
    if not isinstance(hook, Guardrail):
        raise ConfigError(f"policy.guardrails: {name!r} is not a vllm_mcp_ext.policy.guardrails.Guardrail")
    return hook


def _resolve(name: str) -> Any:
    if ":" not in name:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            raise ConfigError(
                f"policy.guardrails: {name!r} is neither 'module:Name' nor an entry point of {ENTRY_POINT_GROUP}"
            )
        return found[0].load()
    module, _, attr = name.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"policy.guardrails: cannot load {name!r}: {exc}") from None
