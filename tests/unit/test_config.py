import json
from pathlib import Path

import pytest

from vllm_mcp_ext.config import HttpServerSpec, StdioServerSpec, parse_tool_server_arg
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import ConfigError


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_mcp_json_gives_stdio_and_http_servers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "mcpServers": {
                "calc": {"command": "python", "args": ["calc.py"], "env": {"A": "1"}, "cwd": "srv"},
                "notes": {"url": "http://127.0.0.1:8001/mcp", "headers": {"X-Key": "s3cret"}},
                "facts": {"url": "http://127.0.0.1:8002/sse"},
                "forced": {"url": "http://h/x", "transport": "sse"},
            }
        },
    )
    config = parse_tool_server_arg(str(path))
    calc, notes, facts, forced = config.servers
    assert calc == StdioServerSpec("calc", "python", ("calc.py",), {"A": "1"}, str(tmp_path / "srv"))
    assert isinstance(notes, HttpServerSpec) and notes.transport == "streamable_http"
    assert notes.headers == {"X-Key": "s3cret"} and "s3cret" not in repr(notes)
    assert (facts.transport, forced.transport) == ("sse", "sse")
    assert config.vllm_native is None


def test_vllm_forms_keep_their_meaning() -> None:
    config = parse_tool_server_arg("demo,localhost:8000")
    assert config.vllm_native == "demo,localhost:8000"
    (spec,) = config.servers
    assert spec.url == "http://localhost:8000/sse" and spec.transport == "sse" and spec.label is None


def test_urls_with_and_without_labels() -> None:
    a, b = parse_tool_server_arg("https://x.example/mcp,docs=https://y.example/sse").servers
    assert (a.label, a.transport) == (None, "streamable_http")
    assert (b.label, b.transport, b.url) == ("docs", "sse", "https://y.example/sse")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "invalid JSON at line 1"),
        ({"servers": {}}, "field 'mcpServers'"),
        ({"mcpServers": {"calc": {"args": []}}}, "server 'calc': needs exactly one of field 'command'"),
        ({"mcpServers": {"calc": {"command": "x", "args": "a b"}}}, "server 'calc': field 'args'"),
        ({"mcpServers": {"n": {"url": "ftp://x"}}}, "server 'n': field 'url'"),
        ({"mcpServers": {"n": {"url": "http://x", "transport": "carrier-pigeon"}}}, "field 'transport'"),
        ({"mcpServers": {"n": {"url": "http://x", "tiemout": 3}}}, "server 'n': unknown field 'tiemout'"),
        ({"mcpServers": {"bad label": {"command": "x"}}}, "server label 'bad label'"),
    ],
)
def test_config_errors_name_file_label_and_field(tmp_path: Path, content: object, expected: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as info:
        parse_tool_server_arg(str(path))
    assert str(path) in info.value.message and expected in info.value.message


def test_missing_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not 'demo', host:port, a URL, or an existing file"):
        parse_tool_server_arg("/nowhere/mcp.json")


def test_settings_from_env() -> None:
    s = Settings.from_env({"VLLM_MCP_CALL_TIMEOUT": "2.5", "VLLM_MCP_MAX_TURNS": "4"})
    assert (s.call_timeout, s.max_turns, s.connect_timeout) == (2.5, 4, 10.0)
    with pytest.raises(ConfigError, match="VLLM_MCP_MAX_TURNS"):
        Settings.from_env({"VLLM_MCP_MAX_TURNS": "-1"})


def test_remote_section_and_env_make_remote_settings(tmp_path: Path) -> None:
    from vllm_mcp_ext.config.remote import RemoteSettings

    path = write(
        tmp_path,
        {
            "mcpServers": {},
            "remoteMcp": {"allow": ["127.0.0.1:8001", ".corp.example"], "callTimeout": 5, "allowHttp": True},
        },
    )
    section = parse_tool_server_arg(str(path)).remote
    settings = RemoteSettings.load(
        section, env={"VLLM_MCP_REMOTE_CALL_TIMEOUT": "7", "VLLM_MCP_REMOTE": "off"}
    )
    assert settings.allow == ("127.0.0.1:8001", ".corp.example") and settings.allow_http
    assert settings.call_timeout == 7 and settings.enabled is False  # the environment wins
    assert RemoteSettings.load(None, env={}).enabled is True


@pytest.mark.parametrize(
    ("section", "env", "message"),
    [
        ({"allowHTTP": True}, {}, "unknown field 'allowHTTP'"),
        ({"allow": "127.0.0.1"}, {}, "'allow' must be a list of strings"),
        ({"callTimeout": -1}, {}, "'callTimeout' must be a positive number"),
        ({}, {"VLLM_MCP_REMOTE": "maybe"}, "must be on or off"),
        ({}, {"VLLM_MCP_REMOTE_MAX_SERVERS": "2.5"}, "is not a whole number"),
    ],
)
def test_bad_remote_settings_stop_start_up(section: dict, env: dict, message: str) -> None:
    from vllm_mcp_ext.config.remote import RemoteSettings

    with pytest.raises(ConfigError, match=message):
        RemoteSettings.load(section, env=env)
