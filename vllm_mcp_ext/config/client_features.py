"""What a configured server may ask of us: the server-to-client half of MCP, per server.

Two optional fields of a server entry in the tool-server file::

    "elicitation": "decline" | "accept_defaults" | "ask"
    "sampling": true | {"maxTokens": 512, "maxTokensPerResponse": 2048}
    "protocol": "2025-11-25" | "auto"
    "tasks": true | false

Elicitation is declined by default; ``accept_defaults`` answers a form with its schema's defaults
(and declines a form that requires a field without one, and every URL-mode request); ``ask``
pauses the response for a request that opted in (``include: ["mcp_elicitation"]``,
`loop.elicitation`) and declines for one that did not. Sampling is
off by default; on, ``sampling/createMessage`` runs on the serving engine and model of the response
whose tool call asked, within the two token caps. A capability is declared to the server only when
its policy is not the default, so a server never offers a flow we would refuse.

``protocol`` ``auto`` first tries 2026-07-28's stateless ``server/discover`` and falls back to the
``initialize`` handshake (the `mcp` SDK's negotiation); the default opens with the handshake only
(2025-11-25, or 2025-06-18 when the server says so), which older servers expect.

``tasks`` (default true): a tool the server offers to run as an MCP task (2025-11-25) runs as one,
polled (`servers.tasks`); false calls every tool plainly, and a tool that runs only as a task fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from vllm_mcp_ext.errors import ConfigError

ElicitationPolicy = Literal["decline", "accept_defaults", "ask"]
Protocol = Literal["2025-11-25", "auto"]

SAMPLING_MAX_TOKENS = 512  # default cap of one sampling/createMessage
SAMPLING_MAX_TOKENS_PER_RESPONSE = 2048  # default cap of all sampling of one response, per server
FIELDS = ("elicitation", "sampling", "protocol", "tasks")  # the entry keys this module reads


@dataclass(frozen=True)
class SamplingPolicy:
    max_tokens: int = SAMPLING_MAX_TOKENS
    max_tokens_per_response: int = SAMPLING_MAX_TOKENS_PER_RESPONSE


@dataclass(frozen=True)
class ClientFeatures:
    elicitation: ElicitationPolicy = "decline"
    sampling: SamplingPolicy | None = None  # None: sampling is not offered
    protocol: Protocol = "2025-11-25"
    tasks: bool = True  # run tools as MCP tasks where the server offers it


DEFAULT = ClientFeatures()


def client_features(entry: dict[str, Any], where: str) -> ClientFeatures:
    """The ``elicitation`` and ``sampling`` fields of one server entry; raises `ConfigError`."""
    elicitation = entry.get("elicitation", "decline")
    if elicitation not in get_args(ElicitationPolicy):
        raise ConfigError(f"{where}: field 'elicitation' must be one of {list(get_args(ElicitationPolicy))}")
    protocol = entry.get("protocol", "2025-11-25")
    if protocol not in get_args(Protocol):
        raise ConfigError(f"{where}: field 'protocol' must be one of {list(get_args(Protocol))}")
    tasks = entry.get("tasks", True)
    if not isinstance(tasks, bool):
        raise ConfigError(f"{where}: field 'tasks' must be true or false")
    return ClientFeatures(
        elicitation=elicitation,
        sampling=_sampling(entry.get("sampling"), where),
        protocol=protocol,
        tasks=tasks,
    )


def _sampling(raw: Any, where: str) -> SamplingPolicy | None:
    if raw is None or raw is False:
        return None
    if raw is True:
        return SamplingPolicy()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: field 'sampling' must be true, false or an object")
    unknown = sorted(set(raw) - {"maxTokens", "maxTokensPerResponse"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown field 'sampling.{unknown[0]}' (allowed: maxTokens, maxTokensPerResponse)"
        )
    return SamplingPolicy(
        max_tokens=_positive(raw, "maxTokens", SAMPLING_MAX_TOKENS, where),
        max_tokens_per_response=_positive(
            raw, "maxTokensPerResponse", SAMPLING_MAX_TOKENS_PER_RESPONSE, where
        ),
    )


def _positive(raw: dict[str, Any], key: str, default: int, where: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: field 'sampling.{key}' must be a positive integer")
    return value
