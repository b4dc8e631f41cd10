"""The per-server ``elicitation``, ``sampling`` and ``protocol`` fields of the tool-server file."""

import json
from pathlib import Path

import pytest

from vllm_mcp_ext.config import parse_tool_server_arg
from vllm_mcp_ext.config.client_features import ClientFeatures, SamplingPolicy
from vllm_mcp_ext.errors import ConfigError


def features_of(tmp_path: Path, **fields: object) -> ClientFeatures:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"s": {"url": "http://127.0.0.1:1/mcp", **fields}}}))
    return parse_tool_server_arg(str(path)).servers[0].features


def test_the_defaults_decline_elicitation_offer_no_sampling_and_use_the_handshake(tmp_path: Path) -> None:
    assert features_of(tmp_path) == ClientFeatures("decline", None, "2025-11-25")


def test_fields_set_the_policy(tmp_path: Path) -> None:
    got = features_of(
        tmp_path,
        elicitation="accept_defaults",
        sampling={"maxTokens": 8, "maxTokensPerResponse": 40},
        protocol="auto",
    )
    assert got == ClientFeatures("accept_defaults", SamplingPolicy(8, 40), "auto")
    assert features_of(tmp_path, sampling=True).sampling == SamplingPolicy(512, 2048)
    assert features_of(tmp_path, sampling=False).sampling is None
    assert features_of(tmp_path, elicitation="ask").elicitation == "ask"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"elicitation": "always"},
            "field 'elicitation' must be one of ['decline', 'accept_defaults', 'ask']",
        ),
        ({"sampling": "yes"}, "field 'sampling' must be true, false or an object"),
        ({"sampling": {"maxTokens": 0}}, "field 'sampling.maxTokens' must be a positive integer"),
        ({"sampling": {"max": 1}}, "unknown field 'sampling.max'"),
        ({"protocol": "2024-11-05"}, "field 'protocol' must be one of ['2025-11-25', 'auto']"),
    ],
)
def test_bad_fields_stop_start_up_naming_server_and_field(tmp_path: Path, fields: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        features_of(tmp_path, **fields)
    assert "server 's'" in info.value.message and message in info.value.message
