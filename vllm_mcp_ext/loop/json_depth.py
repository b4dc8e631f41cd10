"""Where a JSON text that arrives in pieces stands, each piece scanned once.

A tool call's arguments stream a token at a time and the call can start the moment they close
their object. Parsing the whole text again at every closing brace costs time that grows with the
argument (code and patches close many braces); this tracks the nesting depth outside strings so
the text is parsed only when its top level has closed.
"""

from __future__ import annotations

import re

_STRUCTURAL = re.compile(r'[{}\[\]"\\]')


class JsonDepth:
    """Nesting depth outside strings, whether the text is inside a string, and whether a
    backslash in a string escapes the next piece's first character."""

    __slots__ = ("depth", "escaped", "in_string")

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False

    @property
    def closed(self) -> bool:
        """Every bracket opened so far is closed and no string is open: the only states in which
        the text can be one whole JSON value."""
        return self.depth == 0 and not self.in_string

    def feed(self, piece: str) -> None:
        if not piece:
            return
        skip = 0 if self.escaped else -1  # index of a character a backslash escaped
        self.escaped = False
        for match in _STRUCTURAL.finditer(piece):
            at = match.start()
            if at == skip:
                continue
            char = piece[at]
            if self.in_string:
                if char == "\\":
                    if at + 1 == len(piece):
                        self.escaped = True
                    skip = at + 1
                elif char == '"':
                    self.in_string = False
            elif char == '"':
                self.in_string = True
            elif char in "{[":
                self.depth += 1
            elif char in "}]":
                self.depth -= 1
