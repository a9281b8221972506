"""The SQLite store on real files: what only a file can show. Owner-only files (SEC-11), a foreign or
unreadable database refused and left untouched (PER-12), an interrupted creation set up, a failed
COMMIT not wedging the connection, corrupt revisions falling back (PER-2, PER-10), truncation and a
second server refused, lazy loading of a large store, no token at rest, and the two SQL statements
that restate lifecycle formulas agreeing with them. (What both stores must do is in
test_store_contract.py.)"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from rs_harness import T0, EngineHarness, FakeClock, error_code

from stui_protocol_kit.protocol.lifecycle import Timeouts, deadline, idle_base_after_start, retention_end
from stui_protocol_kit.reference_server.config import ServerConfig
from stui_protocol_kit.reference_server.sessions import token_digest
from stui_protocol_kit.reference_server.sqlite_store import STORE_FILE, SqliteStore
from stui_protocol_kit.reference_server.store import SessionRow, StoreError

# -- files: owner-only, foreign ones untouched -----------------------------------------------------------


def test_store_directory_and_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        harness = EngineHarness(tmp_path / "data", ServerConfig(), FakeClock())
        harness.create()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    files = [p for p in (tmp_path / "data").iterdir() if p.name.startswith(STORE_FILE)]
    assert {p.name for p in files} >= {STORE_FILE, STORE_FILE + "-wal"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    harness.engine.close()


def test_foreign_sqlite_database_is_left_byte_for_byte_unchanged(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE unrelated (x)")
    db.execute("INSERT INTO unrelated VALUES ('precious')")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a STUI session store"):
        SqliteStore(tmp_path)
    assert path.read_bytes() == before  # still in rollback-journal mode, nothing written
    assert not (tmp_path / (STORE_FILE + "-wal")).exists()


def test_non_database_file_stops_startup_with_clear_message(tmp_path: Path) -> None:
    (tmp_path / STORE_FILE).write_bytes(b"this is not an sqlite database at all" * 100)
    before = (tmp_path / STORE_FILE).read_bytes()
    with pytest.raises(StoreError, match="unreadable|not a"):
        SqliteStore(tmp_path)
    assert (tmp_path / STORE_FILE).read_bytes() == before  # left untouched


def test_store_whose_creation_was_interrupted_is_set_up(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / STORE_FILE)
    db.execute("PRAGMA journal_mode=WAL")  # what an interrupted first start leaves: a header, no tables
    db.close()
    store = SqliteStore(tmp_path)
    assert store.session_count() == 0
    store.close()


def test_truncated_store_is_refused(disk: EngineHarness) -> None:
    harness = disk
    for n in range(50):
        auth = harness.create(f"c{n}")
        harness.call("session.snapshot", {**auth, "state": {"inspector": {"pad": "x" * 2000}}})
    harness.engine.close()
    assert harness.data_dir is not None
    path = harness.data_dir / STORE_FILE
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\xde\xad" * 2000 + data[4100:])
    with pytest.raises(StoreError):
        SqliteStore(harness.data_dir)
    harness.store = harness.engine.store = SqliteStore(harness.data_dir / "fresh")  # for fixture teardown


def test_second_server_on_same_store_is_refused(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path)
    with pytest.raises(StoreError, match="in use"):
        SqliteStore(tmp_path)
    first.close()
    SqliteStore(tmp_path).close()


def test_token_is_never_stored_in_plain_text(disk: EngineHarness) -> None:
    harness = disk
    tokens = [harness.create()["token"] for _ in range(3)]
    auth = harness.create("other")
    harness.call("session.snapshot", auth, rid="s")
    harness.call("session.close", auth, rid="c")
    harness.engine.close()
    assert harness.data_dir is not None
    blob = b"".join(p.read_bytes() for p in harness.data_dir.iterdir() if p.is_file())
    assert hashlib.sha256(auth["token"].encode()).digest() in blob  # what is stored in its place
    for token in [*tokens, auth["token"]]:
        assert token.encode() not in blob
    harness.store = harness.engine.store = SqliteStore(harness.data_dir)  # reopen for fixture teardown


# -- transactions ------------------------------------------------------------------------------------------


class _FailingCommit:
    """A connection whose next COMMIT fails (as SQLITE_BUSY or an I/O error would)."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self.real, self.armed = real, True

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    def execute(self, sql: str, *args):
        if sql == "COMMIT" and self.armed:
            self.armed = False
            raise sqlite3.OperationalError("database is locked")
        return self.real.execute(sql, *args)


def test_failed_commit_rolls_back_and_later_writes_succeed(disk: EngineHarness) -> None:
    harness = disk
    auth = harness.create()
    assert isinstance(harness.store, SqliteStore)
    real = harness.store._db
    assert real is not None
    harness.store._db = _FailingCommit(real)  # type: ignore[assignment]
    assert error_code(harness.call("session.snapshot", auth)) == "InternalError"
    assert not real.in_transaction
    assert harness.call("session.snapshot", auth)["result"]["revision"] == 1  # not 2: the first was undone
    assert harness.call("session.create", {"client_id": "next"})["status"] == "success"
    harness.store._db = real


# -- corrupt revisions fall back (PER-2, PER-10) ------------------------------------------------------------


