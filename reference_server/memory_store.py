"""A `SessionStore` in memory: the engine's unit tests run on it (no file, no fsync).

It keeps the contract of stui_protocol_kit.reference_server.store exactly as the SQLite store does
(tests/reference_server/test_store_contract.py runs the same checks on both): what a method has
changed when it returns stays changed for every later open of the same `MemoryData`, so a test's
"restart" (`reopen()`) sees what was "durable" and nothing else. Lifecycle formulas are
stui_protocol_kit.protocol.lifecycle's own functions, not a copy.

It must never be used by the server itself: nothing here survives the process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from stui_protocol_kit.protocol.lifecycle import State, Timeouts, deadline, idle_base_after_start, retention_end
from stui_protocol_kit.reference_server.store import (
    RetryRow,
    SessionIdTaken,
    SessionRow,
    StoredRevision,
    StoreError,
    checksum,
)


@dataclass
class MemoryData:
    """What a MemoryStore has made "durable": shared by every open of it."""

    sessions: dict[str, SessionRow] = field(default_factory=dict)
    revisions: dict[str, dict[int, StoredRevision]] = field(default_factory=dict)
    retries: dict[str, dict[str, RetryRow]] = field(default_factory=dict)
    epoch: int = 0


class MemoryStore:
    """The in-memory session store. Single-threaded, like the engine that owns it."""

    def __init__(self, data: MemoryData | None = None, *, max_revisions_kept: int = 5) -> None:
        self.data = data if data is not None else MemoryData()
        self.max_revisions_kept = max_revisions_kept
        self.rows_loaded = 0
        self.data.epoch += 1  # every open raises the object-id epoch (INS-1)
        self.epoch = self.data.epoch
        self._closed = False

    def reopen(self, *, max_revisions_kept: int | None = None) -> MemoryStore:
        """A new open of the same data, as a server restart would make (closes this one)."""
        self.close()
        return MemoryStore(self.data, max_revisions_kept=max_revisions_kept or self.max_revisions_kept)

    def _data(self) -> MemoryData:
        if self._closed:
            raise StoreError("session store is closed")
        return self.data

    # -- durable changes -------------------------------------------------------------------------------

    def create_session(self, row: SessionRow, state: bytes) -> None:
        data = self._data()
        if row.session_id in data.sessions:
            raise SessionIdTaken(f"session id {row.session_id[:8]}... is taken")
        data.sessions[row.session_id] = row
        data.revisions[row.session_id] = {
            row.head_revision: StoredRevision(row.head_revision, row.created_at, state, checksum(state)),
        }

    def save_snapshot(self, session_id: str, revision: int, saved_at: float, state: bytes, retry: RetryRow) -> None:
        data = self._data()
        row = data.sessions[session_id]
        kept = data.revisions.setdefault(session_id, {})
        if revision in kept:
            raise StoreError(f"revision {revision} of session {session_id[:8]}... exists")
        kept[revision] = StoredRevision(revision, saved_at, state, checksum(state))
        for old in [n for n in kept if n <= revision - self.max_revisions_kept]:
            del kept[old]
        data.sessions[session_id] = dataclasses.replace(
            row, head_revision=revision, last_active_at=max(row.last_active_at, saved_at))
        data.retries.setdefault(session_id, {})[retry.request_id] = retry

    def close_session(self, session_id: str, closed_at: float, retry: RetryRow) -> None:
        data = self._data()
        row = data.sessions[session_id]
        data.sessions[session_id] = dataclasses.replace(
            row, status=State.CLOSED.value, ended_at=closed_at, last_active_at=max(row.last_active_at, closed_at))
        data.retries.setdefault(session_id, {})[retry.request_id] = retry

    def expire_session(self, session_id: str, expired_at: float) -> None:
        self.mark_expired([(session_id, expired_at)])

    def put_retry(self, session_id: str, retry: RetryRow) -> None:
        self._data().retries.setdefault(session_id, {})[retry.request_id] = retry

    # -- lazy reads ------------------------------------------------------------------------------------

    def load_session(self, session_id: str) -> SessionRow | None:
        row = self._data().sessions.get(session_id)
        if row is not None:
            self.rows_loaded += 1
        return row

    def load_revisions(self, session_id: str) -> Iterator[StoredRevision | tuple[int, str]]:
        kept = self._data().revisions.get(session_id, {})
        return iter([kept[n] for n in sorted(kept, reverse=True)])

    def load_retry_rows(self, session_id: str, since: float) -> list[RetryRow]:
        rows = self._data().retries.get(session_id, {}).values()
        return sorted((r for r in rows if r.stored_at > since), key=lambda r: r.stored_at)

    def active_sessions_of_client(self, client_id: str) -> list[tuple[str, float, float]]:
        return [(r.session_id, r.created_at, r.last_active_at) for r in self._data().sessions.values()
                if r.client_id == client_id and r.status == State.ACTIVE.value]

    def session_count(self) -> int:
        return len(self._data().sessions)

    def active_session_count(self, now: float, timeouts: Timeouts, started_at: float) -> int:
        return sum(1 for row in self._data().sessions.values() if row.status == State.ACTIVE.value and deadline(
            row.created_at, idle_base_after_start(row.last_active_at, started_at), timeouts)[0] > now)

    # -- housekeeping ----------------------------------------------------------------------------------

    def flush_activity(self, activity: Iterable[tuple[str, float]]) -> None:
        data = self._data()
        for session_id, at in activity:
            row = data.sessions.get(session_id)
            if row is not None and row.last_active_at < at:
                data.sessions[session_id] = dataclasses.replace(row, last_active_at=at)

    def mark_expired(self, expired: Iterable[tuple[str, float]]) -> None:
        data = self._data()
        for session_id, at in expired:
            row = data.sessions.get(session_id)
            if row is not None and row.status == State.ACTIVE.value:
                data.sessions[session_id] = dataclasses.replace(row, status=State.EXPIRED.value, ended_at=at)

    def expire_overdue(self, now: float, timeouts: Timeouts, started_at: float) -> int:
        data = self._data()
        count = 0
        for row in list(data.sessions.values()):
            if row.status != State.ACTIVE.value:
                continue
            moment, _ = deadline(row.created_at, idle_base_after_start(row.last_active_at, started_at), timeouts)
            if moment <= now:
                data.sessions[row.session_id] = dataclasses.replace(row, status=State.EXPIRED.value, ended_at=moment)
                count += 1
        return count

    def purge(self, now: float, timeouts: Timeouts, retry_window_s: float) -> list[str]:
        data = self._data()
        ids = [r.session_id for r in data.sessions.values()
               if r.status != State.ACTIVE.value and r.ended_at is not None
               and retention_end(r.ended_at, timeouts) <= now]
        for session_id in ids:
            del data.sessions[session_id]
            data.revisions.pop(session_id, None)
            data.retries.pop(session_id, None)
        for rows in data.retries.values():
            for request_id in [k for k, r in rows.items() if r.stored_at + retry_window_s <= now]:
                del rows[request_id]
        return ids

    def close(self) -> None:
        self._closed = True
