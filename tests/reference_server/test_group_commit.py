"""Group commit (issue 14): snapshots made durable by a writer thread, off the serving thread.

Behaviour only, never timings: a snapshot is answered only once its write is durable (held back while
the writer cannot commit, survives SIGKILL once acknowledged); a failed write answers InternalError and
changes nothing; requests of one session are answered in order, other sessions are served while a
snapshot of another waits; every request gets exactly its one reply.
"""

from __future__ import annotations

import json
import secrets
import select
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from rs_harness import FakeClock, client, request, server_process

from stui_protocol_kit.reference_server.config import ServerConfig
from stui_protocol_kit.reference_server.engine import DEFERRED, PENDING, Engine, Reply
from stui_protocol_kit.reference_server.group_commit import GroupCommitter
from stui_protocol_kit.reference_server.sqlite_store import STORE_FILE, SqliteStore
from stui_protocol_kit.reference_server.store import StoreError


class _Rig:
    """An engine on a SQLite store with group commit, driven request by request."""

    def __init__(self, data_dir: Path) -> None:
        self.store = SqliteStore(data_dir, group_commit=True)
        self.engine = Engine(ServerConfig(), self.store, clock=FakeClock(), random_source=secrets.token_urlsafe)

    def process(self, command: str, parameters: dict[str, Any], rid: str | None = None) -> Reply:
        return self.engine.process([json.dumps(request(command, parameters, rid)).encode()], "peer-a")

    def call(self, command: str, parameters: dict[str, Any], rid: str | None = None) -> dict[str, Any]:
        reply = self.process(command, parameters, rid)
        assert reply.outcome not in (PENDING, DEFERRED), reply
        return json.loads(reply.body)

    def finished(self, wait_s: float) -> list[Reply]:
        """The replies of commits that ended within `wait_s` (none when the writer is still blocked)."""
        fd = self.engine.commit_signal_fd
        assert fd is not None
        select.select([fd], [], [], wait_s)
        return self.engine.finish_commits()

    def create(self) -> dict[str, str]:
        result = self.call("session.create", {"client_id": "c"})["result"]
        return {"session_id": result["session_id"], "token": result["token"]}

    def close(self) -> None:
        self.engine.close()


def _snapshot(session: dict[str, str], mark: int, pad: int = 0) -> dict[str, Any]:
    """Snapshot parameters; `pad` bytes of inspector make it a large request (served after small ones
    that arrive with it, but never before its own connection's earlier ones)."""
    return {**session, "state": {"preferences": {"mark": mark}, "inspector": {"pad": "x" * pad}}}


