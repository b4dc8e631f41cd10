"""The Anthropic Messages door: ``/v1/messages`` with the MCP connector (``mcp_servers`` +
``mcp_toolset``), run by the Responses core (`request.py` translates the request in,
`response.py` the events and response out)."""
