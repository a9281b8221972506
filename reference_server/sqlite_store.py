"""The server's `SessionStore` on SQLite: session rows, the last K revisions, and durable retry replies.

Theory of operation:
1. A success reply to create, snapshot or close is sent only after the change is committed with
   `journal_mode=WAL` and `synchronous=FULL`, so an acknowledged change survives SIGKILL and power
   loss. The retry reply of a snapshot or close is written in the same transaction as the change,
   so a client that lost the reply gets the original one back, also after a restart.
2. Each revision's state document is stored with its SHA-256 checksum. Reading a session's state
   tries revisions newest first and answers the newest intact one, saying which newer ones it
   skipped and why (the engine reports that as `fallback` in session.resume).
3. Loading is lazy: opening the store reads no session; a session's row is read when a request
   names it, its revisions when a command needs its state.
4. With `group_commit=True` (the server's), a snapshot is submitted to a writer thread that commits
   every snapshot waiting in one transaction (one fsync) and reports each ticket once durable; the
   engine replies on that report. Other writes stay on the caller's connection (SQLite's busy
   timeout lets them wait for the writer's transaction).
   Activity (`last_active_at`) is not written per request; the engine flushes it in batches. An
   expiry the engine decides while answering a request is written (one row) before the reply.
5. Every open raises the store's object-id epoch by one, durably, before anything is served: ids
   issued by one server run never repeat those of an earlier run (spec INS-1).
6. A store that comes back emptier or older than it was is refused (issue 10): every transaction
   counts itself in `meta.commits`, and after each commit the count is written to a high-water
   file beside the store (high_water.py). At open, before anything is modified, a store holding
   fewer commits than that record - truncated, replaced by an older copy, its write-ahead log
   deleted after a kill - raises `StoreLost`, unless the caller accepts the loss
   (`accept_store_loss`, the CLI's --accept-store-loss); the record is then reset to what is left.
6a. Opening never modifies a file that is not our store: the existing file is first inspected on a
   read-only connection; only our own store is then switched to WAL. The data directory is created
   0700 and the database file 0600 (spec SEC-11): the store holds session state and token digests.

7. Every SQLite or OS failure leaves this module as `StoreError` (`SessionIdTaken` for a taken
   primary key), the only exceptions the engine knows (stui_protocol_kit.reference_server.store).
8. Two SQL statements restate formulas of stui_protocol_kit.protocol.lifecycle over a row's columns:
   the deadline (`DEADLINE_SQL`, for sessions only storage holds, which `expire_overdue` expires
   without loading them) and the retention's end (`purge`). They stay in SQL because loading every
   stored session to apply the Python formula would defeat lazy loading; a test checks that each
   agrees with the lifecycle's formula.

What this module must never do: store a token (only its SHA-256 digest reaches it), start silently
on a store it cannot read (it raises StoreError with the reason), or know about the protocol's
messages beyond the opaque reply bytes it keeps for retries.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from stui_protocol_kit.protocol.lifecycle import Timeouts
from stui_protocol_kit.reference_server.group_commit import GroupCommitter, count_commit
from stui_protocol_kit.reference_server.high_water import HighWater, HighWaterError
from stui_protocol_kit.reference_server.store import (
    RetryRow,
    SessionIdTaken,
    SessionRow,
    StoredRevision,
    StoreError,
    checksum,
)

STORE_FILE = "sessions.sqlite3"
LOCK_FILE = "sessions.lock"
# PRAGMA user_version of a store this code wrote; a different value is refused at start-up.
SCHEMA_VERSION = 1
APPLICATION_ID = 0x53545549  # "STUI": tells our store apart from any other SQLite file

_DDL = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id     TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    token_digest   BLOB NOT NULL,
    created_at     REAL NOT NULL,
    last_active_at REAL NOT NULL,
    status         TEXT NOT NULL,
    ended_at       REAL,
    head_revision  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_by_client ON sessions (client_id, status);
CREATE INDEX IF NOT EXISTS sessions_by_status ON sessions (status, ended_at);
CREATE TABLE IF NOT EXISTS revisions (
    session_id TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    saved_at   REAL NOT NULL,
    state      BLOB NOT NULL,
    checksum   BLOB NOT NULL,
    PRIMARY KEY (session_id, revision)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS retry_replies (
    session_id  TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    reply       BLOB NOT NULL,
    stored_at   REAL NOT NULL,
    PRIMARY KEY (session_id, request_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS retry_replies_by_age ON retry_replies (stored_at);
"""
# Added after schema version 1 shipped; created on open when missing (older servers ignore it).
_META_DDL = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
# Added later too: let expire_overdue find the active sessions that may be overdue by a range scan each
# (idle, absolute) instead of computing every active session's deadline at every housekeeping pass.
_DEADLINE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS sessions_by_activity ON sessions (status, last_active_at)",
    "CREATE INDEX IF NOT EXISTS sessions_by_creation ON sessions (status, created_at)",
)
_TABLES = {"sessions", "revisions", "retry_replies"}


