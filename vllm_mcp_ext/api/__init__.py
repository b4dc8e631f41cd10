"""The doors: the vLLM endpoint plugin (`plugin`) mounts one module per API, each with its routes
on a ``router`` (`responses`, `websocket`: ``/v1/responses`` over a WebSocket, `conversations`,
`chat`, `messages`, `status`) and the MCP server
at ``/mcp`` (`mcp`). What doors share is public: `door` (runtime, caller, the one error
boundary), `body` (reading a body within the limits), `disconnect` (SSE and client disconnects),
`routing` (which requests stock vLLM keeps)."""
