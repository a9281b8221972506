"""SessionStore on a real SQLite file: durability across reopen, checksum fallback, refusal of
unreadable stores, and lazy loading of large stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from rs_harness import EngineHarness, error_code
from stui_protocol_kit.reference_server.sessions import token_digest
from stui_protocol_kit.reference_server.storage import STORE_FILE, SessionRow, SessionStore, StoreError


def _corrupt_revision(data_dir: Path, session_id: str, revision: int, how: str) -> None:
    db = sqlite3.connect(data_dir / STORE_FILE)
    if how == "checksum":
        db.execute("UPDATE revisions SET state = CAST('{\"workspace\": 1}' AS BLOB) WHERE session_id = ? "
                   "AND revision = ?", (session_id, revision))
    else:  # bytes that match their checksum but are not a state document
        import hashlib
        junk = b"\x00not json"
        db.execute("UPDATE revisions SET state = ?, checksum = ? WHERE session_id = ? AND revision = ?",
                   (junk, hashlib.sha256(junk).digest(), session_id, revision))
    db.commit()
    db.close()


@pytest.mark.parametrize("how", ["checksum", "unreadable"])
def test_corrupt_newest_revision_falls_back_to_newest_intact(harness: EngineHarness, how: str) -> None:
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


def test_no_intact_revision_answers_internal_error_and_keeps_session(harness: EngineHarness) -> None:
    auth = harness.create()
    harness.restart()
    _corrupt_revision(harness.data_dir, auth["session_id"], 0, "checksum")
    reply = harness.call("session.resume", auth)
    assert error_code(reply) == "InternalError"
    assert harness.call("session.resume", auth)["error"]["code"] == "InternalError"  # not cached as a reply
    assert harness.store.load_session(auth["session_id"]) is not None


def test_only_last_k_revisions_are_kept(harness: EngineHarness) -> None:
    auth = harness.create()
    for _ in range(6):
        harness.call("session.snapshot", auth)
    kept = [r.revision for r in harness.store.load_revisions(auth["session_id"])]
    assert kept == [6, 5, 4]


def test_non_database_file_stops_startup_with_clear_message(tmp_path: Path) -> None:
    (tmp_path / STORE_FILE).write_bytes(b"this is not an sqlite database at all" * 100)
    before = (tmp_path / STORE_FILE).read_bytes()
    with pytest.raises(StoreError, match="unreadable|not a"):
        SessionStore(tmp_path)
    assert (tmp_path / STORE_FILE).read_bytes() == before  # left untouched


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / STORE_FILE)
    db.execute("CREATE TABLE unrelated (x)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="not a STUI session store"):
        SessionStore(tmp_path)


def test_truncated_store_is_refused(harness: EngineHarness) -> None:
    for _ in range(50):
        auth = harness.create(f"c{_}")
        harness.call("session.snapshot", {**auth, "state": {"inspector": {"pad": "x" * 2000}}})
    harness.engine.close()
    path = harness.data_dir / STORE_FILE
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\xde\xad" * 2000 + data[4100:])
    with pytest.raises(StoreError):
        SessionStore(harness.data_dir)
    harness.store = harness.engine.store = SessionStore(harness.data_dir / "fresh")  # for fixture teardown


def test_second_server_on_same_store_is_refused(tmp_path: Path) -> None:
    first = SessionStore(tmp_path)
    with pytest.raises(StoreError, match="in use"):
        SessionStore(tmp_path)
    first.close()
    SessionStore(tmp_path).close()


def test_store_with_100k_sessions_opens_without_loading_them(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    digest = token_digest("t" * 43)
    state = b'{"workspace":{"variables":{}},"objects":{},"inspector":{},"preferences":{}}'
    import hashlib
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

    reopened = SessionStore(tmp_path)
    assert reopened.rows_loaded == 0
    row = reopened.load_session(f"{77_777:022d}")
    assert isinstance(row, SessionRow) and row.client_id == "bulk"
    assert reopened.rows_loaded == 1
    assert reopened.session_count() == 100_000
    reopened.close()


def test_engine_loads_only_the_sessions_requests_name(harness: EngineHarness) -> None:
    sessions = [harness.create(f"c{i}") for i in range(20)]
    harness.restart()
    assert harness.store.rows_loaded == 0
    harness.call("session.validate", sessions[3])
    harness.call("session.validate", sessions[3])  # held now: no second read
    assert harness.store.rows_loaded == 1 and len(harness.engine.sessions.live) == 1
