"""Replies kept for retried request ids (spec RTY): a repeat is answered without executing again.

Entries are keyed by (scope, request id): the scope is the session id for session-scoped commands
and ("create", client_id) for session.create. Each entry holds a fingerprint of the request's
command and parameters, so that reusing an id for a different request is told apart from a retry,
and the reply bytes, which are sent back verbatim (same timestamp).

This module is memory only and must never execute a command or touch storage: the durable copies of
snapshot/close replies are written by storage in the same transaction as the change, and handed
back here when a session is loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

Scope = str | tuple[str, str]


@dataclass(frozen=True)
class CachedReply:
    fingerprint: bytes
    reply: bytes
    stored_at: float


def fingerprint(command: str, parameters: dict[str, Any]) -> bytes:
    """Digest of what a retry must repeat. The token is left out: it was checked before the cache
    is consulted, and a digest of it need not sit in the cache or the retry table."""
    relevant = {k: v for k, v in parameters.items() if k != "token"}
    canonical = json.dumps([command, relevant], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).digest()


class ReplyCache:
    """In-memory replies, expired `window_s` after they were stored (oldest first)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._entries: dict[tuple[Scope, str], CachedReply] = {}
        # Insertion order is time order (the clock does not go back within a process), so expiry
        # pops from the left until it meets a young entry.
        self._order: deque[tuple[float, tuple[Scope, str]]] = deque()

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
        self._order.append((entry.stored_at, key))

    def expire(self, now: float) -> None:
        while self._order and self._order[0][0] + self.window_s <= now:
            stored_at, key = self._order.popleft()
            entry = self._entries.get(key)
            if entry is not None and entry.stored_at == stored_at:
                del self._entries[key]

    def forget_scopes(self, scopes: set[Scope]) -> None:
        """Drop purged sessions' replies (their ids are unknown from now on); one pass for a batch."""
        if scopes:
            for key in [k for k in self._entries if k[0] in scopes]:
                del self._entries[key]
