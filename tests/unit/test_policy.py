"""Operator policy: approval rules from tool annotations, guardrail hooks, the audit record."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from mcp import types

from vllm_mcp_ext.config.policy import ApprovalRules, asks, category_of, parse_policy
from vllm_mcp_ext.errors import ConfigError
from vllm_mcp_ext.policy.audit import AuditRecord, LogAudit, StoreAudit
from vllm_mcp_ext.policy.guardrails import (
    Answer,
    Arguments,
    CallInfo,
    Guardrail,
    Refuse,
    Result,
    load_guardrails,
)
from vllm_mcp_ext.store.sqlite import SqliteStore


def tool(name: str = "t", **hints: bool) -> types.Tool:
    annotations = types.ToolAnnotations(**hints) if hints else None
    return types.Tool(name=name, input_schema={"type": "object"}, annotations=annotations)


READ = tool("read", read_only_hint=True)
DELETE = tool("delete", read_only_hint=False, destructive_hint=True)
FETCH = tool("fetch", destructive_hint=False, open_world_hint=True)
APPEND = tool("append", destructive_hint=False, open_world_hint=False)
BARE = tool("bare")
OPERATOR = ApprovalRules(
    {"readOnly": "never", "destructive": "always", "openWorld": "always", "other": "never"}
)


def test_categories_follow_the_hints_with_the_mcp_defaults_for_missing_ones() -> None:
    assert [category_of(t) for t in (READ, DELETE, FETCH, APPEND, BARE)] == [
        "readOnly",
        "destructive",
        "openWorld",
        "other",
        "destructive",  # no hints: the spec's defaults say destructive and open-world
    ]


def test_an_untrusted_server_saying_read_only_is_treated_as_unannotated() -> None:
    assert category_of(READ, trusted=False) == "destructive"
    assert asks(OPERATOR, READ, None, trusted=False) is True


def test_without_a_request_setting_the_operator_rule_decides() -> None:
    assert [asks(OPERATOR, t, None) for t in (READ, DELETE, FETCH, APPEND, BARE)] == [
        False,
        True,
        True,
        False,
        True,
    ]


def test_a_category_the_operator_did_not_name_asks() -> None:
    assert asks(ApprovalRules({"readOnly": "never"}), APPEND, None) is True


def test_a_request_may_tighten_but_not_loosen_unless_allowed() -> None:
    always, never = (lambda t: True), (lambda t: False)
    assert asks(OPERATOR, READ, always) is True  # tighter than the operator: asks
    assert asks(OPERATOR, DELETE, never) is True  # looser: the operator's rule holds
    loosen = ApprovalRules(OPERATOR.asks, frozenset({"destructive"}))
    assert asks(loosen, DELETE, never) is False
    assert asks(loosen, FETCH, never) is True


def test_without_operator_rules_the_request_alone_decides_and_absent_means_ask() -> None:
    assert asks(None, READ, None) is True
    assert asks(None, DELETE, lambda t: False) is False


def test_a_server_rule_overrides_the_global_one_per_category() -> None:
    merged = OPERATOR.merged(ApprovalRules({"openWorld": "never"}))
    assert (merged.asks["openWorld"], merged.asks["destructive"]) == ("never", "always")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"approvals": {"readonly": "never"}}, "unknown field 'readonly'"),
        ({"approvals": {"readOnly": "sometimes"}}, "'readOnly' must be 'always' or 'never'"),
        ({"approvals": {"requestMayLoosen": ["all"]}}, "requestMayLoosen"),
        ({"audit": "syslog"}, "'audit' must be"),
        ({"maxResponseSeconds": 0}, "'maxResponseSeconds' must be a positive"),
        ({"guardrails": "x:y"}, "'guardrails' must be a list"),
        ({"hooks": []}, "unknown field 'hooks'"),
    ],
)
def test_bad_policy_fields_are_named_at_start(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_policy(section)


def test_policy_defaults_when_absent() -> None:
    policy = parse_policy(None)
    assert (policy.approvals, policy.guardrails, policy.audit, policy.max_response_seconds) == (
        None,
        (),
        "store",
        1800.0,
    )


# -- guardrails ---------------------------------------------------------------------------

CALL = CallInfo("resp_1", "hash", "calc", "add")


class Doubler(Guardrail):
    async def before_call(self, call: CallInfo, arguments: Arguments) -> Arguments:
        return Arguments({k: v * 2 for k, v in arguments.value.items()})


class NoDeletes(Guardrail):
    async def before_call(self, call: CallInfo, arguments: Arguments) -> Refuse | None:
        return Refuse("deleting is not allowed") if call.tool == "delete" else None


class Sleeper(Guardrail):
    async def after_call(self, call: CallInfo, result: Result) -> Result:
        await asyncio.sleep(10)
        return result


class Broken(Guardrail):
    async def on_answer(self, answer: Answer) -> Answer:
        raise RuntimeError("bug in the hook")


async def test_hooks_run_in_order_and_may_change_the_arguments() -> None:
    rails = load_guardrails([f"{__name__}:Doubler", f"{__name__}:Doubler"], 1.0)
    assert await rails.before_call(CALL, {"a": 1}) == {"a": 4}


async def test_a_refusal_stops_the_call() -> None:
    rails = load_guardrails([f"{__name__}:NoDeletes", f"{__name__}:Doubler"], 1.0)
    out = await rails.before_call(CallInfo("r", None, "fs", "delete"), {"path": "/"})
    assert out == Refuse("deleting is not allowed")


async def test_a_slow_hook_is_cut_off_and_refuses() -> None:
    rails = load_guardrails([f"{__name__}:Sleeper"], 0.05)
    out = await asyncio.wait_for(rails.after_call(CALL, Result("5")), 2)
    assert isinstance(out, Refuse) and "did not answer within 0.05s" in out.reason


async def test_a_hook_that_raises_refuses_without_its_message(caplog: pytest.LogCaptureFixture) -> None:
    rails = load_guardrails([f"{__name__}:Broken"], 1.0)
    out = await rails.on_answer(Answer("r", None, "hello"))
    assert out == Refuse("guardrail Broken failed")
    assert rails.checks_answers and not load_guardrails([f"{__name__}:Doubler"], 1).checks_answers


def test_the_shipped_example_hook_loads_and_a_missing_one_is_named() -> None:
    assert load_guardrails(["examples.guardrails.redact_email:RedactEmails"], 1.0)
    with pytest.raises(ConfigError, match="cannot load 'nowhere:Hook'"):
        load_guardrails(["nowhere:Hook"], 1.0)
    with pytest.raises(ConfigError, match=r"not a vllm_mcp_ext\.policy\.guardrails\.Guardrail"):
        load_guardrails(["json:dumps"], 1.0)


async def test_the_example_hook_redacts_addresses_in_results_and_answers() -> None:
    rails = load_guardrails(["examples.guardrails.redact_email:RedactEmails"], 1.0)
    result = await rails.after_call(CALL, Result("write to ada.l@example.org or bob@test.io"))
    answer = await rails.on_answer(Answer("r", None, "Mail ada.l@example.org."))
    assert isinstance(result, Result) and isinstance(answer, Answer)
    assert (result.text, answer.text) == ("write to [email] or [email]", "Mail [email].")


# -- audit ----------------------------------------------------------------------------------


def entry(caller: str | None, at: float, outcome: str = "ok") -> AuditRecord:
    return AuditRecord(at, caller, "resp_1", "calc", "add", outcome, 12.5)  # type: ignore[arg-type]


async def test_the_store_sink_keeps_records_per_key_newest_first(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "audit.sqlite3")
    await store.open()
    try:
        audit = StoreAudit(store.db)
        for record in (entry("a", 1.0), entry("b", 2.0), entry("a", 3.0, "refused")):
            await audit.record(record)
        assert await audit.records("a") == [entry("a", 3.0, "refused"), entry("a", 1.0)]
        assert [r.caller for r in await audit.records(None)] == ["a", "b", "a"]
        assert await audit.records("c") == []
    finally:
        await store.close()


async def test_the_store_sink_prunes_to_its_bound(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "audit.sqlite3")
    await store.open()
    try:
        audit = StoreAudit(store.db, keep=10)
        for i in range(1000):
            await audit.record(entry("a", float(i)))
        kept = await audit.records("a", limit=1000)
        assert len(kept) <= 11 and kept[0].at == 999.0
    finally:
        await store.close()


async def test_the_log_sink_writes_one_json_line_without_arguments(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vllm_mcp_ext.audit"):
        await LogAudit().record(entry("a", 1.0))
    (line,) = [r.getMessage() for r in caplog.records if r.name == "vllm_mcp_ext.audit"]
    assert json.loads(line) == {
        "at": 1.0,
        "caller": "a",
        "response_id": "resp_1",
        "server_label": "calc",
        "tool": "add",
        "outcome": "ok",
        "duration_ms": 12.5,
        "error_code": None,
    }
