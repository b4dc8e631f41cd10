"""The response as a client following the stream would know it, rebuilt from wire events.

Background responses are polled and cancelled from other requests (and other processes): what
they see is this snapshot, kept in the store as the events go by.
"""

from __future__ import annotations

import copy
from typing import Any


class SnapshotTracker:
    def __init__(self) -> None:
        self.response: dict[str, Any] | None = None
        self.output: list[dict[str, Any]] = []
        self.last_sequence_number = -1

    def feed(self, event: dict[str, Any]) -> None:
        self.last_sequence_number = event.get("sequence_number", self.last_sequence_number)
        kind = event.get("type", "")
        if isinstance(event.get("response"), dict):
            self.response = event["response"]
            if kind != "response.created" and kind != "response.in_progress":
                self.output = list(self.response.get("output") or [])
        elif kind in ("response.output_item.added", "response.output_item.done"):
            index = event["output_index"]
            while len(self.output) <= index:
                self.output.append({})
            self.output[index] = event["item"]
        elif kind == "response.mcp_call_arguments.done":
            item = self.output[event["output_index"]]
            item.update(arguments=event["arguments"], status="calling")

    @property
    def done(self) -> bool:
        return self.response is not None and self.response.get("status") in (
            "completed",
            "incomplete",
            "failed",
        )

    def snapshot(self, status: str | None = None) -> dict[str, Any]:
        assert self.response is not None
        response = copy.deepcopy(self.response)
        response["output"] = copy.deepcopy(self.output)
        if status is not None:
            response["status"] = status
        return response

    def cancelled(self) -> dict[str, Any]:
        """The response as it stands when cancelled: unfinished items marked incomplete."""
        response = self.snapshot("cancelled")
        for item in response["output"]:
            if item.get("status") in ("in_progress", "calling", "searching"):
                item["status"] = "incomplete"
        response["completed_at"] = None
        return response
