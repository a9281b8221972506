"""Durable writes off the serving thread: one writer thread, one SQLite connection, group commit.

Theory of operation: the serving thread submits a write (a function of a connection) with a ticket
and goes on serving other clients. The writer thread takes every write waiting, runs them in one
transaction - each inside a savepoint, so a write that fails is undone alone and reported alone -
and commits once: one fsync for the whole group (`synchronous=FULL`, WAL). Only then does it report
the group's tickets as done (with None, or the StoreError of a write that failed) and wake the
serving thread through a pipe, whose read end the transport polls beside its socket. A ticket is
reported done only after its write is durable, so a reply sent on that report never acknowledges
anything a crash could lose; when the COMMIT itself fails, every write of the group fails.

What it must never do: run protocol logic, call back into the engine (reports are picked up by the
serving thread), or hold the interpreter lock over I/O (sqlite3 releases it while SQLite works).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from stui_protocol_kit.reference_server.store import StoreError

log = logging.getLogger("stui.reference_server")

Write = Callable[[sqlite3.Connection], None]
def count_commit(db: sqlite3.Connection) -> int:
    """Count the transaction in progress in meta.commits (the store's high-water mark, PER-14): every
    transaction that changes the store does, on either connection. The new count."""
    return db.execute("UPDATE meta SET value = value + 1 WHERE key = 'commits' RETURNING value").fetchone()[0]


# A group larger than this is committed in parts: bounds one transaction's size (and the WAL's growth).
MAX_GROUP = 256


class GroupCommitter:
    """The writer thread of one SQLite store file."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0,
                 on_commit: Callable[[int], None] | None = None) -> None:
        """`on_commit(commits)`: called on the writer thread after each durable commit, with the store's
        new meta.commits (the high-water mark of PER-14, counted in the same transaction)."""
        self.path = path
        self._on_commit = on_commit
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s)
            self._db.execute("PRAGMA journal_mode=WAL").fetchone()
            self._db.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            raise StoreError(f"session store {path}: cannot open the writer's connection: {exc}") from None
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._lock = threading.Condition()
        self._waiting: list[tuple[int, Write]] = []
        self._done: list[tuple[int, StoreError | None]] = []
        self._stopping = False
        self.groups = 0  # transactions committed (tests and the bench compare it with writes)
        self._thread = threading.Thread(target=self._run, name="stui-group-commit", daemon=True)
        self._thread.start()

    @property
    def wake_fd(self) -> int:
        """Readable when tickets are done (drained by `completed`)."""
        return self._read_fd

    def submit(self, ticket: int, write: Write) -> None:
        with self._lock:
            if self._stopping:
                raise StoreError(f"session store {self.path} is closing")
            self._waiting.append((ticket, write))
            self._lock.notify()

    def completed(self) -> list[tuple[int, StoreError | None]]:
        """Tickets whose writes are durable (None) or failed (their StoreError), in commit order."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read_fd, 4096):
                pass
        with self._lock:
            done, self._done = self._done, []
        return done

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._stopping:
                    self._lock.wait()
                if not self._waiting:
                    return  # stopping, nothing left
                group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            results = self._commit(group)
            with self._lock:
                self._done.extend(results)
            with contextlib.suppress(OSError):
                os.write(self._write_fd, b"!")

    def _commit(self, group: list[tuple[int, Write]]) -> list[tuple[int, StoreError | None]]:
        db = self._db
        results: list[tuple[int, StoreError | None]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for ticket, write in group:
                db.execute("SAVEPOINT one")
                try:
                    write(db)
                    db.execute("RELEASE one")
                    results.append((ticket, None))
                except Exception as exc:  # whatever a write raises, only it fails
                    db.execute("ROLLBACK TO one")
                    db.execute("RELEASE one")
                    results.append((ticket, StoreError(f"session store {self.path}: write failed: {exc}")))
            commits = count_commit(db) if self._on_commit is not None else None
            db.execute("COMMIT")
            self.groups += 1
            if commits is not None and self._on_commit is not None:
                self._on_commit(commits)
            return results
        except Exception as exc:  # a dead writer would hang every snapshot
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            log.error("group commit of %d writes failed: %s", len(group), exc)
            error = StoreError(f"session store {self.path}: commit failed: {exc}")
            return [(ticket, error) for ticket, _ in group]

    def close(self) -> None:
        """Commit what was submitted, stop the thread, close the connection and the pipe."""
        with self._lock:
            self._stopping = True
            self._lock.notify()
        self._thread.join()
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
