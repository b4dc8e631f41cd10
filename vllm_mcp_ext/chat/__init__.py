"""The Chat Completions door: ``/v1/chat/completions`` with ``mcp`` tools, run by the Responses
core (`request.py` translates the request in, `response.py` the events and response out)."""
