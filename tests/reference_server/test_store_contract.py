"""The SessionStore contract (stui_protocol_kit.reference_server.store), checked on both stores: the
SQLite store the server runs on and the in-memory store the engine's unit tests run on. What the
engine tests show on the memory store holds on SQLite because both keep this contract."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rs_harness import T0

from stui_protocol_kit.protocol.lifecycle import Timeouts, deadline, idle_base_after_start
from stui_protocol_kit.reference_server.memory_store import MemoryStore
from stui_protocol_kit.reference_server.sqlite_store import SqliteStore
from stui_protocol_kit.reference_server.store import (
    RetryRow,
    SessionIdTaken,
    SessionRow,
    SessionStore,
    StoredRevision,
    StoreError,
)

TIMEOUTS = Timeouts(60, 600, 120)
Reopen = Callable[[SessionStore], SessionStore]


@pytest.fixture(params=["memory", "sqlite"])
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SessionStore, Reopen]]:
    if request.param == "memory":
        store: SessionStore = MemoryStore(max_revisions_kept=3)

        def reopen(s: SessionStore) -> SessionStore:
            assert isinstance(s, MemoryStore)
            return s.reopen()
    else:
        store = SqliteStore(tmp_path / "data", max_revisions_kept=3)

        def reopen(s: SessionStore) -> SessionStore:
            s.close()
            return SqliteStore(tmp_path / "data", max_revisions_kept=3)
    holder = [store]
    yield store, lambda s: holder.append(reopen(s)) or holder[-1]
    holder[-1].close()


def row(sid: str, client: str = "c", created: float = T0, last: float | None = None, status: str = "active",
        ended: float | None = None) -> SessionRow:
    return SessionRow(sid, client, b"d" * 32, created, created if last is None else last, status, ended, 0)


def sid(n: int) -> str:
    return f"{n:022d}"


def test_create_load_and_a_taken_id(opened) -> None:
    store, _ = opened
    store.create_session(row(sid(1)), b"state-0")
    assert store.load_session(sid(1)) == row(sid(1))
    assert store.load_session(sid(2)) is None
    with pytest.raises(SessionIdTaken):
        store.create_session(row(sid(1), client="intruder"), b"other")
    assert store.load_session(sid(1)).client_id == "c"  # unchanged
    assert [r.state for r in store.load_revisions(sid(1)) if isinstance(r, StoredRevision)] == [b"state-0"]
    assert store.session_count() == 1


def test_snapshots_keep_the_newest_k_revisions_newest_first(opened) -> None:
    store, _ = opened
    store.create_session(row(sid(1)), b"s0")
    for n in range(1, 6):
        store.save_snapshot(sid(1), n, T0 + n, f"s{n}".encode(), RetryRow(f"r{n}", b"f" * 32, b"reply", T0 + n))
    revisions = list(store.load_revisions(sid(1)))
    assert [(r.revision, r.state, r.intact) for r in revisions] == [(5, b"s5", True), (4, b"s4", True),
                                                                     (3, b"s3", True)]
    loaded = store.load_session(sid(1))
    assert loaded.head_revision == 5 and loaded.last_active_at == T0 + 5


def test_close_expire_and_activity(opened) -> None:
    store, _ = opened
    for n in range(1, 4):
        store.create_session(row(sid(n)), b"{}")
    store.close_session(sid(1), T0 + 5, RetryRow("close", b"f" * 32, b"closed", T0 + 5))
    store.expire_session(sid(1), T0 + 6)  # not active: unchanged
    store.expire_session(sid(2), T0 + 7)
    store.flush_activity([(sid(3), T0 + 9), (sid(3), T0 + 8)])  # never backwards
    closed, expired, active = (store.load_session(sid(n)) for n in range(1, 4))
    assert (closed.status, closed.ended_at, closed.last_active_at) == ("closed", T0 + 5, T0 + 5)
    assert (expired.status, expired.ended_at) == ("expired", T0 + 7)
    assert (active.status, active.last_active_at) == ("active", T0 + 9)
    store.mark_expired([(sid(3), T0 + 10), (sid(1), T0 + 11)])
    assert store.load_session(sid(3)).status == "expired" and store.load_session(sid(1)).status == "closed"
    assert store.active_sessions_of_client("c") == []


def test_retry_rows_since_a_time_oldest_first(opened) -> None:
    store, _ = opened
    store.create_session(row(sid(1)), b"{}")
    store.put_retry(sid(1), RetryRow("b", b"f" * 32, b"B", T0 + 2))
    store.put_retry(sid(1), RetryRow("a", b"f" * 32, b"A", T0 + 1))
    store.put_retry(sid(1), RetryRow("old", b"f" * 32, b"O", T0 - 100))
    assert [r.request_id for r in store.load_retry_rows(sid(1), T0 - 50)] == ["a", "b"]


def test_expire_overdue_follows_the_lifecycle_deadline(opened) -> None:
    store, _ = opened
    started = T0 + 100
    cases = {sid(1): (T0, T0), sid(2): (T0, T0 + 150), sid(3): (T0 - 590, T0 - 590), sid(4): (T0 + 10, T0 + 20)}
    for session_id, (created, last) in cases.items():
        store.create_session(row(session_id, created=created, last=last), b"{}")
    now = T0 + 165
    count = store.expire_overdue(now, TIMEOUTS, started)
    due = {s: deadline(c, idle_base_after_start(la, started), TIMEOUTS)[0] for s, (c, la) in cases.items()}
    assert count == sum(1 for d in due.values() if d <= now) == 3
    for session_id, moment in due.items():
        loaded = store.load_session(session_id)
        assert (loaded.status, loaded.ended_at) == (("expired", moment) if moment <= now else ("active", None))


def test_purge_deletes_tombstones_after_retention_and_old_retry_rows(opened) -> None:
    store, _ = opened
    store.create_session(row(sid(1)), b"{}")
    store.create_session(row(sid(2)), b"{}")
    store.create_session(row(sid(3)), b"{}")
    store.close_session(sid(1), T0, RetryRow("c", b"f" * 32, b"x", T0))
    store.close_session(sid(2), T0 + 50, RetryRow("c", b"f" * 32, b"x", T0 + 50))
    store.put_retry(sid(3), RetryRow("old", b"f" * 32, b"x", T0))
    store.put_retry(sid(3), RetryRow("new", b"f" * 32, b"x", T0 + 100))
    assert store.purge(T0 + 120, TIMEOUTS, 30) == [sid(1)]
    assert store.load_session(sid(1)) is None and list(store.load_revisions(sid(1))) == []
    assert store.load_session(sid(2)) is not None
    assert [r.request_id for r in store.load_retry_rows(sid(3), 0)] == ["new"]


def test_reopen_keeps_what_returned_and_raises_the_epoch(opened) -> None:
    store, reopen = opened
    first_epoch = store.epoch
    store.create_session(row(sid(1)), b"{}")
    store.save_snapshot(sid(1), 1, T0 + 1, b"s1", RetryRow("r1", b"f" * 32, b"reply", T0 + 1))
    again = reopen(store)
    assert again.epoch == first_epoch + 1
    assert again.load_session(sid(1)).head_revision == 1
    assert [r.request_id for r in again.load_retry_rows(sid(1), 0)] == ["r1"]
    third = reopen(again)
    assert third.epoch == first_epoch + 2


def test_a_closed_store_refuses_with_store_error(opened) -> None:
    store, reopen = opened
    fresh = reopen(store)
    fresh.close()
    with pytest.raises(StoreError):
        fresh.load_session(sid(1))


def test_active_session_count_counts_active_rows_before_their_deadline(opened) -> None:
    """LIM-6's count: active rows whose deadline (the lifecycle's formula, from the stored activity
    and the server's start) is after now; closed and expired rows never."""
    store, _ = opened
    store.create_session(row(sid(1)), b"s")  # idle deadline T0+60
    store.create_session(row(sid(2), last=T0 + 50), b"s")  # T0+110
    store.create_session(row(sid(3), status="closed", ended=T0), b"s")
    store.create_session(row(sid(4), status="expired", ended=T0), b"s")
    assert store.active_session_count(T0 + 59, TIMEOUTS, started_at=T0) == 2
    assert store.active_session_count(T0 + 60, TIMEOUTS, started_at=T0) == 1
    # After a restart at T0+100 the idle period counts from the start (lifecycle.idle_base_after_start).
    assert store.active_session_count(T0 + 130, TIMEOUTS, started_at=T0 + 100) == 2
    assert store.active_session_count(T0 + 605, TIMEOUTS, started_at=T0 + 600) == 0  # absolute timeout
