"""What McpEngine does before any engine starts: vLLM arguments by name, the tool-server config,
and the request body the openai SDK's keyword arguments make."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

from vllm_mcp_ext.config import StdioServerSpec, tool_server_config
from vllm_mcp_ext.errors import ConfigError
from vllm_mcp_ext.python_api import McpEngine, _body


def test_vllm_arguments_are_taken_by_their_serve_flag_names() -> None:
    engine = McpEngine(
        "some/model", tool_call_parser="hermes", enable_auto_tool_choice=True, max_model_len=4096
    )
    assert (engine._args.model, engine._args.tool_call_parser, engine._args.max_model_len) == (
        "some/model",
        "hermes",
        4096,
    )


def test_an_unknown_vllm_argument_names_the_nearest_one() -> None:
    with pytest.raises(TypeError, match=r"'max_model_length'.*did you mean 'max_model_len'"):
        McpEngine("some/model", max_model_length=4096)


def test_vllm_own_checks_apply_as_for_vllm_serve() -> None:
    with pytest.raises(TypeError, match="--enable-auto-tool-choice requires --tool-call-parser"):
        McpEngine("some/model", enable_auto_tool_choice=True)


def test_a_model_or_an_engine_is_needed() -> None:
    with pytest.raises(TypeError, match="needs a model"):
        McpEngine()


def test_using_it_before_start_says_how_to_start_it() -> None:
    with pytest.raises(RuntimeError, match="async with McpEngine"):
        _ = McpEngine("some/model").model_name


def test_tool_server_takes_an_mcp_json_dict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = tool_server_config(
        {
            "mcpServers": {
                "calc": {"command": "python", "args": ["calc.py"], "cwd": "servers"},
                "notes": {"url": "http://127.0.0.1:8001/mcp"},
            },
            "remoteMcp": {"enabled": False},
        }
    )
    calc = config.servers[0]
    assert isinstance(calc, StdioServerSpec) and calc.cwd == str(tmp_path / "servers")
    assert [s.label for s in config.servers] == ["calc", "notes"]
    assert config.remote == {"enabled": False}


def test_tool_server_dict_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="'mcpServers' must be an object"):
        tool_server_config({"servers": {}})
    with pytest.raises(ConfigError, match=r"server 'calc'.*exactly one of field 'command'"):
        tool_server_config({"mcpServers": {"calc": {}}})


def test_tool_server_takes_a_path_like_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{"mcpServers": {"calc": {"command": "python", "cwd": "."}}}')
    assert tool_server_config(path) == tool_server_config(str(path))
    assert tool_server_config(path).servers[0].cwd == str(tmp_path)


def test_the_body_is_what_the_openai_sdk_would_send() -> None:
    earlier = ResponseOutputMessage(
        id="msg_1",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text="5", annotations=[])],
    )
    body = _body(
        {
            "model": "m",
            "input": [earlier, {"role": "user", "content": "again"}],
            "instructions": None,
            "extra_body": {"top_k": 3},
            "extra_headers": {"X-Secret": "s"},
            "timeout": 30,
        },
        stream=False,
    )
    assert body == {
        "model": "m",
        "input": [
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "5", "annotations": []}],
            },
            {"role": "user", "content": "again"},
        ],
        "top_k": 3,
        "stream": False,
    }
