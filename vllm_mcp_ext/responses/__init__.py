"""The Responses core, the same behind every front door: a body parsed once into a request
(``request.py``; the request type itself is ``types/request.py``), its ``mcp`` tools resolved
to tool sources (``sources.py``), one `loop.run.Run` per response created by `ResponsesService`
(``service.py``) and kept and queried in the store (``stored.py``).

Import from the submodules; this package imports nothing.
"""
