"""Replies kept for retried request ids (spec RTY): a repeat is answered without executing again.

Entries are keyed by (session id, request id). Only commands whose schema marks them `retry_cached`
(those that change something: snapshot, close, evaluate, inspect) are kept; read-only commands are
safe to execute again, and session.create is never replayed, since its reply holds a token and
nothing in a repeated create proves the sender is the one who first sent it (RTY-11). Each entry holds
a digest of the request's command and parameters, so that reusing an id for a different request is
told apart from a retry, and the reply bytes, which are sent back verbatim (same timestamp).

The cache is bounded in bytes (`retry_cache_bytes`, announced in hello): each entry counts as its
reply's size plus ENTRY_OVERHEAD_BYTES (the key, the digest, the bookkeeping). Past the bound the
oldest entry of the session holding the most bytes goes first (RTY-12), so one client flooding its
own sessions with large replies drops its own entries before anyone else's. A dropped snapshot/close
reply is still in storage (RTY-6 keeps them durably): the cache remembers which sessions lost such
an entry and the engine then asks storage on a miss.

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

Scope = str  # the session id

# What one entry costs beyond its reply bytes, counted against the bound: a measured upper bound of
# the key tuple, the request id string (128 characters at most), the digest, the entry object and
# its heap records (RTY-12 lets a server count at most 1024 bytes per entry).
ENTRY_OVERHEAD_BYTES = 1024


class Fingerprint:
    """Digest of what a retry must repeat. The token is left out: it was checked before the cache is
    consulted, and a digest of it need not sit in the cache or the retry table. Computed only when
    first needed (a cache hit, a cached reply, a durable retry row): most requests are never cached
    (read-only commands) or never retried, so the hot path skips the canonical JSON and the hash."""

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


@dataclass(frozen=True, slots=True)
class CachedReply:
    fingerprint: Fingerprint
    reply: bytes
    stored_at: float
    durable: bool = False  # storage holds a copy (a snapshot/close reply, RTY-6)

    @property
    def cost(self) -> int:
        return len(self.reply) + ENTRY_OVERHEAD_BYTES


class ReplyCache:
    """In-memory replies, expired `window_s` after they were stored, at most `max_bytes` in all."""

    def __init__(self, window_s: float, max_bytes: int | None = None) -> None:
        self.window_s = window_s
        self.max_bytes = max_bytes
        self.bytes = 0  # the entries' cost, as counted against max_bytes
        self.evictions = 0  # entries dropped for the bound before their window ended
        self._count = 0
        self._scopes: dict[Scope, dict[str, CachedReply]] = {}  # per session, in insertion order
        self._scope_bytes: dict[Scope, int] = {}
        # A heap by stored_at, not insertion order: the clock is wall time and may step back, and
        # durable replies loaded with a session carry their original (older) times.
        self._order: list[tuple[float, int, Scope, str]] = []
        # A lazy max-heap of sessions by their bytes: stale records are skipped when popped.
        self._largest: list[tuple[int, int, Scope]] = []
        self._sequence = itertools.count()
        self._lost_durable: set[Scope] = set()

    def __len__(self) -> int:
        return self._count

    def get(self, scope: Scope, request_id: str, now: float) -> CachedReply | None:
        entries = self._scopes.get(scope)
        entry = entries.get(request_id) if entries is not None else None
        if entry is None or entry.stored_at + self.window_s <= now:
            return None
        return entry

    def put(self, scope: Scope, request_id: str, entry: CachedReply) -> None:
        if self.window_s <= 0:
            return
        entry.fingerprint.digest  # noqa: B018 - computed now, so the request's parameters are not kept
        entries = self._scopes.setdefault(scope, {})
        old = entries.pop(request_id, None)
        if old is not None:
            self._account(scope, -old.cost)
            self._count -= 1
        entries[request_id] = entry
        self._count += 1
        self._account(scope, entry.cost)
        heapq.heappush(self._order, (entry.stored_at, next(self._sequence), scope, request_id))
        self._shrink()
        self._compact()

    def lost_durable(self, scope: Scope) -> bool:
        """Whether a durable reply of this session was dropped for the bound (storage still has it)."""
        return scope in self._lost_durable

    def expire(self, now: float) -> None:
        while self._order and self._order[0][0] + self.window_s <= now:
            stored_at, _, scope, request_id = heapq.heappop(self._order)
            entry = self._scopes.get(scope, {}).get(request_id)
            if entry is not None and entry.stored_at == stored_at:
                self._remove(scope, request_id)

    def forget_scopes(self, scopes: set[Scope]) -> None:
        """Drop purged sessions' replies (their ids are unknown from now on)."""
        for scope in scopes:
            entries = self._scopes.pop(scope, None)
            if entries is not None:
                self.bytes -= self._scope_bytes.pop(scope, 0)
                self._count -= len(entries)
            self._lost_durable.discard(scope)

    # -- the bound --------------------------------------------------------------------------------------

    def _account(self, scope: Scope, delta: int) -> None:
        self.bytes += delta
        total = self._scope_bytes.get(scope, 0) + delta
        if total > 0:
            self._scope_bytes[scope] = total
            heapq.heappush(self._largest, (-total, next(self._sequence), scope))
        else:
            self._scope_bytes.pop(scope, None)

    def _remove(self, scope: Scope, request_id: str) -> CachedReply:
        entries = self._scopes[scope]
        entry = entries.pop(request_id)
        if not entries:
            del self._scopes[scope]
        self._count -= 1
        self._account(scope, -entry.cost)
        return entry

    def _shrink(self) -> None:
        """Over the bound: drop the oldest entry of the session holding the most bytes, until within."""
        while self.max_bytes is not None and self.bytes > self.max_bytes and self._largest:
            negative, _, scope = self._largest[0]
            if self._scope_bytes.get(scope) != -negative:
                heapq.heappop(self._largest)  # stale: that session's bytes changed since
                continue
            request_id = next(iter(self._scopes[scope]))
            if self._remove(scope, request_id).durable:
                self._lost_durable.add(scope)
            self.evictions += 1

    def _compact(self) -> None:
        """Stale heap records (dropped entries, changed totals) would otherwise pile up for a window."""
        live = len(self._scope_bytes)
        if len(self._largest) > 2 * live + 1024:
            self._largest = [(-b, next(self._sequence), s) for s, b in self._scope_bytes.items()]
            heapq.heapify(self._largest)
        if len(self._order) > 2 * self._count + 1024:
            self._order = [(e.stored_at, next(self._sequence), s, rid)
                           for s, entries in self._scopes.items() for rid, e in entries.items()]
            heapq.heapify(self._order)
