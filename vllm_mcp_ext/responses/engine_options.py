"""vLLM's own extensions to a ``/v1/responses`` body that every turn of the loop passes on.

vLLM's ``ResponsesRequest`` accepts sampling extras (``top_k``, ``min_p``, penalties, ``seed``,
``stop``...), scheduling (``priority``), streaming (``stream_interval``, from vLLM's chat request:
tokens per streamed delta), prefix-cache isolation (``cache_salt``), and per-request
renderer options (``chat_template_kwargs``, ``mm_processor_kwargs``, ``media_io_kwargs``). The loop
hands each to every turn's chat-completions request under the same name, as vLLM users expect.
They are checked here, before the response starts, with vLLM's own bounds.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vllm_mcp_ext.errors import InvalidRequest, Unsupported
from vllm_mcp_ext.types import door_fields

_INT64 = 2**63


class EngineOptions(BaseModel):
    """The extension fields, by their ``/v1/responses`` (and chat completions) names."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    top_k: int | None = None
    min_p: Annotated[float, Field(ge=0, le=1)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    repetition_penalty: Annotated[float, Field(gt=0)] | None = None
    seed: Annotated[int, Field(ge=-_INT64, lt=_INT64)] | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool | None = None
    logit_bias: dict[str, float] | None = None
    skip_special_tokens: bool | None = None
    include_stop_str_in_output: bool | None = None
    vllm_xargs: dict[str, str | int | float | list[str | int | float]] | None = None
    priority: Annotated[int, Field(ge=-_INT64, lt=_INT64)] | None = None
    # tokens per streamed delta (vLLM's chat request field; at least the server's --stream-interval)
    stream_interval: Annotated[int, Field(ge=1)] | None = None
    cache_salt: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    mm_processor_kwargs: dict[str, Any] | None = None
    media_io_kwargs: dict[str, dict[str, Any]] | None = None


NAMES = frozenset(EngineOptions.model_fields)


def refuse_unhonoured(body: dict[str, Any]) -> None:
    """A 400 for a vLLM extension field set to a value the loop would not honour (the table is
    `door_fields.RESPONSES_NOT_HONOURED`)."""
    for name, neutral in door_fields.RESPONSES_NOT_HONOURED.items():
        value = body.get(name)
        if value is not None and value not in neutral:
            raise Unsupported(f"{name!r} is not supported with MCP tools", param=name)


def engine_options(body: dict[str, Any]) -> dict[str, Any]:
    """The extension fields the body sets (not null), checked; a 400 naming the field otherwise."""
    given = {k: v for k, v in body.items() if k in NAMES and v is not None}
    try:
        options = EngineOptions.model_validate(given)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidRequest(f"{where}: {err['msg']}", param=str(err["loc"][0])) from None
    return options.model_dump(exclude_none=True)
