"""The conversation in harmony, gpt-oss's format, rendered with the ``openai_harmony`` encoding.

The loop's conversation (chat messages, ``loop/context.py``) and the tools of one turn become
harmony messages:

* the system message: the reasoning effort and the conversation's start date;
* the developer message: the request's instructions, then one tool *namespace* per MCP server
  (``namespace docs { type search = ... }``) and the client's function tools in ``functions``;
* user messages; the model's earlier turns: ``analysis`` (reasoning), a ``commentary`` message
  to each tool it called, ``final`` (the answer); tool results as messages *from* the tool.

A tool is addressed as ``<namespace>.<tool>`` (the harmony ``recipient``): `ToolNames` maps those
names both ways.
"""

from __future__ import annotations

import datetime
import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from openai_harmony import (
    Author,
    Conversation,
    DeveloperContent,
    HarmonyEncoding,
    HarmonyEncodingName,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
    ToolDescription,
    ToolNamespaceConfig,
    load_harmony_encoding,
)

from vllm_mcp_ext.errors import InvalidRequest
from vllm_mcp_ext.types.parts import TurnRequest

FUNCTIONS = "functions"  # harmony's namespace for the client's function tools
# Namespaces gpt-oss knows as vLLM's demo tools (and harmony's own): an MCP server never takes
# one of these names, so the model's trained behaviour for them does not leak into our tools.
RESERVED = frozenset({FUNCTIONS, "browser", "python", "container", "assistant", "user", "system"})
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")
_EFFORTS = {"low": ReasoningEffort.LOW, "medium": ReasoningEffort.MEDIUM, "high": ReasoningEffort.HIGH}


@functools.cache
def encoding() -> HarmonyEncoding:
    """The gpt-oss encoding (its tokenizer ships with the ``openai_harmony`` package)."""
    return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)


@dataclass
class ToolNames:
    """The harmony name (``recipient``) of every tool one turn offers, and back.

    An MCP server's tools live in a namespace named after its ``server_label`` (characters
    outside ``[A-Za-z0-9_]`` become ``_``; a label that would clash with another namespace or a
    reserved one gets ``_2``, ``_3``...); the tool keeps its MCP name, cleaned the same way. The
    client's function tools are ``functions.<name>``, as harmony has them.
    """

    namespaces: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    functions: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # namespace -> server_label
    to_recipient: dict[str, str] = field(default_factory=dict)  # exposed name -> recipient
    to_exposed: dict[str, str] = field(default_factory=dict)  # recipient -> exposed name

    @classmethod
    def build(cls, tools: Sequence[dict[str, Any]], servers: dict[str, tuple[str, str]]) -> ToolNames:
        names = cls()
        by_label: dict[str, str] = {}
        for tool in tools:
            function = tool["function"]
            exposed = function["name"]
            origin = servers.get(exposed)
            if origin is None:
                names._add(FUNCTIONS, exposed, exposed, function)
                continue
            label, tool_name = origin
            namespace = by_label.get(label)
            if namespace is None:
                namespace = _unique(_clean(label), RESERVED | set(names.labels))
                by_label[label] = namespace
                names.labels[namespace] = label
            names._add(namespace, _clean(tool_name), exposed, function)
        return names

    def _add(self, namespace: str, name: str, exposed: str, function: dict[str, Any]) -> None:
        if namespace == FUNCTIONS:
            self.functions.append(function)
        else:
            taken = {n for n, _ in self.namespaces.get(namespace, [])}
            name = _unique(name, taken)
            self.namespaces.setdefault(namespace, []).append((name, function))
        recipient = f"{namespace}.{name}"
        self.to_recipient[exposed] = recipient
        self.to_exposed[recipient] = exposed

    def recipient(self, exposed: str) -> str:
        """The harmony name of a tool the model called (an earlier turn's may no longer be
        offered: it is then addressed as a function, as the model wrote it)."""
        return self.to_recipient.get(exposed) or f"{FUNCTIONS}.{exposed}"

    def exposed(self, recipient: str) -> str:
        """The loop's name for a recipient the model wrote; an unknown one as written (the loop
        answers it as an unknown tool)."""
        if recipient in self.to_exposed:
            return self.to_exposed[recipient]
        bare = recipient.removeprefix(f"{FUNCTIONS}.")
        return self.to_exposed.get(f"{FUNCTIONS}.{bare}", bare)


def _clean(name: str) -> str:
    return _NOT_NAME.sub("_", name) or "tool"


