"""Images and files in a Responses request with MCP tools, and images MCP tools return: what the
chat template is given (vLLM's chat content parts), through the real HTTP routes and SDK."""

from __future__ import annotations

import base64
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from mcp import types

from tests.support.asgi import BASE_URL, plugin_client
from tests.support.image_server import png
from tests.support.scripted import ScriptedTurns, tool_call
from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.engine.media import has_media, message_content, without_tool_media
from vllm_mcp_ext.errors import InvalidRequest, Unsupported
from vllm_mcp_ext.loop.calls import outcome_of
from vllm_mcp_ext.types.parts import TextDelta

IMAGE_SERVER = Path(__file__).resolve().parents[1] / "support" / "image_server.py"
CAMERA = StdioServerSpec("camera", sys.executable, (str(IMAGE_SERVER),))
TOOLS: list[Any] = [{"type": "mcp", "server_label": "camera", "require_approval": "never"}]
DATA_URL = f"data:image/png;base64,{png(8)}"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_text_parts_stay_a_string() -> None:
    content = [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]
    assert message_content(content, "input[0]") == "ab"


def test_an_image_becomes_vllms_image_url_part() -> None:
    content = [
        {"type": "input_text", "text": "what is this?"},
        {"type": "input_image", "image_url": "http://127.0.0.1:9/x.png", "detail": "high"},
    ]
    assert message_content(content, "input[0]") == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/x.png"}},
    ]


def test_an_image_by_file_id_is_a_400_naming_the_field() -> None:
    with pytest.raises(Unsupported) as info:
        message_content([{"type": "input_image", "file_id": "file-1"}], "input[2]")
    assert info.value.param == "input[2].content[0].file_id"


def test_files_go_as_media_or_text_by_type() -> None:
    image = message_content([{"type": "input_file", "file_data": DATA_URL}], "input[0]")
    assert image == [{"type": "image_url", "image_url": {"url": DATA_URL}}]
    text = message_content(
        [{"type": "input_file", "filename": "notes.txt", "file_data": b64("héllo")}], "input[0]"
    )
    assert text == "[file: notes.txt, text/plain]\nhéllo"
    csv = message_content(
        [{"type": "input_file", "filename": "t.csv", "file_data": f"data:text/csv;base64,{b64('a,b')}"}],
        "input[0]",
    )
    assert csv == "[file: t.csv, text/csv]\na,b"


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "input_file", "file_data": f"data:application/pdf;base64,{b64('%PDF')}"}, "file_data"),
        ({"type": "input_file", "file_id": "file-1"}, "file_id"),
        ({"type": "input_file", "file_url": "https://example.com/a.pdf"}, "file_url"),
        ({"type": "input_file", "file_data": "data:text/plain,plain"}, "file_data"),
        ({"type": "input_image"}, "image_url"),
        ({"type": "video"}, None),
    ],
)
def test_what_vllm_cannot_take_is_a_400_naming_the_field(part: dict[str, Any], param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        message_content([part], "input[1]")
    assert info.value.param == "input[1].content[0]" + (f".{param}" if param else "")


def test_a_tool_image_goes_as_media_after_the_text() -> None:
    result = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="see"),
            types.ImageContent(type="image", data=png(8), mime_type="image/png"),
        ]
    )
    outcome = outcome_of(result)
    assert outcome.output is not None and outcome.output.startswith("see\n[image: image/png, ")
    content = outcome.model_content
    assert content == [
        {"type": "text", "text": outcome.output},
        {"type": "image_url", "image_url": {"url": DATA_URL}},
    ]
    tool = {"role": "tool", "tool_call_id": "c", "content": content}
    assert has_media([tool])
    assert without_tool_media([tool]) == [{"role": "tool", "tool_call_id": "c", "content": outcome.output}]


def test_a_text_result_stays_a_string() -> None:
    outcome = outcome_of(types.CallToolResult(content=[types.TextContent(type="text", text="5")]))
    assert outcome.model_content == "5"


@pytest.fixture
async def engine() -> ScriptedTurns:
    return ScriptedTurns([tool_call("snapshot", "{}"), [TextDelta("A red square.")]])


@pytest.fixture
async def http(engine: ScriptedTurns, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with plugin_client(engine, (CAMERA,), tmp_path / "responses.sqlite3") as client:
        yield client


async def test_the_image_and_the_tool_image_reach_the_model(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    r = await client.responses.create(
        model="scripted",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Compare with a snapshot."},
                    {"type": "input_image", "image_url": DATA_URL, "detail": "auto"},
                ],
            }
        ],
        tools=TOOLS,
    )
    assert r.output_text == "A red square."
    assert engine.seen[0][-1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Compare with a snapshot."},
            {"type": "image_url", "image_url": {"url": DATA_URL}},
        ],
    }
    tool = engine.seen[1][-1]
    assert tool["role"] == "tool" and tool["content"][0]["text"].startswith("the picture\n[image: image/png")
    assert tool["content"][1]["image_url"]["url"] == f"data:image/png;base64,{png()}"
    call = r.output[1]
    assert call.type == "mcp_call" and call.output is not None and "[image: image/png" in call.output
    items = await client.responses.input_items.list(r.id)
    assert [p.type for p in items.data[0].content] == ["input_text", "input_image"]  # type: ignore[union-attr]


async def test_a_pdf_is_a_400_naming_the_part(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(
            model="scripted",
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Summarise."},
                        {
                            "type": "input_file",
                            "filename": "a.pdf",
                            "file_data": f"data:application/pdf;base64,{b64('%PDF')}",
                        },
                    ],
                }
            ],
            tools=TOOLS,
        )
    assert info.value.body["param"] == "input[0].content[1].file_data"  # type: ignore[index]


class TextOnlyTurns(ScriptedTurns):
    takes_media = False


async def test_an_image_for_a_text_only_model_is_a_400_before_the_response(tmp_path: Path) -> None:
    engine = TextOnlyTurns([[TextDelta("never")]])
    async with plugin_client(engine, (CAMERA,)) as http:
        client = openai.AsyncOpenAI(base_url=f"{BASE_URL}/v1", api_key="-", http_client=http, max_retries=0)
        with pytest.raises(openai.BadRequestError) as info:
            await client.responses.create(
                model="scripted",
                input=[
                    {"role": "user", "content": "hello"},
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "look"},
                            {"type": "input_image", "image_url": DATA_URL},
                        ],
                    },
                ],
                tools=TOOLS,
            )
        assert info.value.body["param"] == "input[1].content[1]"  # type: ignore[index]
        assert "not a multimodal model" in info.value.body["message"]  # type: ignore[index]
        assert engine.seen == []
        # a text file is text: the same model takes it
        r = await client.responses.create(
            model="scripted",
            input=[
                {
                    "role": "user",
                    "content": [{"type": "input_file", "filename": "a.txt", "file_data": b64("hi")}],
                }
            ],
            tools=TOOLS,
        )
        assert r.output_text == "never" and engine.seen[0][-1]["content"] == "[file: a.txt, text/plain]\nhi"
