"""Who is calling (`Caller`, from vLLM's ``--api-key`` list) and what they may use
(`Permissions`, from the tool-server file). Every front door derives a `Caller` and hands it to
the core; the core (`ResponsesService.prepare`, `StoredResponses`, the ``/mcp`` gateway) checks."""

from vllm_mcp_ext.access.caller import ANONYMOUS, ApiKeys, Caller, hash_key
from vllm_mcp_ext.access.permissions import Grant, Permissions

__all__ = ["ANONYMOUS", "ApiKeys", "Caller", "Grant", "Permissions", "hash_key"]