def _unique(name: str, taken: set[str] | frozenset[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate = f"{name}_{n}"
        n += 1
    return candidate


# -- messages -------------------------------------------------------------------------------


def start_date() -> str:
    """As vLLM's own harmony path: ``VLLM_SYSTEM_START_DATE`` when set (tests pin it), else
    today."""
    return os.environ.get("VLLM_SYSTEM_START_DATE") or datetime.date.today().isoformat()


def system_message(reasoning_effort: str | None) -> Message:
    content = SystemContent.new().with_conversation_start_date(start_date())
    if reasoning_effort is not None:
        if reasoning_effort not in _EFFORTS:
            raise InvalidRequest(
                f"reasoning.effort {reasoning_effort!r} is not supported by gpt-oss (low, medium, high)",
                param="reasoning.effort",
            )
        content = content.with_reasoning_effort(_EFFORTS[reasoning_effort])
    return Message.from_role_and_content(Role.SYSTEM, content)


def developer_message(instructions: str | None, names: ToolNames) -> Message | None:
    content = DeveloperContent.new()
    if instructions:
        content = content.with_instructions(instructions)
    for namespace, tools in names.namespaces.items():
        content = content.with_tools(
            ToolNamespaceConfig(
                name=namespace,
                description=f"Tools of the MCP server {names.labels[namespace]!r}.",
                tools=[_description(name, function) for name, function in tools],
            )
        )
    if names.functions:
        content = content.with_function_tools([_description(f["name"], f) for f in names.functions])
    if not instructions and not names.namespaces and not names.functions:
        return None
    return Message.from_role_and_content(Role.DEVELOPER, content)


def _description(name: str, function: dict[str, Any]) -> ToolDescription:
    parameters = function.get("parameters") or None
    return ToolDescription.new(name, function.get("description") or "", parameters=parameters)


def tool_message(recipient: str, text: str) -> Message:
    """A tool's result, as harmony has it: from the tool, to the assistant, on commentary."""
    return (
        Message.from_author_and_content(Author.new(Role.TOOL, recipient), text)
        .with_recipient("assistant")
        .with_channel("commentary")
    )


def call_message(recipient: str, arguments: str) -> Message:
    return (
        Message.from_role_and_content(Role.ASSISTANT, arguments)
        .with_channel("commentary")
        .with_recipient(recipient)
        .with_content_type("<|constrain|>json")
    )


def conversation(turn: TurnRequest, names: ToolNames) -> list[Message]:
    """The whole conversation of a turn as harmony messages (system and developer first)."""
    instructions = [m["content"] for m in turn.messages if m["role"] == "system" and m.get("content")]
    head = [system_message(turn.reasoning_effort)]
    developer = developer_message("\n\n".join(instructions) or None, names)
    if developer is not None:
        head.append(developer)
    return head + chat_messages([m for m in turn.messages if m["role"] != "system"], names)


def chat_messages(messages: Sequence[dict[str, Any]], names: ToolNames) -> list[Message]:
    """User, assistant and tool chat messages as harmony messages."""
    out: list[Message] = []
    recipients: dict[str, str] = {}  # tool_call_id -> the recipient the call went to
    for message in messages:
        role = message["role"]
        if role == "user":
            out.append(Message.from_role_and_content(Role.USER, message.get("content") or ""))
        elif role == "tool":
            recipient = recipients.get(str(message.get("tool_call_id")), f"{FUNCTIONS}.tool")
            out.append(tool_message(recipient, message.get("content") or ""))
        elif role == "assistant":
            out.extend(_assistant(message, names, recipients))
    return out


def _assistant(message: dict[str, Any], names: ToolNames, recipients: dict[str, str]) -> list[Message]:
    out: list[Message] = []
    if message.get("reasoning"):
        out.append(
            Message.from_role_and_content(Role.ASSISTANT, message["reasoning"]).with_channel("analysis")
        )
    calls = message.get("tool_calls") or []
    text = message.get("content") or ""
    if text:  # before calls it was a preamble (commentary); alone, the answer
        channel = "commentary" if calls else "final"
        out.append(Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel))
    for call in calls:
        function = call.get("function") or {}
        recipient = names.recipient(function.get("name", ""))
        recipients[str(call.get("id"))] = recipient
        out.append(call_message(recipient, function.get("arguments") or "{}"))
    return out


# -- tokens ---------------------------------------------------------------------------------


def prompt_ids(messages: Sequence[Message]) -> list[int]:
    """The conversation, ready for the assistant's next message (``<|start|>assistant``)."""
    return list(
        encoding().render_conversation_for_completion(Conversation.from_messages(messages), Role.ASSISTANT)
    )


def message_ids(messages: Sequence[Message]) -> list[int]:
    enc = encoding()
    return [token for message in messages for token in enc.render(message)]


def assistant_start() -> list[int]:
    return list(encoding().encode("<|start|>assistant", allowed_special="all"))


def prefill(tool_choice: str | dict[str, Any], names: ToolNames) -> str:
    """The start of the assistant's message that a forced ``tool_choice`` writes for the model:
    a named tool's whole header, or (``required``) the commentary channel up to the recipient."""
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        if name:
            return f"<|channel|>commentary to={names.recipient(name)} <|constrain|>json<|message|>"
    if tool_choice == "required" and len(names.namespaces) == 1 and not names.functions:
        return f"<|channel|>commentary to={next(iter(names.namespaces))}."
    if tool_choice == "required":
        return "<|channel|>commentary to="
    return ""


def encode_special(text: str) -> list[int]:
    return list(encoding().encode(text, allowed_special="all")) if text else []
