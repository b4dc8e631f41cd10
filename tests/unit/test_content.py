"""Message content as text: the one definition the doors and the loop share (`content`)."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_mcp_ext.api.routing import choose_route
from vllm_mcp_ext.errors import InvalidRequest, Unsupported
from vllm_mcp_ext.types.content import TEXT_PARTS, flatten_text


def test_every_text_part_type_flattens_to_its_text() -> None:
    parts = [{"type": kind, "text": kind} for kind in TEXT_PARTS]
    assert flatten_text(parts, "input[0]") == "input_textoutput_texttext"
    assert flatten_text("plain", "input[0]") == "plain"


@pytest.mark.parametrize("kind", ["input_image", None, ["text"], {"x": 1}])
def test_any_other_part_is_a_400_naming_it(kind: Any) -> None:
    with pytest.raises(Unsupported) as refused:
        flatten_text([{"type": "text", "text": "a"}, {"type": kind}], "messages[2]")
    assert refused.value.param == "messages[2].content[1]"


def test_content_that_is_neither_a_string_nor_an_array_is_a_400() -> None:
    with pytest.raises(InvalidRequest) as refused:
        flatten_text(3, "input[1]")
    assert refused.value.param == "input[1].content"


def test_the_router_keeps_text_parts_and_leaves_others_to_vllm() -> None:
    def route(part: dict[str, Any]) -> str:
        body = {"model": "m", "input": [{"role": "user", "content": [part]}]}
        return choose_route(body, harmony=False, previous_is_ours=False).handler

    assert [route({"type": kind, "text": "hi"}) for kind in TEXT_PARTS] == ["plugin"] * len(TEXT_PARTS)
    assert route({"type": "input_image", "image_url": "data:,"}) == "stock"
    assert route({"type": ["text"], "text": "hi"}) == "stock"  # any JSON value, unhashable too


def test_an_input_item_of_any_json_type_is_routed_not_raised() -> None:
    body = {"model": "m", "input": [{"type": ["message"]}]}
    assert choose_route(body, harmony=False, previous_is_ours=False).handler == "stock"
