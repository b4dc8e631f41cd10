"""Keep request secrets (``headers`` values, ``authorization``) out of everything we emit.

A `Redactor` scrubs the secrets of one credential set from texts and MCP values before they reach
a response item. `secrets_in_use` registers them process-wide while a request or a pooled session
holds them, and a log record factory scrubs every log record (message, arguments and traceback)
of any registered secret, whichever library logs it (the MCP SDK, httpx, vLLM).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel

MASK = "[REDACTED]"
# Secrets shorter than this are scrubbed only where they stand alone (not inside a longer word):
# as substrings they would mask ordinary text; as whole tokens they still never leak verbatim.
MIN_SECRET_LENGTH = 4
_SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token|key|auth|sig|credential|session", re.IGNORECASE)

M = TypeVar("M", bound=BaseModel)


def secrets_of(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The strings to hide: every header value, and the credential after a scheme ("Bearer x")."""
    found: set[str] = set()
    for value in headers.values():
        value = value.strip()
        found.add(value)
        scheme, _, credential = value.partition(" ")
        credential = credential.strip()
        if credential:
            found.add(credential)
            if scheme.lower() == "basic":
                found.update(_basic_parts(credential))
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def _basic_parts(credential: str) -> set[str]:
    """``user:password`` and the password of a Basic credential, as they would leak decoded."""
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return set()
    _, _, password = decoded.partition(":")
    return {decoded, password} - {""}


def url_secrets(url: str) -> tuple[str, ...]:
    """What in an operator's URL is a credential: the password (as written and decoded) and the
    values of secret-looking query parameters."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ()
    found: set[str] = set()
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo:
        password = userinfo.split(":", 1)[1]
        found.update({password, unquote(password)})
    for key, value in _query_pairs(parts.query):
        if _SECRET_QUERY_KEY.search(unquote(key)) and value:
            found.update({value, unquote(value)})
    return tuple(s for s in found if s)


def display_url(url: str) -> str:
    """An operator's URL as shown to clients and in errors: ``scheme://host[:port]/path``,
    without userinfo, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an invalid URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else "(a URL)"


def redact_url(url: str) -> str:
    """A URL for logs and operator errors: the password and secret-looking query values masked
    (``?password=``, ``?token=``, percent-encoded forms included); the rest kept."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an invalid URL)"
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    query = "&".join(
        f"{key}=***"
        if _SECRET_QUERY_KEY.search(unquote(key)) and value
        else (f"{key}={value}" if eq else key)
        for key, eq, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return parts._replace(netloc=netloc, query=query, fragment="").geturl()


def without_secrets(url: str) -> str:
    """A URL as the client sent it, for the response's echo: the userinfo, the fragment and
    secret-looking query parameters (``?token=``, ``?api_key=``, ...) left out, the rest kept."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    hostport = parts.netloc.rpartition("@")[2]
    query = "&".join(
        f"{key}={value}" if eq else key
        for key, eq, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
        if not _SECRET_QUERY_KEY.search(unquote(key))
    )
    return parts._replace(netloc=hostport, query=query, fragment="").geturl()


def _query_pairs(query: str) -> list[tuple[str, str]]:
    return [(k, v) for k, _, v in (pair.partition("=") for pair in query.split("&") if pair)]


class Redactor:
    def __init__(self, secrets: Iterable[str]):
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        # A secret inside JSON text (a tool's text that quotes JSON) appears escaped: scrub that too.
        self._forms = tuple(dict.fromkeys(form for s in self.secrets for form in (s, json.dumps(s)[1:-1])))
        short = [re.escape(s) for s in self._forms if len(s) < MIN_SECRET_LENGTH]
        # a short secret only where it stands alone: not inside a longer word or number
        self._short = (
            re.compile(rf"(?<![\w])(?:{'|'.join(sorted(set(short), key=len, reverse=True))})(?![\w])")
            if short
            else None
        )

    def text(self, value: str) -> str:
        for secret in self._forms:
            if len(secret) >= MIN_SECRET_LENGTH and secret in value:
                value = value.replace(secret, MASK)
        if self._short is not None:
            value = self._short.sub(MASK, value)
        return value

    def model(self, value: M) -> M:
        """A pydantic value (a tool list, a call result) with every string scrubbed (keys too)."""
        if not self.secrets:
            return value
        dumped = value.model_dump(mode="json", by_alias=True, exclude_unset=True)
        scrubbed = self._walk(dumped)
        if scrubbed == dumped:
            return value
        return type(value).model_validate(scrubbed, by_alias=True)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self._walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        return value


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
