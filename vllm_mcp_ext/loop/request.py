"""What ``remote/service.py`` needs of a request to release its sessions (transitional).

The request is `vllm_mcp_ext.responses.request.ResponsesRequest` now; this Protocol keeps
``remote/`` (being reworked on another branch into a per-request scope) importing as before.
Delete it once ``remote/`` no longer imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class LoopRequest(Protocol):
    @property
    def servers(self) -> Sequence[Any]: ...
