"""Tool search: tools with ``defer_loading`` stay out of the prompt until the model finds them.

The model sees one more function, `TOOL_SEARCH` (``tool_search``, with a ``query``), beside the
tools loaded up front. A call to it runs here, in the loop: the deferred tools are ranked by
BM25 (k1 1.2, b 0.75) over the words of their name and description (split at case changes,
underscores and other non-alphanumerics, lower-cased), and the best `DEFAULT_LIMIT` that match
any word come back. Their definitions reach the model as the search's tool result, that is after
everything the engine already holds, so the KV prefix of the turn stays exact (the tools list in
the system prompt never changes within a response); from then on the model may call them.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openai.types.responses.function_tool import FunctionTool
from openai.types.responses.tool import Mcp

if TYPE_CHECKING:
    from vllm_mcp_ext.loop.toolset import ToolSet

TOOL_SEARCH = "tool_search"
DEFAULT_LIMIT = 5  # tools one search returns
MAX_LIMIT = 20
_K1, _B = 1.2, 0.75

SEARCH_FUNCTION: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": TOOL_SEARCH,
        "description": (
            "Search for more tools by what they do. The tools found are described in the result "
            "and can be called from then on."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Words that describe the tool you need."},
                "limit": {
                    "type": "integer",
                    "description": f"At most this many tools (default {DEFAULT_LIMIT}).",
                },
            },
            "required": ["query"],
        },
    },
}


def words(text: str) -> list[str]:
    """Search terms: ``getIssueComments`` and ``get_issue_comments`` both give get, issue, comments."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return re.findall(r"[a-z0-9]+", spaced.lower())


@dataclass(frozen=True)
class Deferred:
    """A tool kept out of the prompt: its function definition as the model would see it, and
    where it comes from (an MCP server's label, or None for a client's function tool)."""

    function: dict[str, Any]  # chat-completions form
    server_label: str | None = None
    tool_name: str | None = None  # an MCP tool's own name (the model's may carry a prefix)

    @property
    def name(self) -> str:
        return str(self.function["function"]["name"])

    def text(self) -> str:
        return f"{self.name} {self.function['function'].get('description') or ''}"


class ToolIndex:
    """BM25 over the deferred tools' names and descriptions."""

    def __init__(self, tools: list[Deferred]):
        self.tools = tools
        self._terms = [Counter(words(t.text())) for t in tools]
        lengths = [sum(c.values()) for c in self._terms]
        self._avg = (sum(lengths) / len(lengths)) if lengths else 0.0
        self._lengths = lengths
        frequency: Counter[str] = Counter()
        for terms in self._terms:
            frequency.update(terms.keys())
        n = len(tools)
        self._idf = {t: math.log(1 + (n - df + 0.5) / (df + 0.5)) for t, df in frequency.items()}

    def search(self, query: str, limit: int = DEFAULT_LIMIT) -> list[Deferred]:
        """The best-matching tools, best first; ties keep the order the tools were listed in."""
        asked = set(words(query))
        scored = []
        for i, terms in enumerate(self._terms):
            score = sum(self._term_score(t, terms, self._lengths[i]) for t in asked if t in terms)
            if score > 0:
                scored.append((-score, i))
        return [self.tools[i] for _, i in sorted(scored)[: max(1, min(limit, MAX_LIMIT))]]

    def _term_score(self, term: str, terms: Counter[str], length: int) -> float:
        tf = terms[term]
        norm = _K1 * (1 - _B + _B * length / self._avg) if self._avg else _K1
        return self._idf[term] * tf * (_K1 + 1) / (tf + norm)


@dataclass(frozen=True)
class SearchCall:
    """One ``tool_search`` call's arguments, read leniently (the model wrote them)."""

    query: str
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, arguments: str) -> SearchCall:
        try:
            value = json.loads(arguments or "{}")
        except (ValueError, RecursionError):
            return cls("")
        if not isinstance(value, dict):
            return cls("")
        limit = value.get("limit")
        query = value.get("query")
        return cls(
            query if isinstance(query, str) else "",
            limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else DEFAULT_LIMIT,
        )


def offered(
    toolset: ToolSet,
    deferred_servers: Collection[str],
    function_tools: Sequence[dict[str, Any]],
    deferred_functions: Collection[str],
) -> tuple[list[dict[str, Any]], ToolIndex]:
    """With a tool_search tool: the tools the prompt shows (those loaded up front, then the
    search function) and the index of those with ``defer_loading``."""
    deferred = [
        Deferred(t.function_param(), t.server_label, t.name)
        for t in toolset.tools
        if t.server_label in deferred_servers
    ]
    loaded = [t.function_param() for t in toolset.tools if t.server_label not in deferred_servers]
    for function in function_tools:
        if function["function"]["name"] in deferred_functions:
            deferred.append(Deferred(function))
        else:
            loaded.append(function)
    return [*loaded, SEARCH_FUNCTION], ToolIndex(deferred)


def found_tools(found: list[Deferred]) -> list[Any]:
    """The ``tools`` of a ``tool_search_output`` item: one ``mcp`` tool per server, allowing
    the tools found on it, and each function tool as sent."""
    by_server: dict[str, list[str]] = {}
    functions: list[Any] = []
    for tool in found:
        if tool.server_label is None:
            spec = tool.function["function"]
            functions.append(
                FunctionTool(
                    type="function",
                    name=spec["name"],
                    description=spec.get("description") or None,
                    parameters=spec.get("parameters"),
                    strict=None,
                )
            )
        else:
            by_server.setdefault(tool.server_label, []).append(tool.tool_name or tool.name)
    servers = [Mcp(type="mcp", server_label=label, allowed_tools=names) for label, names in by_server.items()]
    return [*servers, *functions]


def result_text(found: list[Deferred]) -> str:
    """The search's tool result: the found tools' definitions, one JSON object a line."""
    if not found:
        return "No tools matched. Try other words."
    lines = [json.dumps(t.function["function"], ensure_ascii=False) for t in found]
    return f"Found {len(found)} tools; they can be called now:\n" + "\n".join(lines)
