"""Where responses live after they are sent: SQLite by default, PostgreSQL for several replicas."""

from vllm_mcp_ext.store.base import ResponseStore, StoredResponse, open_store

__all__ = ["ResponseStore", "StoredResponse", "open_store"]
