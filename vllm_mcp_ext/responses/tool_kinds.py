"""Tool types other than ``mcp`` and ``function`` in a request the loop serves, as stock vLLM
treats them.

- ``namespace``: a named group of function tools. The model sees each as a function named
  ``<namespace>__<name>`` (vLLM's ``flat_namespace_tool_name``); a call is reported as a
  ``function_call`` with the tool's own ``name`` and its ``namespace``, and such an item sent back
  as input is the flat name again.
- Hosted tools (``web_search``, ``file_search``, ``code_interpreter``...): vLLM never shows them
  to a model rendered with a chat template; they are checked, echoed in ``tools`` and ignored.
- ``custom`` (free-form text tools): not served beside ``mcp`` tools; a 400 that says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openai.types.responses.namespace_tool import NamespaceTool
from openai.types.responses.tool import Tool
from openai.types.responses.tool_search_tool import ToolSearchTool
from pydantic import TypeAdapter, ValidationError

from vllm_mcp_ext.errors import InvalidRequest, Unsupported

NAMESPACE_SEPARATOR = "__"  # vLLM's `flat_namespace_tool_name`
_TOOL = TypeAdapter(Tool)
_NAMESPACE = TypeAdapter(NamespaceTool)
_TOOL_SEARCH = TypeAdapter(ToolSearchTool)


@dataclass
class OtherTools:
    """What the request's non-MCP, non-function tools add to the loop's view."""

    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)  # flat -> (namespace, name)
    tool_search: bool = False  # a {"type": "tool_search"} tool: the loop runs the searches
    deferred: set[str] = field(default_factory=set)  # function names with defer_loading

    def function(self, raw: dict[str, Any], function: dict[str, Any]) -> dict[str, Any]:
        """A function tool; with ``defer_loading``, kept out of the prompt until searched for."""
        if raw.get("defer_loading") is True:
            self.deferred.add(function["function"]["name"])
        return function

    def add(self, raw: dict[str, Any], param: str) -> list[dict[str, Any]]:
        """The function tools (chat-completions form) the model sees for this tool."""
        kind = raw.get("type")
        if kind == "namespace":
            return self._namespace(_validated(_NAMESPACE, raw, param), param)
        if kind == "tool_search":
            search = _validated(_TOOL_SEARCH, raw, param)
            if search.execution == "client":
                raise Unsupported(
                    "tool_search with execution 'client' is not supported: the server runs the search",
                    param=f"{param}.execution",
                )
            self.tool_search = True
            return []
        if kind == "custom":
            raise Unsupported(
                "custom (free-form) tools are not supported beside mcp tools or in a continuation of "
                "an MCP response; without mcp tools, vLLM's own handler serves them",
                param=f"{param}.type",
            )
        _validated(_TOOL, raw, param)  # a hosted tool: checked and ignored, as stock does
        return []

    def _namespace(self, tool: NamespaceTool, param: str) -> list[dict[str, Any]]:
        functions = []
        for j, member in enumerate(tool.tools):
            if member.type != "function":
                continue  # stock shows a namespace's function tools only
            flat = f"{tool.name}{NAMESPACE_SEPARATOR}{member.name}"
            if flat in self.namespaced:
                raise InvalidRequest(f"tool {flat!r} appears twice", param=f"{param}.tools[{j}].name")
            self.namespaced[flat] = (tool.name, member.name)
            parameters = member.parameters or {"type": "object", "properties": {}}
            function = {"name": flat, "description": member.description or "", "parameters": parameters}
            if member.defer_loading:
                self.deferred.add(flat)
            functions.append({"type": "function", "function": function})
        return functions


def flat_call_name(item: dict[str, Any]) -> dict[str, Any]:
    """An input ``function_call`` of a namespace tool as the model saw it (its flat name)."""
    namespace = item.get("namespace")
    if item.get("type") != "function_call" or not isinstance(namespace, str) or not namespace:
        return item
    flat = f"{namespace}{NAMESPACE_SEPARATOR}{item.get('name', '')}"
    return {k: v for k, v in item.items() if k != "namespace"} | {"name": flat}


def resolve_function_choice(name: str, namespaced: dict[str, tuple[str, str]]) -> str:
    """``tool_choice {"type": "function", "name"}``: a namespace tool by its flat name or, when
    unambiguous, its own name (as vLLM resolves it)."""
    if name in namespaced:
        return name
    matches = [flat for flat, (_, own) in namespaced.items() if own == name]
    if len(matches) > 1:
        raise InvalidRequest(
            f"tool_choice {name!r} is defined in more than one namespace ({', '.join(matches)}); "
            "select it by its full '<namespace>__<name>' name",
            param="tool_choice.name",
        )
    return matches[0] if matches else name


def _validated(adapter: TypeAdapter[Any], raw: dict[str, Any], param: str) -> Any:
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidRequest(f"{param}.{where}: {err['msg']}", param=f"{param}.{where}") from None
