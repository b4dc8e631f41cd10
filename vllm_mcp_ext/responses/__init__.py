"""The Responses core, the same behind every front door: a body parsed once into a request
(``request.py``), one `Run` per response (``run.py``), created by `ResponsesService`
(``service.py``) and kept and queried in the store (``stored.py``).

Import from the submodules; this package imports nothing, so ``loop/`` can use the request type.
"""
