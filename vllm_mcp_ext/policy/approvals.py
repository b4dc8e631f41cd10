"""Approvals from MCP tool annotations: an operator's rule per category applies when a request
sets no ``require_approval``; a request may always ask more, and ask less only in the categories
the operator lets it."""

from __future__ import annotations

from collections.abc import Callable

from mcp import types

from vllm_mcp_ext.config.policy import ApprovalRules, Category


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
