"""Images with MCP tools on a real multimodal model: a tiny LLaVA-shaped model with random
weights (tests/support/tiny_vl.py) on vLLM's CPU backend, its own server for this module.
A random model cannot call tools (even a forced call's arguments are free text for an MCP tool,
which is not ``strict``), so these tests check what a user can see of the image reaching the
engine: the prompt grows by the image's tokens (``usage.input_tokens``), for a data URL, a
loopback URL and an image file. An image an MCP tool returns is tested at API level
(tests/unit/test_media.py)."""

from __future__ import annotations

import base64
import http.server
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.conftest import serve
from tests.support.image_server import png
from tests.support.tiny_vl import IMAGE_TOKENS, build_tiny_vl

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CAMERA = [{"type": "mcp", "server_label": "camera", "require_approval": "never"}]
PNG = png(64, "blue")
DATA_URL = f"data:image/png;base64,{PNG}"
QUESTION = "What is in the picture?"


@pytest.fixture(scope="module")
def vl_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory, logs: Path) -> Iterator[str]:
    root = tmp_path_factory.mktemp("vl")
    model = build_tiny_vl(tiny_model, root / "model")
    config = root / "mcp.json"
    camera = {"command": sys.executable, "args": [str(REPO / "tests" / "support" / "image_server.py")]}
    config.write_text(json.dumps({"mcpServers": {"camera": camera}}))
    # No JSON whitespace in structured outputs: the random model's forced call is `{}` at once.
    flags = (
        "--load-format",
        "dummy",
        "--structured-outputs-config",
        '{"backend": "xgrammar", "disable_any_whitespace": true}',
    )
    with serve(model, config, logs / "vllm-vl.log", *flags) as url:
        yield url


@pytest.fixture(scope="module")
def vl(vl_server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{vl_server}/v1", api_key="-", max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def image_url() -> Iterator[str]:
    """The PNG on a loopback HTTP server."""
    body = base64.b64decode(PNG)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/picture.png"
    server.shutdown()


def ask(client: openai.OpenAI, image: dict[str, Any] | None, **extra: Any) -> Any:
    content: list[dict[str, Any]] = [{"type": "input_text", "text": QUESTION}]
    if image is not None:
        content.append(image)
    return client.responses.create(
        model="tiny",
        input=[{"role": "user", "content": content}],  # type: ignore[typeddict-item]
        tools=CAMERA,  # type: ignore[list-item]
        tool_choice="none",
        max_output_tokens=4,
        temperature=0,
        **extra,
    )


def test_an_image_reaches_the_engine_as_its_tokens(vl: openai.OpenAI, image_url: str) -> None:
    text = ask(vl, None)
    data = ask(vl, {"type": "input_image", "image_url": DATA_URL, "detail": "auto"})
    url = ask(vl, {"type": "input_image", "image_url": image_url})
    as_file = ask(vl, {"type": "input_file", "filename": "picture.png", "file_data": DATA_URL})
    # the random model runs out of its 4 tokens: incomplete, not failed
    assert {r.status for r in (text, data, url, as_file)} <= {"completed", "incomplete"}
    grown = data.usage.input_tokens - text.usage.input_tokens
    # the image's tokens, and the placeholder's line break at most
    assert IMAGE_TOKENS <= grown <= IMAGE_TOKENS + 2, grown
    assert url.usage.input_tokens == as_file.usage.input_tokens == data.usage.input_tokens


def test_an_image_for_a_text_only_model_is_a_400_naming_the_part(client: openai.OpenAI) -> None:
    image = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": QUESTION},
                {"type": "input_image", "image_url": DATA_URL},
            ],
        }
    ]
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(
            model="tiny",
            input=image,  # type: ignore[arg-type]
            tools=[{"type": "mcp", "server_label": "calc", "require_approval": "never"}],
        )
    assert info.value.body["param"] == "input[0].content[1]"  # type: ignore[index]
    assert "not a multimodal model" in info.value.body["message"]  # type: ignore[index]
    # (stock vLLM 0.32, without MCP tools, answers this with a 500: its renderer's ValueError
    # "tiny is not a multimodal model" is not mapped to a 400)
