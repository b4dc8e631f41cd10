"""Where responses live after they are sent: SQLite by default, PostgreSQL for several replicas."""

from vllm_mcp_ext.store.backends import open_store
from vllm_mcp_ext.store.base import ResponseStore, StoredResponse

__all__ = ["ResponseStore", "StoredResponse", "open_store"]
