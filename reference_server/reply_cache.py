"""Replies kept for retried request ids (spec RTY): a repeat is answered without executing again.

Entries are keyed by (scope, request id): the scope is the session id for session-scoped commands
and ("create", connection, client_id) for session.create (RTY-10). Each entry holds a fingerprint of the request's
command and parameters, so that reusing an id for a different request is told apart from a retry,
and the reply bytes, which are sent back verbatim (same timestamp).

This module is memory only and must never execute a command or touch storage: the durable copies of
snapshot/close replies (success replies in the same transaction as the change, error replies in one
insert before the reply) are written by storage, and handed back here when a session is loaded.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
from dataclasses import dataclass
from typing import Any

Scope = str | tuple[str, str, str]


class Fingerprint:
    """Digest of what a retry must repeat, computed only when first needed: on a cache hit, or when
    a durable retry row is written. Most requests are never retried, so the hot path skips the
    canonical JSON and the hash. The token is left out: it was checked before the cache is
    consulted, and a digest of it need not sit in the cache or the retry table."""

    __slots__ = ("_command", "_parameters", "_digest")

    def __init__(self, command: str, parameters: dict[str, Any] | None, digest: bytes | None = None) -> None:
        self._command, self._parameters, self._digest = command, parameters, digest

    @classmethod
    def of_digest(cls, digest: bytes) -> Fingerprint:
        return cls("", None, digest)

    @property
    def digest(self) -> bytes:
        if self._digest is None:
            relevant = {k: v for k, v in (self._parameters or {}).items() if k != "token"}
            # sort_keys + json types keep `true` and `1` apart, as RTY requires ("equal as JSON values").
            canonical = json.dumps([self._command, relevant], sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False)
            self._digest = hashlib.sha256(canonical.encode("utf-8")).digest()
            self._parameters = None  # the digest is all that is kept
        return self._digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fingerprint) and self.digest == other.digest

    __hash__ = None  # type: ignore[assignment]


def fingerprint(command: str, parameters: dict[str, Any]) -> Fingerprint:
    return Fingerprint(command, parameters)


@dataclass(frozen=True)
class CachedReply:
    fingerprint: Fingerprint
    reply: bytes
    stored_at: float


class ReplyCache:
    """In-memory replies, expired `window_s` after they were stored (oldest first)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._entries: dict[tuple[Scope, str], CachedReply] = {}
        # A heap by stored_at, not insertion order: the clock is wall time and may step back, and
        # durable replies loaded with a session carry their original (older) times.
        self._order: list[tuple[float, int, tuple[Scope, str]]] = []
        self._sequence = itertools.count()  # ties: never compare keys of mixed types

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, scope: Scope, request_id: str, now: float) -> CachedReply | None:
        entry = self._entries.get((scope, request_id))
        if entry is None or entry.stored_at + self.window_s <= now:
            return None
        return entry

    def put(self, scope: Scope, request_id: str, entry: CachedReply) -> None:
        if self.window_s <= 0:
            return
        key = (scope, request_id)
        self._entries[key] = entry
        heapq.heappush(self._order, (entry.stored_at, next(self._sequence), key))

    def expire(self, now: float) -> None:
        while self._order and self._order[0][0] + self.window_s <= now:
            stored_at, _, key = heapq.heappop(self._order)
            entry = self._entries.get(key)
            if entry is not None and entry.stored_at == stored_at:
                del self._entries[key]

    def forget_scopes(self, scopes: set[Scope]) -> None:
        """Drop purged sessions' replies (their ids are unknown from now on); one pass for a batch."""
        if scopes:
            for key in [k for k in self._entries if k[0] in scopes]:
                del self._entries[key]
