"""The per-token events, made and written without pydantic's validation and serializer.

A streamed response sends one delta event per engine output (``response.output_text.delta``,
``response.reasoning_text.delta``, and the argument deltas of function and MCP calls); everything
else is a few events per response. Pydantic's validated init and ``model_dump_json`` cost about
3 µs each per delta, more than the rest of the plugin's per-token work
(``benchmarks/scenarios/api_cpu.py``). The fields of a delta are the stream's own values of known
types, so validation has nothing to check:

* `delta_event` builds the SDK object directly, as ``model_construct`` does without its per-field
  loop: a real ``ResponseTextDeltaEvent`` (and so on), equal to the validated one;
* `delta_json` writes the JSON ``model_dump_json`` writes, byte for byte
  (``tests/unit/test_delta_events.py`` holds the two side by side).

An SDK release that adds a field to one of these events turns its fast path off (`_FIELDS`), and
the event is made and written by pydantic as any other.
"""

from __future__ import annotations

from collections.abc import Callable
from json import encoder
from typing import Any, TypeVar

from openai.types.responses import (
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseReasoningTextDeltaEvent,
    ResponseTextDeltaEvent,
)
from pydantic import BaseModel

E = TypeVar("E", bound=BaseModel)

# The fields each fast event writes, in the SDK's order (pydantic writes them in that order).
_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {
    ResponseTextDeltaEvent: (
        "content_index", "delta", "item_id", "logprobs", "output_index", "sequence_number", "type"
    ),
    ResponseReasoningTextDeltaEvent: (
        "content_index", "delta", "item_id", "output_index", "sequence_number", "type"
    ),
    ResponseMcpCallArgumentsDeltaEvent: ("delta", "item_id", "output_index", "sequence_number", "type"),
    ResponseFunctionCallArgumentsDeltaEvent: ("delta", "item_id", "output_index", "sequence_number", "type"),
}  # fmt: skip
FAST = frozenset(
    cls
    for cls, fields in _FIELDS.items()
    if tuple(cls.model_fields) == fields
    and all(f.alias is None for f in cls.model_fields.values())
    and cls.model_config.get("extra") == "allow"
)

# A string as json.dumps writes it with ensure_ascii (its own C encoder, without the dispatch)
_ascii: Callable[[str], str] = encoder.encode_basestring_ascii
# (class, item_id, output_index, content_index, type) -> the JSON before the delta, between it and
# the sequence number, and after that: the fields that stay the same for an item's deltas
_TEMPLATES: dict[tuple[Any, ...], tuple[str, str, str]] = {}
_MAX_TEMPLATES = 4096  # items written at once, across responses; past it the cache starts over


def _string(value: str) -> str:
    """A JSON string as pydantic's ``ensure_ascii`` writes it: as ``json.dumps`` does, but for
    DEL (U+007F), which pydantic leaves as it is."""
    if "\x7f" not in value:
        return _ascii(value)
    return '"' + "\x7f".join(_ascii(part)[1:-1] for part in value.split("\x7f")) + '"'


def delta_event(cls: type[E], **fields: Any) -> E:
    """``cls(**fields)`` for a delta event whose fields are all given and already typed."""
    if cls not in FAST:
        return cls(**fields)
    event = cls.__new__(cls)
    object.__setattr__(event, "__dict__", fields)
    object.__setattr__(event, "__pydantic_fields_set__", set(fields))
    object.__setattr__(event, "__pydantic_extra__", {})
    object.__setattr__(event, "__pydantic_private__", None)
    return event


def delta_json(event: BaseModel) -> str | None:
    """The event's JSON as ``model_dump_json(by_alias=True, ensure_ascii=True)`` writes it, for a
    fast delta event; None for any other (and for a text delta carrying logprobs)."""
    cls = type(event)
    if cls not in FAST:
        return None
    f = event.__dict__
    if cls is ResponseTextDeltaEvent and f["logprobs"]:
        return None
    key = (cls, f["item_id"], f["output_index"], f.get("content_index"), f["type"])
    parts = _TEMPLATES.get(key)
    if parts is None:
        parts = _template(cls, f)
        if len(_TEMPLATES) >= _MAX_TEMPLATES:
            _TEMPLATES.clear()
        _TEMPLATES[key] = parts
    head, middle, tail = parts
    delta = f["delta"]
    text = _ascii(delta) if "\x7f" not in delta else _string(delta)
    return f"{head}{text}{middle}{f['sequence_number']:d}{tail}"


def _template(cls: type[BaseModel], f: dict[str, Any]) -> tuple[str, str, str]:
    item, index, kind = _string(f["item_id"]), int(f["output_index"]), _string(f["type"])
    tail = f',"type":{kind}}}'
    if cls is ResponseTextDeltaEvent:
        head = f'{{"content_index":{f["content_index"]:d},"delta":'
        return head, f',"item_id":{item},"logprobs":[],"output_index":{index},"sequence_number":', tail
    if cls is ResponseReasoningTextDeltaEvent:
        head = f'{{"content_index":{f["content_index"]:d},"delta":'
        return head, f',"item_id":{item},"output_index":{index},"sequence_number":', tail
    return '{"delta":', f',"item_id":{item},"output_index":{index},"sequence_number":', tail
