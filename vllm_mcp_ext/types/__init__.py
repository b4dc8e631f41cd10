"""The values every layer passes, in leaf modules that import nothing of the package above them
(as the MCP SDK's ``mcp.types``): a validated request (`request`), a model turn's request and
parts (`parts`), what a tool source is, with its failures as values (`source`), text content
(`content`) and which request fields each door serves (`door_fields`).

Import from the submodules; this package imports nothing.
"""
