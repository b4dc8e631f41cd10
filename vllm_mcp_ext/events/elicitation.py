"""``mcp_elicitation_request``: an output item of our own, for a request that opted in with
``include: ["mcp_elicitation"]``: a configured server with ``elicitation: "ask"`` asked the user
something while one of the response's calls ran (``elicitation/create``, form or URL mode), and
the response paused to ask. The client answers with an ``mcp_elicitation_response`` input item
(`loop.elicitation`). A stock client never sees it: without the include, the question is declined."""

from __future__ import annotations

from typing import Any, Literal

from openai import BaseModel

INCLUDE = "mcp_elicitation"  # the `include` value that opts in


class McpElicitationRequest(BaseModel):
    type: Literal["mcp_elicitation_request"]
    id: str
    server_label: str
    call_id: str  # the id of the mcp_call item that started the call (the model's call id)
    name: str  # the tool that asked
    arguments: str
    mode: Literal["form", "url"]
    message: str
    requested_schema: dict[str, Any] | None = None  # form mode
    url: str | None = None  # URL mode
    elicitation_id: str | None = None  # URL mode: the server's id for it
    # a 2026-07-28 server's round (opaque; sent back unchanged when replaying): with them the
    # call resumes from the answer in any API-server process
    input_key: str | None = None
    request_state: str | None = None
