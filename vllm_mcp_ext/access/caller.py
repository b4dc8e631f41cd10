"""`Caller`: the identity of whoever sends a request, as far as the server knows it.

The identity is the SHA-256 of the API key the request carried (never the key itself: it is what
stored responses record as their owner, and what the permission map may name). Without
``--api-key`` nobody is identified: every request is `ANONYMOUS`, which owns nothing and sees
every stored response, as before keys existed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from argparse import Namespace
from dataclasses import dataclass


def hash_key(key: str) -> str:
    """The hex SHA-256 of an API key: how a key is named in stores, logs and config."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Caller:
    """``key_hash`` None: no key identifies the caller (the server runs without ``--api-key``,
    or the caller is the in-process Python API)."""

    key_hash: str | None = None

    def may_see(self, owner: str | None) -> bool:
        """Whether a stored response owned by ``owner`` (a key hash, or None) is visible."""
        return self.key_hash is None or owner is None or hmac.compare_digest(owner, self.key_hash)


ANONYMOUS = Caller()


@dataclass(frozen=True)
class ApiKeys:
    """The hashes of vLLM's ``--api-key`` values (or ``VLLM_API_KEY``), as vLLM reads them."""

    hashes: frozenset[str] = frozenset()

    @classmethod
    def of(cls, keys: list[str] | tuple[str, ...] | None) -> ApiKeys:
        return cls(frozenset(hash_key(k) for k in keys or () if k))

    @classmethod
    def from_args(cls, args: Namespace) -> ApiKeys:
        # the same precedence as vLLM's own middleware: --api-key, else VLLM_API_KEY
        return cls.of(getattr(args, "api_key", None) or [os.environ.get("VLLM_API_KEY", "")])

    @property
    def required(self) -> bool:
        return bool(self.hashes)

    def caller(self, authorization: str | None) -> Caller | None:
        """The caller an ``Authorization`` header names; None when keys are required and it
        carries none of them. Without keys every request is `ANONYMOUS`."""
        if not self.required:
            return ANONYMOUS
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hash_key(token.strip())
        if not any(hmac.compare_digest(digest, known) for known in self.hashes):
            return None
        return Caller(digest)
