"""`View`: the configured servers one ``/mcp`` door shows, and how their names appear.

``/mcp`` (the aggregate) shows every server the caller may use: a tool or a prompt is named
``<label>__<name>``; resource URIs and URI templates are shown as the server lists them (a URI
already names its scheme and authority) and routed back to the server that listed them. One
aggregate page holds each server's first page in turn, up to the first server that has more: the
cursor then says which server and that server's own cursor. ``/mcp/<label>`` shows one server with its own names and cursors, untouched.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from mcp import types
from mcp.shared.exceptions import MCPError

from vllm_mcp_ext.servers.gateway import SEPARATOR


@dataclass(frozen=True)
class Page:
    label: str  # the server this page comes from
    cursor: str | None  # that server's own cursor


@dataclass(frozen=True)
class View:
    labels: tuple[str, ...]  # the servers shown, in configured order
    aggregate: bool  # names carry the label (``/mcp``); else one server as itself

    def shown(self, label: str, name: str) -> str:
        return f"{label}{SEPARATOR}{name}" if self.aggregate else name

    def candidates(self, shown: str) -> list[tuple[str, str]]:
        """The (label, own name) pairs a shown name can stand for, in configured order: more than
        one only when a label ends in ``_`` or a name starts with one."""
        if not self.aggregate:
            return [(label, shown) for label in self.labels]
        return [
            (label, shown[len(label) + len(SEPARATOR) :])
            for label in self.labels
            if shown.startswith(label + SEPARATOR) and len(shown) > len(label) + len(SEPARATOR)
        ]

    def page(self, cursor: str | None) -> Page | None:
        """Where a list request starts; None when the view has no server."""
        if not self.labels:
            return None
        if not self.aggregate:
            return Page(self.labels[0], cursor)
        if cursor is None:
            return Page(self.labels[0], None)
        try:
            label, own = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        except (ValueError, TypeError, binascii.Error):
            label = own = None
        if label not in self.labels or not (own is None or isinstance(own, str)):
            raise MCPError(types.INVALID_PARAMS, "invalid cursor")
        return Page(label, own)

    def following(self, label: str) -> Page | None:
        """The first page of the server after ``label``; None at the end (or in a one-server view)."""
        index = self.labels.index(label) + 1
        if not self.aggregate or index == len(self.labels):
            return None
        return Page(self.labels[index], None)

    def cursor(self, page: Page) -> str | None:
        """The cursor the client sends back for ``page``."""
        if not self.aggregate:
            return page.cursor
        return base64.urlsafe_b64encode(json.dumps([page.label, page.cursor]).encode()).decode()