def _corrupt_revision(data_dir: Path, session_id: str, revision: int, how: str) -> None:
    db = sqlite3.connect(data_dir / STORE_FILE)
    if how == "checksum":
        db.execute("UPDATE revisions SET state = CAST('{\"workspace\": 1}' AS BLOB) WHERE session_id = ? "
                   "AND revision = ?", (session_id, revision))
    else:  # bytes that match their checksum but are not a state document
        junk = b"\x00not json"
        db.execute("UPDATE revisions SET state = ?, checksum = ? WHERE session_id = ? AND revision = ?",
                   (junk, hashlib.sha256(junk).digest(), session_id, revision))
    db.commit()
    db.close()


@pytest.mark.parametrize("how", ["checksum", "unreadable"])
def test_corrupt_newest_revision_falls_back_to_newest_intact(disk: EngineHarness, how: str) -> None:
    harness = disk
    auth = harness.create()
    harness.call("evaluate", {**auth, "code": "x := 1"})
    harness.call("session.snapshot", auth)  # revision 1: x = 1
    harness.call("evaluate", {**auth, "code": "x := 2"})
    harness.call("session.snapshot", auth)  # revision 2: x = 2
    harness.restart()
    _corrupt_revision(harness.data_dir, auth["session_id"], 2, how)
    result = harness.call("session.resume", auth)["result"]
    assert result["source"] == "durable" and result["revision"] == 1
    assert result["fallback"] == {"from_revision": 2, "to_revision": 1, "reason": how}
    assert result["state"]["workspace"]["variables"]["x"]["print_string"] == "1"
    # Still older than the newest acknowledged revision: fallback stays reported (PER-10).
    assert result == {**harness.call("session.resume", auth)["result"], "source": "durable"}
    assert harness.call("session.validate", auth)["result"]["revision"] == 1
    # Revision numbers are never reused after a fallback.
    assert harness.call("session.snapshot", {**auth, "expected_revision": 1})["result"]["revision"] == 3
    assert "fallback" not in harness.call("session.resume", auth)["result"]


def test_no_intact_revision_answers_internal_error_and_keeps_session(disk: EngineHarness) -> None:
    harness = disk
    auth = harness.create()
    harness.restart()
    _corrupt_revision(harness.data_dir, auth["session_id"], 0, "checksum")
    reply = harness.call("session.resume", auth)
    assert error_code(reply) == "InternalError"
    assert harness.call("session.resume", auth)["error"]["code"] == "InternalError"  # not cached as a reply
    assert harness.store.load_session(auth["session_id"]) is not None


# -- lazy loading -------------------------------------------------------------------------------------------


def test_store_with_100k_sessions_opens_without_loading_them(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    digest = token_digest("t" * 43)
    state = b'{"workspace":{"variables":{}},"objects":{},"inspector":{},"preferences":{}}'
    checksum = hashlib.sha256(state).digest()
    store.db.execute("BEGIN")
    store.db.executemany(
        "INSERT INTO sessions VALUES (?, 'bulk', ?, 1.0, 1.0, 'active', NULL, 0)",
        ((f"{i:022d}", digest) for i in range(100_000)),
    )
    store.db.executemany(
        "INSERT INTO revisions VALUES (?, 0, 1.0, ?, ?)", ((f"{i:022d}", state, checksum) for i in range(100_000))
    )
    store.db.execute("COMMIT")
    store.close()

    reopened = SqliteStore(tmp_path)
    assert reopened.rows_loaded == 0
    row = reopened.load_session(f"{77_777:022d}")
    assert isinstance(row, SessionRow) and row.client_id == "bulk"
    assert reopened.rows_loaded == 1
    assert reopened.session_count() == 100_000
    reopened.close()


def test_engine_loads_only_the_sessions_requests_name(disk: EngineHarness) -> None:
    harness = disk
    sessions = [harness.create(f"c{i}") for i in range(20)]
    harness.restart()
    assert harness.store.rows_loaded == 0
    harness.call("session.validate", sessions[3])
    harness.call("session.validate", sessions[3])  # held now: no second read
    assert harness.store.rows_loaded == 1 and len(harness.engine.sessions.live) == 1


# -- the SQL that restates lifecycle formulas agrees with them -------------------------------------------------


def test_deadline_and_retention_sql_agree_with_the_lifecycle_formulas(disk: EngineHarness) -> None:
    started = T0 + 100
    timeouts = Timeouts(60, 600, 120)
    rows = [  # (created_at, last_active_at)
        (T0, T0), (T0, T0 + 150), (T0 - 590, T0 - 590), (T0 - 500, T0 + 90), (T0 + 10, T0 + 20),
    ]
    store = disk.store
    assert isinstance(store, SqliteStore)
    for n, (created, last) in enumerate(rows):
        store.create_session(SessionRow(f"sql{n:019d}", "sql", b"d" * 32, created, last, "active", None, 0), b"{}")
    store.expire_overdue(T0 + 10_000, timeouts, started)
    got = dict(store.db.execute("SELECT session_id, ended_at FROM sessions WHERE client_id = 'sql'"))
    ends = {}
    for n, (created, last) in enumerate(rows):
        want, _ = deadline(created, idle_base_after_start(last, started), timeouts)
        assert got[f"sql{n:019d}"] == pytest.approx(want)
        ends[f"sql{n:019d}"] = want
    # purge deletes exactly the tombstones whose retention ended (lifecycle.retention_end)
    cut = sorted(retention_end(e, timeouts) for e in ends.values())[2]
    purged = store.purge(cut, timeouts, 30)
    assert sorted(purged) == sorted(sid for sid, e in ends.items() if retention_end(e, timeouts) <= cut)
    assert 0 < len(purged) < len(rows)
