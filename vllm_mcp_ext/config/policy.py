"""The tool-server file's ``policy`` section and each server's ``approvals``: rules an operator
sets once for every request (docs/policy.md).

```json
{"policy": {"approvals": {"readOnly": "never", "destructive": "always", "requestMayLoosen": []},
            "guardrails": ["examples.guardrails.redact_email:RedactEmails"],
            "guardrailTimeout": 5, "audit": "store", "maxResponseSeconds": 1800},
 "mcpServers": {"fs": {"command": "...", "approvals": {"openWorld": "never"}}}}
```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mcp import types

from vllm_mcp_ext.errors import ConfigError

Ask = Literal["always", "never"]
Category = Literal["readOnly", "destructive", "openWorld", "other"]
CATEGORIES: tuple[Category, ...] = ("readOnly", "destructive", "openWorld", "other")
AuditSink = Literal["store", "log", "off"]

DEFAULT_GUARDRAIL_TIMEOUT = 5.0  # seconds one guardrail hook may take before the call is refused
DEFAULT_MAX_RESPONSE_SECONDS = 1800.0  # a response's whole run, every turn and call included
DEFAULT_AUDIT: AuditSink = "store"


@dataclass(frozen=True)
class ApprovalRules:
    """Whether a tool of each annotation category asks before it runs, when a request sets no
    ``require_approval``; and the categories where a request may ask less than this."""

    asks: Mapping[Category, Ask] = field(default_factory=dict)
    request_may_loosen: frozenset[Category] = frozenset()

    def merged(self, override: ApprovalRules | None) -> ApprovalRules:
        """A server's own rules over the global ones, category by category."""
        if override is None:
            return self
        return ApprovalRules(
            {**self.asks, **override.asks}, override.request_may_loosen | self.request_may_loosen
        )


@dataclass(frozen=True)
class Policy:
    approvals: ApprovalRules | None = None  # None: OpenAI's default, a request without one asks
    guardrails: tuple[str, ...] = ()  # "module.path:Name" or an entry point name
    guardrail_timeout: float = DEFAULT_GUARDRAIL_TIMEOUT
    audit: AuditSink = DEFAULT_AUDIT
    max_response_seconds: float = DEFAULT_MAX_RESPONSE_SECONDS


def parse_policy(section: Any, where: str = "policy") -> Policy:
    if section is None:
        return Policy()
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: must be an object")
    allowed = {"approvals", "guardrails", "guardrailTimeout", "audit", "maxResponseSeconds"}
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (allowed: {sorted(allowed)})")
    guardrails = section.get("guardrails", [])
    if not isinstance(guardrails, list) or not all(isinstance(g, str) and g for g in guardrails):
        raise ConfigError(f"{where}: field 'guardrails' must be a list of 'module:Name' or entry point names")
    audit = section.get("audit", DEFAULT_AUDIT)
    if audit not in ("store", "log", "off"):
        raise ConfigError(f"{where}: field 'audit' must be 'store', 'log' or 'off'")
    return Policy(
        approvals=parse_approvals(section.get("approvals"), f"{where}.approvals"),
        guardrails=tuple(guardrails),
        guardrail_timeout=_seconds(section, "guardrailTimeout", DEFAULT_GUARDRAIL_TIMEOUT, where),
        audit=audit,
        max_response_seconds=_seconds(section, "maxResponseSeconds", DEFAULT_MAX_RESPONSE_SECONDS, where),
    )


def parse_approvals(section: Any, where: str) -> ApprovalRules | None:
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: must be an object of category -> 'always' | 'never'")
    asks: dict[Category, Ask] = {}
    for key, value in section.items():
        if key == "requestMayLoosen":
            continue
        if key not in CATEGORIES:
            raise ConfigError(
                f"{where}: unknown field {key!r} (allowed: {[*CATEGORIES, 'requestMayLoosen']})"
            )
        if value not in ("always", "never"):
            raise ConfigError(f"{where}: field {key!r} must be 'always' or 'never'")
        asks[key] = value
    loosen = section.get("requestMayLoosen", [])
    if loosen is True:
        loosen = list(CATEGORIES)
    if not isinstance(loosen, list) or any(c not in CATEGORIES for c in loosen):
        raise ConfigError(f"{where}: field 'requestMayLoosen' must be true or a list of {list(CATEGORIES)}")
    return ApprovalRules(asks, frozenset(loosen))


def _seconds(section: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where}: field {key!r} must be a positive number of seconds")
    return float(value)


# -- what the approval rules say of one tool ------------------------------------------------


def category_of(tool: types.Tool, *, trusted: bool = True) -> Category:
    """The tool's category by its hints, with the MCP spec's defaults for a missing hint (not
    read-only, destructive, open-world). A server we do not trust (a request's ``server_url``)
    could call anything read-only: its hints are ignored, as if it gave none."""
    hints = tool.annotations if trusted else None
    if hints is not None and hints.read_only_hint:
        return "readOnly"
    if hints is None or hints.destructive_hint is not False:
        return "destructive"
    if hints.open_world_hint is not False:
        return "openWorld"
    return "other"


def asks(
    rules: ApprovalRules | None,
    tool: types.Tool,
    requested: Callable[[types.Tool], bool] | None,
    *,
    trusted: bool = True,
) -> bool:
    """Whether the call waits for the user. ``requested`` is the request's own
    ``require_approval`` (None when it set none); without operator rules it decides alone, and
    absent both, every call asks (OpenAI's default)."""
    if rules is None:
        return True if requested is None else requested(tool)
    category = category_of(tool, trusted=trusted)
    operator = rules.asks.get(category, "always") == "always"
    if requested is None:
        return operator
    if requested(tool):
        return True  # a request may always ask more than the operator
    return operator and category not in rules.request_may_loosen
