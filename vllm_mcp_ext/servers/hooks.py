"""`ClientHooks`: what a session does with a server's requests and notifications to its client.

A session opened for the model loop answers none of them (the SDK's defaults refuse sampling,
elicitation and roots, and it advertises none of them). A session opened for the ``/mcp`` proxy
gets hooks that pass each one to the proxy's own client: the SDK advertises a capability exactly
when its callback is given, so the server sees what the client behind the proxy can do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp import types
from mcp.client.session import ElicitationFnT, ListRootsFnT, LoggingFnT, SamplingFnT

Notify = Callable[[types.ServerNotification], Awaitable[None]]


@dataclass(frozen=True)
class ClientHooks:
    sampling: SamplingFnT | None = None  # sampling/createMessage
    elicitation: ElicitationFnT | None = None  # elicitation/create
    roots: ListRootsFnT | None = None  # roots/list
    logging: LoggingFnT | None = None  # notifications/message
    notification: Notify | None = None  # every other notification (list_changed, resources/updated)

    def callbacks(self) -> dict[str, Any]:
        """Keyword arguments of the SDK's `ClientSession` for the hooks that are set."""
        given = {
            "sampling_callback": self.sampling,
            "elicitation_callback": self.elicitation,
            "list_roots_callback": self.roots,
            "logging_callback": self.logging,
        }
        return {name: fn for name, fn in given.items() if fn is not None}
