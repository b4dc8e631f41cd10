"""OpenAI's Conversations API: conversations and their items, kept in the response store."""

from vllm_mcp_ext.conversations.service import Conversations
from vllm_mcp_ext.conversations.store import ConversationStore

__all__ = ["ConversationStore", "Conversations"]
