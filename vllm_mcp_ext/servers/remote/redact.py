"""Keep request secrets (``headers`` values, ``authorization``) out of everything we emit.

A `Redactor` scrubs the secrets of one credential set from texts and MCP values before they reach
a response item. `secrets_in_use` registers them process-wide while a request or a pooled session
holds them, and a log record factory scrubs every log record (message, arguments and traceback)
of any registered secret, whichever library logs it (the MCP SDK, httpx, vLLM).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary text and protect nothing

M = TypeVar("M", bound=BaseModel)


def secrets_of(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The strings to hide: every header value, and the credential after a scheme ("Bearer x")."""
    found: set[str] = set()
    for value in headers.values():
        value = value.strip()
        found.add(value)
        _, _, credential = value.partition(" ")
        if credential.strip():
            found.add(credential.strip())
    return tuple(sorted((s for s in found if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True))


class Redactor:
    def __init__(self, secrets: Iterable[str]):
        self.secrets = tuple(sorted(set(secrets), key=len, reverse=True))
        # A secret inside JSON text appears escaped; scrub that spelling too.
        self._json_forms = tuple(json.dumps(s)[1:-1] for s in self.secrets)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def model(self, value: M) -> M:
        """A pydantic value (a tool list, a call result) with every string scrubbed."""
        if not self.secrets:
            return value
        dumped = value.model_dump_json(by_alias=True, exclude_unset=True)
        scrubbed = dumped
        for form in self._json_forms:
            scrubbed = scrubbed.replace(form, MASK)
        if scrubbed == dumped:
            return value
        return type(value).model_validate_json(scrubbed, by_alias=True)


class _Registry:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.active: tuple[str, ...] = ()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._counts.update(secrets)
            self._refresh()

    def remove(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._counts.subtract(secrets)
            self._counts = +self._counts
            self._refresh()

    def _refresh(self) -> None:
        self.active = tuple(sorted(self._counts, key=len, reverse=True))


_REGISTRY = _Registry()
_installed = False


@contextmanager
def secrets_in_use(secrets: Iterable[str]) -> Iterator[None]:
    """While inside, log records are scrubbed of these secrets."""
    secrets = tuple(secrets)
    install_log_redaction()
    _REGISTRY.add(secrets)
    try:
        yield
    finally:
        _REGISTRY.remove(secrets)


def register(secrets: Iterable[str]) -> None:
    install_log_redaction()
    _REGISTRY.add(secrets)


def unregister(secrets: Iterable[str]) -> None:
    _REGISTRY.remove(secrets)


def install_log_redaction() -> None:
    """Wrap the log record factory once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        active = _REGISTRY.active
        if active:
            _scrub(record, Redactor(active))
        return record

    logging.setLogRecordFactory(factory)


def _scrub(record: logging.LogRecord, redactor: Redactor) -> None:
    try:
        message = record.getMessage()
    except Exception:
        return
    clean = redactor.text(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        scrubbed = redactor.text(text)
        if scrubbed != text:
            record.exc_text = scrubbed