def test_snapshot_answered_only_once_durable_while_other_sessions_are_served(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    try:
        busy, other = rig.create(), rig.create()
        # Another connection holds SQLite's write lock: the writer thread cannot commit.
        blocker = sqlite3.connect(tmp_path / STORE_FILE, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        pending = rig.process("session.snapshot", _snapshot(busy, 1), "snap-1")
        assert pending.outcome == PENDING and pending.ticket is not None and pending.body == b""
        # The same session's next request waits, unprocessed; another session is answered at once.
        assert rig.process("session.validate", busy, "after-snap").outcome == DEFERRED
        served = rig.call("session.validate", other)
        assert served["status"] == "success", served
        assert rig.finished(0.5) == []  # not durable, not answered
        blocker.execute("ROLLBACK")
        blocker.close()
        done = rig.finished(10)
        assert [r.ticket for r in done] == [pending.ticket]
        reply = json.loads(done[0].body)
        assert reply["status"] == "success" and reply["id"] == "snap-1" and reply["result"]["revision"] == 1
        # Handed back after the reply, the deferred request sees the snapshot applied.
        after = rig.call("session.validate", busy, "after-snap")
        assert after["result"]["revision"] == 1
        resumed = rig.call("session.resume", busy)
        assert resumed["result"]["state"]["preferences"] == {"mark": 1}
        # A retry of the acknowledged snapshot gets the original reply, without a new revision.
        again = rig.process("session.snapshot", _snapshot(busy, 1), "snap-1")
        assert again.outcome == "retry" and json.loads(again.body) == reply
    finally:
        rig.close()


def test_failed_group_write_answers_internal_error_and_changes_nothing(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    try:
        session = rig.create()
        first = rig.process("session.snapshot", _snapshot(session, 1))
        assert first.outcome == PENDING
        assert json.loads(rig.finished(10)[0].body)["result"]["revision"] == 1
        # Only the writer's connection refuses revisions from now on.
        writer = rig.store._committer._db  # type: ignore[union-attr]
        writer.execute("CREATE TEMP TRIGGER refuse BEFORE INSERT ON revisions "
                       "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        failing = rig.process("session.snapshot", _snapshot(session, 2), "snap-2")
        assert failing.outcome == PENDING
        failed = json.loads(rig.finished(10)[0].body)
        assert failed["status"] == "error" and failed["error"]["code"] == "InternalError", failed
        state = rig.call("session.resume", session)["result"]
        assert state["revision"] == 1 and state["state"]["preferences"] == {"mark": 1}
        # Not cached: the client's retry of the same id is executed, and now succeeds.
        writer.execute("DROP TRIGGER refuse")
        retried = rig.process("session.snapshot", _snapshot(session, 2), "snap-2")
        assert retried.outcome == PENDING
        assert json.loads(rig.finished(10)[0].body)["result"]["revision"] == 2
    finally:
        rig.close()


def test_pipelined_sessions_in_order_no_lost_acks_and_durable_across_sigkill(tmp_path: Path) -> None:
    clients, rounds = 6, 8
    server = server_process(tmp_path)
    sessions: list[dict[str, str]] = []
    problems: list[str] = []
    try:
        assert server.endpoint
        endpoint = server.endpoint

        def one_client(index: int) -> None:
            with client(endpoint, timeout_s=30) as c:
                created = c.call("session.create", {"client_id": f"c{index}"}).reply["result"]
                session = {"session_id": created["session_id"], "token": created["token"]}
                sessions.append(session)
                sent = []
                for k in range(1, rounds + 1):  # all in flight at once: snapshot k, then validate
                    pad = 40_000 if index % 2 else 0  # half the clients send large snapshots
                    for command, params in (("session.snapshot", _snapshot(session, k, pad)),
                                            ("session.validate", session)):
                        message = request(command, params, f"c{index}-{command}-{k}")
                        c.send_frames([json.dumps(message).encode()])
                        sent.append(message)
                replies = [json.loads(c.receive()) for _ in sent]
                if [r["id"] for r in replies] != [m["id"] for m in sent]:
                    problems.append(f"client {index}: replies out of order: {[r['id'] for r in replies]}")
                for k, reply in enumerate(replies):
                    expected_revision = k // 2 + 1  # the snapshot before it is applied
                    if reply["status"] != "success" or reply["result"]["revision"] != expected_revision:
                        problems.append(f"client {index}: {reply}")

        threads = [threading.Thread(target=one_client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not problems, problems
        assert len(sessions) == clients
        server.send_signal(signal.SIGKILL)
        server.wait(10)
    finally:
        server.stop()
    restarted = server_process(tmp_path)
    try:
        assert restarted.endpoint
        with client(restarted.endpoint) as c:
            for session in sessions:
                result = c.call("session.resume", session).reply["result"]
                assert result["revision"] == rounds and result["source"] == "durable"
                assert result["state"]["preferences"] == {"mark": rounds}
    finally:
        restarted.stop()


def test_writer_survives_a_failing_write_and_reports_each_ticket(tmp_path: Path) -> None:
    committer = GroupCommitter(tmp_path / "w.sqlite3")
    try:
        committer.submit(1, lambda db: db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)"))
        committer.submit(2, lambda db: (_ for _ in ()).throw(RuntimeError("not a SQLite error")))
        committer.submit(3, lambda db: db.execute("INSERT INTO t VALUES (1)"))
        committer.submit(4, lambda db: db.execute("INSERT INTO t VALUES (1)"))  # taken: fails alone
        done: dict[int, Any] = {}

        def wait_for(ticket: int) -> None:
            deadline = time.monotonic() + 30
            while ticket not in done and time.monotonic() < deadline:
                select.select([committer.wake_fd], [], [], 1)
                done.update(committer.completed())
            assert ticket in done, f"ticket {ticket} never reported: the writer thread is gone"

        for ticket in (1, 2, 3, 4):
            wait_for(ticket)
        assert done[1] is None and done[3] is None
        assert isinstance(done[2], StoreError) and isinstance(done[4], StoreError)
        committer.submit(5, lambda db: db.execute("INSERT INTO t VALUES (2)"))  # the thread lives on
        wait_for(5)
        assert done[5] is None
    finally:
        committer.close()
    rows = sqlite3.connect(tmp_path / "w.sqlite3").execute("SELECT k FROM t ORDER BY k").fetchall()
    assert rows == [(1,), (2,)]
