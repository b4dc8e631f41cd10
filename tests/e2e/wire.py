"""Everything the server sends on `/v1/responses*`, captured under the real `openai` SDK, and
its check against the Open Responses schema.

The session's SDK clients use `CapturingTransport`, so every response body and every stream
event of every end-to-end test is validated, not a sample.

That schema has no MCP items, tools or events: those follow OpenAI's wire format (docs/events.md)
and are left out of the check; everything else must validate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema

SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / "openresponses-openapi.json"
MCP_ITEMS = {"mcp_list_tools", "mcp_call", "mcp_approval_request", "mcp_elicitation_request"}
# Event types whose names differ between the two: we follow OpenAI's (docs/events.md).
OPENAI_NAMES = {"response.reasoning_text.delta", "response.reasoning_text.done"}


@dataclass
class Captured:
    url: str
    status: int
    bodies: list[Any] = field(default_factory=list)  # one JSON body, or every SSE event


class _Tee(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, record: Captured, sse: bool):
        self.stream, self.record, self.sse, self.chunks = stream, record, sse, bytearray()

    def __iter__(self):
        for chunk in self.stream:
            self.chunks.extend(chunk)
            yield chunk

    def close(self) -> None:
        self.stream.close()
        text = self.chunks.decode(errors="replace")
        if self.sse:
            self.record.bodies = [
                json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")
            ]
        elif text.strip():
            self.record.bodies = [json.loads(text)]


class CapturingTransport(httpx.HTTPTransport):
    def __init__(self, sink: list[Captured]):
        super().__init__()
        self.sink = sink

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if not request.url.path.startswith("/v1/responses"):
            return response
        record = Captured(str(request.url), response.status_code)
        self.sink.append(record)
        sse = response.headers.get("content-type", "").startswith("text/event-stream")
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Tee(response.stream, record, sse),
            extensions=response.extensions,
            request=request,
        )


class OpenResponses:
    """Validators for the spec's schemas."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.events = {}
        for name, schema in spec["components"]["schemas"].items():
            enum = schema.get("properties", {}).get("type", {}).get("enum")
            if name.endswith("StreamingEvent") and enum:
                self.events[enum[0]] = name

    @classmethod
    def load(cls) -> OpenResponses | None:
        return cls(json.loads(SPEC.read_text())) if SPEC.exists() else None

    def errors(self, name: str, value: Any) -> list[str]:
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"#/components/schemas/{name}", "components": self.spec["components"]}
        )
        return [f"{name} {list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(value)]

    def check_body(self, body: Any) -> list[str]:
        if isinstance(body, dict) and body.get("object") == "response.compaction":
            return self.errors("CompactResource", body)  # POST /v1/responses/compact
        if isinstance(body, dict) and body.get("object") == "response" and "deleted" not in body:
            return self.errors("ResponseResource", without_mcp(body))
        if isinstance(body, dict) and "error" in body:
            code = body["error"].get("code") if isinstance(body["error"], dict) else None
            missing = [] if isinstance(code, str) else ["an error body without a code the SDKs can branch on"]
            return missing + self.errors("ErrorPayload", body["error"])
        return []  # lists and deletion results: not in the spec

    def check_event(self, event: dict[str, Any]) -> list[str]:
        kind = event.get("type", "")
        if kind.startswith("response.mcp") or (event.get("item") or {}).get("type") in MCP_ITEMS:
            return []
        if "response" in event:
            event = {**event, "response": without_mcp(event["response"])}
        if kind in OPENAI_NAMES:
            return []
        if kind not in self.events:
            return [f"event {kind} is in neither spec"]
        return self.errors(self.events[kind], event)

    def check(self, record: Captured) -> list[str]:
        sse = len(record.bodies) != 1 or "sequence_number" in (record.bodies[0] or {})
        found = [e for b in record.bodies for e in (self.check_event(b) if sse else self.check_body(b))]
        return [f"{record.url} ({record.status}): {e}" for e in found]


def without_mcp(response: dict[str, Any]) -> dict[str, Any]:
    """The response less what follows OpenAI rather than Open Responses (docs/events.md)."""
    choice = response.get("tool_choice")
    text = response.get("text")
    if isinstance(text, dict) and (text.get("format") or {}).get("type") == "json_schema":
        text = {**text, "format": {**text["format"], "schema": None}}  # OpenAI echoes the schema
    return {
        **response,
        "text": text,
        "tool_choice": "required" if isinstance(choice, dict) and choice.get("type") == "mcp" else choice,
        "output": [i for i in response.get("output", []) if i.get("type") not in MCP_ITEMS],
        "tools": [t for t in response.get("tools", []) if t.get("type") != "mcp"],
    }
