"""What the engine needs from durable storage: the `SessionStore` protocol, its rows and its exceptions.

The engine is sans-I/O: it talks to storage only through this protocol and catches only `StoreError`.
Two implementations: `sqlite_store.SqliteStore` (the server's, durable on disk) and
`memory_store.MemoryStore` (the engine's unit tests; durable only as long as the object lives, which
is what a test's "restart" needs).

Contract every implementation keeps (tests/reference_server/test_store_contract.py runs it on both):
- A method that returns has made its change durable (for create, snapshot, close, an expiry and a
  retry reply, before the engine replies); a method that fails raises `StoreError` and changes nothing.
- `create_session` raises `SessionIdTaken` when the id is in use, and nothing else for that case.
- Revisions are kept newest `max_revisions_kept`; `load_revisions` yields newest first, a revision it
  cannot read as `(revision, reason)`.
- Every open raises `epoch` by one, durably, before anything is served (object ids never repeat, INS-1).
- Reads are lazy: opening loads no session.

This module holds no storage technology and must never import one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from stui_protocol_kit.protocol.lifecycle import Timeouts


class StoreError(Exception):
    """The store cannot be opened or used; the message says which file (or part) and why."""


class SessionIdTaken(StoreError):
    """`create_session` was given a session id that is already stored."""


@dataclass(frozen=True)
class SessionRow:
    """One session as stored (no state: that lives in revisions)."""

    session_id: str
    client_id: str
    token_digest: bytes
    created_at: float
    last_active_at: float
    status: str  # lifecycle.State value: active, closed, expired
    ended_at: float | None
    head_revision: int


@dataclass(frozen=True)
class StoredRevision:
    revision: int
    saved_at: float
    state: bytes
    checksum: bytes

    @property
    def intact(self) -> bool:
        return checksum(self.state) == self.checksum


@dataclass(frozen=True)
class RetryRow:
    request_id: str
    fingerprint: bytes
    reply: bytes
    stored_at: float


def checksum(state: bytes) -> bytes:
    return hashlib.sha256(state).digest()


class SessionStore(Protocol):
    """Durable sessions, revisions and retry replies, as the engine uses them. Single-threaded."""

    epoch: int  # the object-id epoch of this open

    # -- durable changes (committed when the call returns) -------------------------------------------
    def create_session(self, row: SessionRow, state: bytes) -> None: ...
    def save_snapshot(self, session_id: str, revision: int, saved_at: float, state: bytes, retry: RetryRow) -> None:
        ...
    def close_session(self, session_id: str, closed_at: float, retry: RetryRow) -> None: ...
    def expire_session(self, session_id: str, expired_at: float) -> None: ...
    def put_retry(self, session_id: str, retry: RetryRow) -> None: ...

    # -- lazy reads ------------------------------------------------------------------------------------
    def load_session(self, session_id: str) -> SessionRow | None: ...
    def load_revisions(self, session_id: str) -> Iterator[StoredRevision | tuple[int, str]]: ...
    def load_retry_rows(self, session_id: str, since: float) -> list[RetryRow]: ...
    def active_sessions_of_client(self, client_id: str) -> list[tuple[str, float, float]]: ...
    def session_count(self) -> int: ...
    def active_session_count(self, now: float, timeouts: Timeouts, started_at: float) -> int:
        """Sessions stored as active whose deadline (as stored, for a server started at `started_at`)
        is after `now`: what counts against max_sessions (LIM-6)."""
        ...

    # -- housekeeping (batched, off the reply path) ----------------------------------------------------
    def flush_activity(self, activity: Iterable[tuple[str, float]]) -> None: ...
    def mark_expired(self, expired: Iterable[tuple[str, float]]) -> None: ...
    def expire_overdue(self, now: float, timeouts: Timeouts, started_at: float) -> int: ...
    def purge(self, now: float, timeouts: Timeouts, retry_window_s: float) -> list[str]: ...

    def close(self) -> None: ...
