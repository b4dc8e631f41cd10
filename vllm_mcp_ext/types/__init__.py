"""The values every layer passes, in leaf modules that import nothing of the package above them
(as the MCP SDK's ``mcp.types``): a validated request (`request`), a model turn's request and
parts (`parts`), and what a tool source is, with its failures as values (`source`).

Import from the submodules; this package imports nothing.
"""