# The deadline of stui_protocol_kit.protocol.lifecycle.deadline over a `sessions` row, for a server
# started at :started_at (idle base: lifecycle.idle_base_after_start), with named parameters.
DEADLINE_SQL = "MIN(MAX(last_active_at, :started_at) + :idle_timeout_s, created_at + :absolute_timeout_s)"

_F = TypeVar("_F", bound=Callable[..., Any])


def _store_errors(method: _F) -> _F:
    """Every SQLite/OS failure of a store method leaves it as StoreError (the engine's only kind)."""

    @functools.wraps(method)
    def wrapper(self: SqliteStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"session store {self.path}: {method.__name__} failed: {exc}") from exc

    return wrapper  # type: ignore[return-value]


class StoreLost(StoreError):
    """The store holds fewer committed changes than it acknowledged before: refused at start-up."""


class SqliteStore:
    """The SQLite session store of one data directory. One engine owns it and calls it from one thread;
    with `group_commit=True` snapshots are written by a writer thread of their own connection
    (stui_protocol_kit.reference_server.group_commit), everything else by the caller's."""

    def __init__(self, data_dir: Path | str, *, max_revisions_kept: int = 5, group_commit: bool = False,
                 accept_store_loss: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / STORE_FILE
        self.max_revisions_kept = max_revisions_kept
        # How many session rows were materialised: tests use it to show that opening a large store
        # loads nothing and that a request loads only the session it names.
        self.rows_loaded = 0
        self.epoch = 0  # the object-id epoch of this open (raised durably by _open)
        self._lock_fd: int | None = None
        self._db: sqlite3.Connection | None = None
        self._committer: GroupCommitter | None = None
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create data directory {self.data_dir}: {exc.strerror or exc}") from None
        self._take_lock()
        self._high_water = HighWater(self.data_dir)
        self._commits = 0  # meta.commits: transactions committed over the store's life
        self._high_water_lock = threading.Lock()  # the group committer reports commits from its thread
        # Set when a loss was found and accepted: (commits recorded, commits found), for the log.
        self.accepted_loss: tuple[int, int] | None = None
        try:
            self._check_high_water(accept_store_loss)
            self._db = self._open()
            if group_commit:
                self._committer = GroupCommitter(self.path, on_commit=self._committed)
            self._high_water.write(self._commits, sync=True)
        except HighWaterError as exc:
            self._close_quietly()
            raise StoreError(f"session store {self.path}: {exc}; refusing to start") from None
        except BaseException:
            self._close_quietly()
            raise

    def _close_quietly(self) -> None:
        if self._committer is not None:
            self._committer.close()
            self._committer = None
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        self._high_water.close()
        self._release_lock()

    def _check_high_water(self, accept_store_loss: bool) -> None:
        """Refuse a store with fewer commits than the high-water record, before anything is written."""
        recorded = self._high_water.read()
        if recorded is None:
            return
        found = self._stored_commits()
        if found >= recorded:
            return
        if accept_store_loss:
            self.accepted_loss = (recorded, found)
            return
        what = ("is missing" if not self.path.exists() else "is empty" if self.path.stat().st_size == 0
                else f"holds {found} committed changes")
        raise StoreLost(
            f"session store {self.path} {what}, but {self._high_water.path} records {recorded}: the store was "
            "truncated, replaced by an older copy, or its write-ahead log (-wal file) was deleted after a crash, "
            "so acknowledged sessions and revisions are missing; refusing to start. Restore the lost files, or "
            "start with --accept-store-loss to serve what is left"
        )

    def _stored_commits(self) -> int:
        """meta.commits of the file as it is, on a read-only connection (0 for no file, an empty one, or a
        store written before the count existed)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return 0
        try:
            ro = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open session store {self.path}: {exc}") from None
        try:
            if ro.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is None:
                return 0
            row = ro.execute("SELECT value FROM meta WHERE key = 'commits'").fetchone()
            return int(row[0]) if row is not None else 0
        except sqlite3.Error as exc:
            raise StoreError(f"session store {self.path} is unreadable: {exc}; refusing to start") from None
        finally:
            ro.close()

    # -- opening ---------------------------------------------------------------------------------

    def _take_lock(self) -> None:
        # Two servers on one store would interleave revisions; the OS drops the lock on SIGKILL.
        lock_path = self.data_dir / LOCK_FILE
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open lock file {lock_path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"session store {self.path} is in use by another server process") from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
            self._lock_fd = None

    def _open(self) -> sqlite3.Connection:
        fresh = not self.path.exists() or self.path.stat().st_size == 0 or self._inspect_existing()
        try:
            # Created owner-only; SQLite gives its -wal and -shm files the database file's mode.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open session store {self.path}: {exc}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL").fetchone()
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=OFF")
            db.execute("BEGIN IMMEDIATE")
            if fresh:
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                for statement in _DDL.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(_META_DDL)
            for statement in _DEADLINE_INDEXES:
                db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('object_epoch', 1) "
                       "ON CONFLICT (key) DO UPDATE SET value = value + 1")
            self.epoch = db.execute("SELECT value FROM meta WHERE key = 'object_epoch'").fetchone()[0]
            db.execute("INSERT INTO meta VALUES ('commits', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1")
            self._commits = db.execute("SELECT value FROM meta WHERE key = 'commits'").fetchone()[0]
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if db.in_transaction:
                    db.execute("ROLLBACK")
            db.close()
            raise StoreError(f"session store {self.path} is unusable: {exc}; refusing to start") from None
        return db

    def _inspect_existing(self) -> bool:
        """Refuse an existing file that is not a readable store of ours, on a read-only connection,
        so that a foreign file is left exactly as it was (spec PER-12). True when the file is an
        SQLite database without any table (a store whose creation was interrupted): it is set up
        like a new one."""
        try:
            ro = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open session store {self.path}: {exc}") from None
        try:
            # Any read makes SQLite parse the header: a non-database file fails here.
            tables = {row[0] for row in ro.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            application_id = ro.execute("PRAGMA application_id").fetchone()[0]
            user_version = ro.execute("PRAGMA user_version").fetchone()[0]
            if not tables and application_id in (0, APPLICATION_ID):
                return True
            if application_id != APPLICATION_ID or not tables >= _TABLES:
                raise StoreError(
                    f"{self.path} is an SQLite database but not a STUI session store "
                    f"(tables: {', '.join(sorted(tables)) or 'none'}); refusing to start"
                )
            if user_version != SCHEMA_VERSION:
                raise StoreError(
                    f"session store {self.path} has schema version {user_version}; this server "
                    f"reads version {SCHEMA_VERSION}; refusing to start"
                )
            # Reads every page's structure, not its rows into Python: a torn or overwritten page
            # stops start-up here instead of surfacing as a random failure later.
            problems = [row[0] for row in ro.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise StoreError(f"session store {self.path} is corrupt: {'; '.join(problems)}")
            return False
        except sqlite3.Error as exc:
            raise StoreError(f"session store {self.path} is unreadable: {exc}; refusing to start") from None
        finally:
            ro.close()

    def close(self) -> None:
        if self._committer is not None:
            self._committer.close()  # what was submitted is committed first
            self._committer = None
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None
            with contextlib.suppress(HighWaterError):
                self._high_water.write(self._commits, sync=True)
        self._high_water.close()
        self._release_lock()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("session store is closed")
        return self._db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT. Whatever fails, also the COMMIT itself (SQLITE_BUSY, I/O),
        leaves the connection outside any transaction, so the next write can start one."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            commits = count_commit(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise
        self._committed(commits)

    def _committed(self, commits: int) -> None:
        """After a commit (this connection's, or the group committer's on its thread): the high-water
        record follows, never ahead of the store. A failed write leaves it behind, which can hide a
        later loss but never refuses a good store: the committed change stands."""
        with self._high_water_lock:
            if commits <= self._commits:
                return
            self._commits = commits
            with contextlib.suppress(HighWaterError):
                self._high_water.write(commits)

    # -- durable changes (committed before the engine replies) -------------------------------------

    @_store_errors
    def create_session(self, row: SessionRow, state: bytes) -> None:
        """Raises SessionIdTaken when the session id is taken (the caller draws another)."""
        try:
            self._insert_session(row, state)
        except sqlite3.IntegrityError as exc:
            raise SessionIdTaken(f"session id {row.session_id[:8]}... is taken") from exc

    def _insert_session(self, row: SessionRow, state: bytes) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (row.session_id, row.client_id, row.token_digest, row.created_at, row.last_active_at,
                 row.status, row.ended_at, row.head_revision),
            )
            db.execute(
                "INSERT INTO revisions VALUES (?, ?, ?, ?, ?)",
                (row.session_id, row.head_revision, row.created_at, state, checksum(state)),
            )

    @_store_errors
    def save_snapshot(
        self, session_id: str, revision: int, saved_at: float, state: bytes, retry: RetryRow,
    ) -> None:
        """Add a revision, drop the ones beyond the last K, and keep the reply for retries."""
        with self._transaction() as db:
            self._write_snapshot(db, session_id, revision, saved_at, state, retry)

    def _write_snapshot(
        self, db: sqlite3.Connection, session_id: str, revision: int, saved_at: float, state: bytes, retry: RetryRow,
    ) -> None:
        db.execute(
            "INSERT INTO revisions VALUES (?, ?, ?, ?, ?)",
            (session_id, revision, saved_at, state, checksum(state)),
        )
        db.execute(
            "UPDATE sessions SET head_revision = ?, last_active_at = MAX(last_active_at, ?) "
            "WHERE session_id = ?",
            (revision, saved_at, session_id),
        )
        db.execute(
            "DELETE FROM revisions WHERE session_id = ? AND revision <= ?",
            (session_id, revision - self.max_revisions_kept),
        )
        self._put_retry(db, session_id, retry)

    # -- group commit (the server's; off unless `group_commit=True`) -----------------------------------

    @property
    def group_commit(self) -> bool:
        """Snapshots go through `submit_snapshot` (the writer thread) instead of `save_snapshot`."""
        return self._committer is not None

    @property
    def wake_fd(self) -> int | None:
        """Readable when submitted snapshots are done (`completed_snapshots`); None without group commit."""
        return self._committer.wake_fd if self._committer is not None else None

    def submit_snapshot(
        self, ticket: int, session_id: str, revision: int, saved_at: float, state: bytes, retry: RetryRow,
    ) -> None:
        """`save_snapshot` on the writer thread: committed with every other snapshot waiting (one fsync),
        reported by `completed_snapshots` once durable. Raises StoreError when it cannot be queued."""
        if self._committer is None:
            raise StoreError("session store: group commit is not enabled")
        self._committer.submit(
            ticket, lambda db: self._write_snapshot(db, session_id, revision, saved_at, state, retry))

    def completed_snapshots(self) -> list[tuple[int, StoreError | None]]:
        """Tickets of submitted snapshots now durable (None) or failed (their StoreError, nothing written)."""
        return self._committer.completed() if self._committer is not None else []

    @_store_errors
    def close_session(self, session_id: str, closed_at: float, retry: RetryRow) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE sessions SET status = 'closed', ended_at = ?, last_active_at = MAX(last_active_at, ?) "
                "WHERE session_id = ?",
                (closed_at, closed_at, session_id),
            )
            self._put_retry(db, session_id, retry)

    @_store_errors
    def expire_session(self, session_id: str, expired_at: float) -> None:
        """Mark one session expired (an expiry decided while answering a request, before the reply)."""
        self.db.execute(
            "UPDATE sessions SET status = 'expired', ended_at = ? WHERE session_id = ? AND status = 'active'",
            (expired_at, session_id),
        )

    @_store_errors
    def put_retry(self, session_id: str, retry: RetryRow) -> None:
        """Keep an error reply of snapshot/close for retries (one insert, committed on return)."""
        self._put_retry(self.db, session_id, retry)

    @staticmethod
    def _put_retry(db: sqlite3.Connection, session_id: str, retry: RetryRow) -> None:
        db.execute(
            "INSERT OR REPLACE INTO retry_replies VALUES (?, ?, ?, ?, ?)",
            (session_id, retry.request_id, retry.fingerprint, retry.reply, retry.stored_at),
        )

    # -- lazy reads ---------------------------------------------------------------------------------

    @_store_errors
    def load_session(self, session_id: str) -> SessionRow | None:
        row = self.db.execute(
            "SELECT session_id, client_id, token_digest, created_at, last_active_at, status, ended_at, "
            "head_revision FROM sessions WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        if row is None:
            return None
        self.rows_loaded += 1
        return SessionRow(*row)

    @_store_errors
    def load_revisions(self, session_id: str) -> Iterator[StoredRevision | tuple[int, str]]:
        """The session's kept revisions, newest first. A row SQLite cannot read is yielded as
        `(revision, reason)` so the caller can fall back past it."""
        numbers = [r[0] for r in self.db.execute(
            "SELECT revision FROM revisions WHERE session_id = ? ORDER BY revision DESC", (session_id,)
        )]
        return self._revisions(session_id, numbers)

    def _revisions(self, session_id: str, numbers: list[int]) -> Iterator[StoredRevision | tuple[int, str]]:
        for number in numbers:
            try:
                row = self.db.execute(
                    "SELECT revision, saved_at, state, checksum FROM revisions WHERE session_id = ? AND revision = ?",
                    (session_id, number),
                ).fetchone()
            except sqlite3.DatabaseError as exc:
                yield (number, f"unreadable revision row: {exc}")
                continue
            if row is not None:
                yield StoredRevision(row[0], row[1], bytes(row[2]), bytes(row[3]))

    @_store_errors
    def load_retry_rows(self, session_id: str, since: float) -> list[RetryRow]:
        return [
            RetryRow(r[0], bytes(r[1]), bytes(r[2]), r[3])
            for r in self.db.execute(
                "SELECT request_id, fingerprint, reply, stored_at FROM retry_replies "
                "WHERE session_id = ? AND stored_at > ? ORDER BY stored_at",
                (session_id, since),
            )
        ]

    @_store_errors
    def active_sessions_of_client(self, client_id: str) -> list[tuple[str, float, float]]:
        """(session_id, created_at, last_active_at) of the client's sessions stored as active."""
        return list(self.db.execute(
            "SELECT session_id, created_at, last_active_at FROM sessions WHERE client_id = ? AND status = 'active'",
            (client_id,),
        ))

    # -- housekeeping (batched, off the reply path) -------------------------------------------------

    @_store_errors
    def flush_activity(self, activity: Iterable[tuple[str, float]]) -> None:
        with self._transaction() as db:
            db.executemany(
                "UPDATE sessions SET last_active_at = ? WHERE session_id = ? AND last_active_at < ?",
                ((at, sid, at) for sid, at in activity),
            )

    @_store_errors
    def mark_expired(self, expired: Iterable[tuple[str, float]]) -> None:
        with self._transaction() as db:
            db.executemany(
                "UPDATE sessions SET status = 'expired', ended_at = ? WHERE session_id = ? AND status = 'active'",
                ((at, sid) for sid, at in expired),
            )

    @_store_errors
    def expire_overdue(self, now: float, timeouts: Timeouts, started_at: float) -> int:
        """Mark stored active sessions past their deadline as expired, ended at the deadline (the
        engine flushes the activity of the sessions it holds first), by DEADLINE_SQL."""
        with self._transaction() as db:
            # The deadline is past only if the idle one or the absolute one is: the candidates come
            # from two index ranges (a second of margin against rounding), DEADLINE_SQL decides.
            cursor = db.execute(
                f"UPDATE sessions SET status = 'expired', ended_at = {DEADLINE_SQL} "
                "WHERE session_id IN ("
                "SELECT session_id FROM sessions WHERE status = 'active' "
                "AND last_active_at <= :now - :idle_timeout_s + 1 "
                "UNION SELECT session_id FROM sessions WHERE status = 'active' "
                "AND created_at <= :now - :absolute_timeout_s + 1) "
                f"AND +status = 'active' AND {DEADLINE_SQL} <= :now",  # +: look the candidates up by key
                {"started_at": started_at, "idle_timeout_s": timeouts.idle_timeout_s,
                 "absolute_timeout_s": timeouts.absolute_timeout_s, "now": now},
            )
            return cursor.rowcount

    @_store_errors
    def purge(self, now: float, timeouts: Timeouts, retry_window_s: float) -> list[str]:
        """Delete tombstones past retention (lifecycle.retention_end; with their revisions and retry
        replies) and retry replies past the window. Returns the purged session ids."""
        with self._transaction() as db:
            # Each exact condition behind an index range (a second of margin against rounding), so
            # that a pass with nothing to purge costs no scan of the sessions or of the replies.
            ids = [r[0] for r in db.execute(
                "SELECT session_id FROM sessions WHERE status IN ('closed', 'expired') "
                "AND ended_at <= :now - :keep + 1 AND ended_at + :keep <= :now",
                {"keep": timeouts.tombstone_retention_s, "now": now},
            )]
            for sid in ids:
                db.execute("DELETE FROM revisions WHERE session_id = ?", (sid,))
                db.execute("DELETE FROM retry_replies WHERE session_id = ?", (sid,))
                db.execute("DELETE FROM sessions WHERE session_id = ?", (sid,))
            db.execute("DELETE FROM retry_replies WHERE stored_at <= :now - :window + 1 "
                       "AND stored_at + :window <= :now", {"window": retry_window_s, "now": now})
        return ids

    @_store_errors
    def session_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM sessions").fetchone()[0]

    @_store_errors
    def active_session_count(self, now: float, timeouts: Timeouts, started_at: float) -> int:
        """By DEADLINE_SQL over the active rows (the sessions_by_status index finds them)."""
        return self.db.execute(
            f"SELECT count(*) FROM sessions WHERE status = 'active' AND {DEADLINE_SQL} > :now",
            {"started_at": started_at, "idle_timeout_s": timeouts.idle_timeout_s,
             "absolute_timeout_s": timeouts.absolute_timeout_s, "now": now},
        ).fetchone()[0]
