"""`OperatorPolicy`: what the loop applies to every response, built once at start-up from the
tool-server file's ``policy`` section (docs/policy.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from vllm_mcp_ext.config.policy import DEFAULT_MAX_RESPONSE_SECONDS, Policy
from vllm_mcp_ext.policy.audit import AuditSink, LogAudit, NoAudit, StoreAudit
from vllm_mcp_ext.policy.guardrails import NONE, Guardrails, load_guardrails
from vllm_mcp_ext.store.sql import Database

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OperatorPolicy:
    guardrails: Guardrails = NONE
    audit: AuditSink = field(default_factory=NoAudit)
    max_response_seconds: float = DEFAULT_MAX_RESPONSE_SECONDS

    @classmethod
    def build(cls, policy: Policy, db: Database | None) -> OperatorPolicy:
        """Load the hooks and pick the audit sink. ``db``: the response store's database, None
        when nothing is stored (``audit: "store"`` then writes to the log instead)."""
        audit: AuditSink
        if policy.audit == "store" and db is not None:
            audit = StoreAudit(db)
        elif policy.audit == "off":
            audit = NoAudit()
        else:
            if policy.audit == "store":
                logger.info("vllm_mcp_ext: no response store: the audit record goes to the log")
            audit = LogAudit()
        return cls(
            load_guardrails(policy.guardrails, policy.guardrail_timeout),
            audit,
            policy.max_response_seconds,
        )
