"""The ``/mcp`` door's translation package (the door is `api.mcp`): the MCP handlers that pass
every request to the configured server it routes to (`handlers`), the names and cursors a door
shows (`view`), a client's own sessions of the servers (`link`) and the SSE event log
(`events`)."""
