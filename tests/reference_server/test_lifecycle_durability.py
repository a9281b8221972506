"""Review regressions on the engine over a real SQLite store with a fake clock: durable expiry,
object ids never reused, recorded activity after a restart, durable error replies of snapshot/close,
bounded session state, connection tracking, resume's source, and the hot path staying off storage."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest
from rs_harness import T0, EngineHarness, error_code, request
from stui_protocol_kit.protocol.codec import rfc3339
from stui_protocol_kit.protocol.lifecycle import State
from stui_protocol_kit.reference_server import expiry
from stui_protocol_kit.reference_server.config import ServerConfig
from stui_protocol_kit.reference_server.reply_cache import CachedReply, ReplyCache, fingerprint
from stui_protocol_kit.reference_server.sessions import Session
from stui_protocol_kit.reference_server.storage import STORE_FILE, SessionRow

# conftest's config: idle 60 s, absolute 600 s, retention 120 s, retry window 30 s, 3 sessions per client.


def _stored_status(harness: EngineHarness, session_id: str) -> str | None:
    db = sqlite3.connect(harness.data_dir / STORE_FILE)
    try:
        row = db.execute("SELECT status FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
    finally:
        db.close()
    return row[0] if row else None


# -- 1. an expiry a request reports is durable before the reply (LIF-1, EXP-3) -----------------------


def test_expiry_reported_by_a_request_survives_a_crash(harness: EngineHarness, clock) -> None:
    auth = harness.create()
    clock.advance(61)
    first = harness.call("session.validate", auth)
    assert error_code(first) == "SessionExpired"
    assert _stored_status(harness, auth["session_id"]) == "expired"  # written before the reply, no tick
    clock.advance(0.5)
    harness.crash_restart()  # server start is now later than the last activity: EXP-4 must not revive it
    for command, extra in (("session.validate", {}), ("evaluate", {"code": "x := 1"})):
        reply = harness.call(command, {**auth, **extra})
        assert error_code(reply) == "SessionExpired"
        assert reply["error"]["details"] == first["error"]["details"]


def test_failed_expiry_write_answers_internal_error_and_the_next_request_writes_it(
    harness: EngineHarness, clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = harness.create()
    clock.advance(61)
    real = harness.store.expire_session
    calls = []

    def failing_once(session_id: str, at: float) -> None:
        calls.append(session_id)
        if len(calls) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        real(session_id, at)

    monkeypatch.setattr(harness.store, "expire_session", failing_once)
    assert error_code(harness.call("session.validate", auth)) == "InternalError"  # never an undurable expiry
    assert _stored_status(harness, auth["session_id"]) == "active"
    assert error_code(harness.call("session.validate", auth)) == "SessionExpired"
    assert _stored_status(harness, auth["session_id"]) == "expired"


# -- 2. object ids are never reused, also after a restart (INS-1, INS-4) ------------------------------


@pytest.mark.parametrize("restart", ["restart", "crash_restart"])
def test_object_ids_are_never_reused_after_a_restart(harness: EngineHarness, restart: str) -> None:
    auth = harness.create()
    lost = harness.call("inspect", {**auth, "expression": "'registered, never snapshotted'"})["result"]
    getattr(harness, restart)()
    issued = {lost["object_id"]}
    for _ in range(3):
        new = harness.call("inspect", {**auth, "expression": "42"})["result"]["object_id"]
        assert new not in issued
        issued.add(new)
    reply = harness.call("inspect", {**auth, "object_id": lost["object_id"]})
    assert error_code(reply) == "ObjectNotFound" and reply["error"]["details"] == {"object_id": lost["object_id"]}


def test_object_ids_restored_from_a_revision_stay_and_new_ones_differ(harness: EngineHarness) -> None:
    auth = harness.create()
    kept = harness.call("inspect", {**auth, "expression": "'kept'"})["result"]["object_id"]
    harness.call("session.snapshot", auth)
    lost = harness.call("inspect", {**auth, "expression": "'lost'"})["result"]["object_id"]
    harness.crash_restart()
    assert harness.call("inspect", {**auth, "object_id": kept})["result"]["print_string"] == "'kept'"
    new = harness.call("inspect", {**auth, "expression": "'new'"})["result"]["object_id"]
    assert new not in (kept, lost)
    assert error_code(harness.call("inspect", {**auth, "object_id": lost})) == "ObjectNotFound"


# -- 3. recorded activity vs. idle-deadline base; one expiry formula (VAL-2, EXP-4) -------------------


def test_validate_after_restart_reports_the_recorded_last_activity(harness: EngineHarness, clock) -> None:
    auth = harness.create()
    clock.advance(10)
    harness.call("evaluate", {**auth, "code": "1"})  # activity at T0+10
    clock.advance(30)
    harness.restart()  # started at T0+40
    clock.advance(5)
    result = harness.call("session.validate", auth)["result"]
    assert result["last_active_at"] == rfc3339(T0 + 10)  # not the server's start
    assert result["expires_at"] == rfc3339(T0 + 45 + 60)  # this request's activity


def test_restart_counts_the_idle_deadline_from_the_start_but_reports_the_recorded_activity(
    harness: EngineHarness, clock,
) -> None:
    auth = harness.create()
    clock.advance(50)
    harness.restart()  # T0+50: the session's deadline counts from here (EXP-4), the activity stays T0
    clock.advance(59)  # T0+109: past T0+60, before T0+110
    result = harness.call("session.validate", auth)["result"]
    assert result["last_active_at"] == rfc3339(T0)


def test_storage_deadline_sql_agrees_with_the_python_formula(harness: EngineHarness) -> None:
    started = T0 + 100
    rows = [  # (created_at, last_active_at)
        (T0, T0), (T0, T0 + 150), (T0 - 590, T0 - 590), (T0 - 500, T0 + 90), (T0 + 10, T0 + 20),
    ]
    store = harness.store
    for n, (created, last) in enumerate(rows):
        store.create_session(SessionRow(f"sql{n:019d}", "sql", b"d" * 32, created, last, "active", None, 0), b"{}")
    store.expire_overdue(T0 + 10_000, 60, 600, started)
    got = dict(store.db.execute("SELECT session_id, ended_at FROM sessions WHERE client_id = 'sql'"))
    for n, (created, last) in enumerate(rows):
        want, _ = expiry.deadline(created, expiry.idle_base(last, started), 60, 600)
        assert got[f"sql{n:019d}"] == pytest.approx(want)


# -- 4. error replies of snapshot/close are kept for retries across a restart (RTY-6) ----------------


def test_retried_snapshot_error_reply_after_restart_is_the_original(harness: EngineHarness, clock) -> None:
    auth = harness.create()
    original = harness.call("session.snapshot", {**auth, "expected_revision": 7}, rid="snap-1")
    assert error_code(original) == "RevisionConflict"
    clock.advance(3)
    harness.crash_restart()
    assert harness.call("session.snapshot", {**auth, "expected_revision": 7}, rid="snap-1") == original


def test_retried_close_error_replies_after_restart_are_the_originals(harness: EngineHarness, clock) -> None:
    expired_auth = harness.create()
    clock.advance(61)
    expired = harness.call("session.snapshot", expired_auth, rid="snap-late")
    assert error_code(expired) == "SessionExpired"
    auth = harness.create()
    harness.call("session.close", auth, rid="close-1")
    clock.advance(3)
    closed = harness.call("session.close", auth, rid="close-2")
    assert error_code(closed) == "SessionClosed"
    clock.advance(3)
    harness.crash_restart()
    assert harness.call("session.close", auth, rid="close-2") == closed
    assert harness.call("session.snapshot", expired_auth, rid="snap-late") == expired


# -- 10. a session's state stays small enough to be sent back (EVL-8, CON-6) --------------------------


@pytest.fixture
def small(tmp_path, clock):
    """An engine announcing the smallest max_message_bytes the spec allows."""
    harness = EngineHarness(tmp_path / "small", ServerConfig(max_message_bytes=65536, strict=True), clock)
    yield harness
    harness.engine.close()
    assert harness.engine.strict_violations == 0


def test_workspace_growth_is_refused_before_a_resume_reply_would_exceed_max_message_bytes(
    small: EngineHarness,
) -> None:
    harness = small
    limit = harness.config.max_message_bytes
    auth = harness.create()
    harness.call("session.snapshot", {**auth, "state": {"preferences": {"pad": "p" * 20_000}}})
    assert harness.call("evaluate", {**auth, "code": "a := '" + "a" * 30_000 + "'"})["status"] == "success"
    before = harness.call("session.resume", auth)["result"]["state"]
    reply = harness.call("evaluate", {**auth, "code": "b := a , a"})
    assert error_code(reply) == "EvaluationError" and "max_message_bytes" in reply["error"]["details"]["reason"]
    reply = harness.call("inspect", {**auth, "expression": "a , 'more'"})
    assert error_code(reply) == "EvaluationError"
    resume = harness.engine.handle([json.dumps(request("session.resume", auth)).encode()], "peer-a")
    assert json.loads(resume)["result"]["state"] == before  # nothing changed
    assert len(resume) <= limit
    # Rebinding a name frees what it held.
    assert harness.call("evaluate", {**auth, "code": "a := 1. b := 2"})["status"] == "success"


def test_evaluate_result_too_large_for_a_reply_is_an_evaluation_error(small: EngineHarness) -> None:
    auth = small.create()
    code = "a := '" + "x" * 30_000 + "'. a , a , a"  # a 90_000-character result, not kept
    reply = small.call("evaluate", {**auth, "code": code})
    assert error_code(reply) == "EvaluationError" and "does not fit" in reply["error"]["details"]["reason"]
    assert small.call("session.resume", auth)["result"]["state"]["workspace"]["variables"] == {}


# -- 11. hot path ----------------------------------------------------------------------------------


def test_per_request_log_line_is_debug_and_attach_is_info(harness: EngineHarness, caplog) -> None:
    caplog.set_level(logging.INFO, logger="stui")
    auth = harness.create()
    harness.call("session.validate", auth)
    assert "outcome=" not in caplog.text
    assert f"attach session={auth['session_id'][:8]} peer=peer-a" in caplog.text
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="stui")
    harness.call("session.validate", auth)
    assert "command=session.validate" in caplog.text and "outcome=success" in caplog.text


def test_request_past_retention_drops_the_session_from_memory_without_purging_storage(
    harness: EngineHarness, clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = harness.create()
    harness.call("session.close", auth)
    clock.advance(121)
    purges = []
    monkeypatch.setattr(harness.store, "purge", lambda *a: purges.append(a) or [])
    assert error_code(harness.call("session.validate", auth)) == "SessionNotFound"
    assert purges == [] and auth["session_id"] not in harness.engine.sessions.live
    assert _stored_status(harness, auth["session_id"]) == "closed"
    monkeypatch.undo()
    harness.engine.tick()
    assert _stored_status(harness, auth["session_id"]) is None
    assert error_code(harness.call("session.validate", auth)) == "SessionNotFound"


def test_create_draws_another_id_when_the_primary_key_refuses_one(harness: EngineHarness) -> None:
    first = harness.create()
    ids = iter([first["session_id"], "B" * 22])
    real = harness.engine.random_source
    harness.engine.random_source = lambda n: next(ids) if n == 16 else real(n)
    reply = harness.call("session.create", {"client_id": "again"})
    assert reply["status"] == "success" and reply["result"]["session_id"] == "B" * 22
    assert harness.call("session.validate", first)["status"] == "success"  # the first is untouched


def test_resume_and_snapshot_reuse_each_bindings_print_string(
    harness: EngineHarness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stui_protocol_kit.reference_server.evaluator import Value

    auth = harness.create()
    harness.call("evaluate", {**auth, "code": "big := 7 * 7 * 7. s := 'text'"})
    harness.call("inspect", {**auth, "expression": "big"})

    def recomputed(self: Value) -> dict:
        raise AssertionError("a binding was recomputed")

    monkeypatch.setattr(Value, "to_binding", recomputed)
    state = harness.call("session.resume", auth)["result"]["state"]
    assert state["workspace"]["variables"]["big"] == {"class": "SmallInteger", "print_string": "343"}
    assert harness.call("session.snapshot", auth)["status"] == "success"


def test_idle_detach_in_tick_also_forgets_the_peer_index(harness: EngineHarness, clock) -> None:
    auth = harness.create()
    for n in range(5):
        harness.call("session.validate", auth, peer=f"short-lived-{n}")
    clock.advance(30)
    harness.call("session.validate", auth, peer="stays")
    clock.advance(31)  # the short-lived ones made no request for 61 s
    harness.engine.tick()
    assert set(harness.engine.sessions.peers) == {"stays"}
    assert set(harness.engine.sessions.live[auth["session_id"]].attached) == {"stays"}


# -- 12. connection tracking (CON-7, CON-8) -------------------------------------------------------------


def test_create_does_not_attach_the_creating_connection(harness: EngineHarness, caplog) -> None:
    caplog.set_level(logging.INFO, logger="stui")
    auth = harness.create(peer="creator")
    assert "attach" not in caplog.text
    assert harness.call("session.validate", auth, peer="other")["result"]["attached_clients"] == 1
    assert harness.call("session.validate", auth, peer="creator")["result"]["attached_clients"] == 2


def test_attach_and_detach_are_logged_with_the_session_prefix(harness: EngineHarness, caplog) -> None:
    caplog.set_level(logging.INFO, logger="stui")
    auth = harness.create()
    harness.call("session.validate", auth, peer="p1")
    harness.engine.peer_disconnected("p1")
    prefix = auth["session_id"][:8]
    assert f"attach session={prefix} peer=p1" in caplog.text
    assert f"detach session={prefix} peer=p1 reason=disconnect" in caplog.text
    assert auth["session_id"] not in caplog.text and auth["token"] not in caplog.text


# -- 13. resume's source after a restart (RES-2, RES-3, RES-5) ----------------------------------------


def test_resume_after_restart_is_durable_only_when_it_loads_the_state(harness: EngineHarness) -> None:
    auth = harness.create()
    harness.restart()
    assert harness.call("session.resume", auth)["result"]["source"] == "durable"
    harness.restart()
    harness.call("session.validate", auth)  # loads the session as resume would (RES-5): now held
    assert harness.call("session.resume", auth)["result"]["source"] == "live"


# -- 14. a clock that steps back -------------------------------------------------------------------------


def test_reply_cache_expires_entries_whatever_order_their_times_come_in() -> None:
    cache = ReplyCache(window_s=10)
    fp = fingerprint("evaluate", {})
    cache.put("s", "late", CachedReply(fp, b"late", 100.0))
    cache.put("s", "early", CachedReply(fp, b"early", 50.0))  # the clock stepped back
    cache.expire(61.0)
    assert cache.get("s", "early", 55.0) is None and len(cache) == 1
    assert cache.get("s", "late", 105.0) is not None
    cache.expire(111.0)
    assert len(cache) == 0


def test_clock_step_back_never_moves_a_deadline_earlier() -> None:
    session = Session(session_id="s", client_id="c", token_digest=b"", created_at=T0, last_active_at=T0,
                      status=State.ACTIVE, ended_at=None, revision=0, head_revision=0, object_epoch=1)
    session.touch(T0 + 30)
    session.touch(T0 + 10)  # wall clock stepped back
    assert session.deadline(60, 600)[0] == T0 + 90 and session.last_active_at == T0 + 30


# -- RTY-10 (spec change in the same review round) --------------------------------------------------------


def test_create_repeated_on_another_connection_never_gets_the_original_session(harness: EngineHarness) -> None:
    first = harness.call("session.create", {"client_id": "shared"}, rid="same-id", peer="owner")["result"]
    again = harness.call("session.create", {"client_id": "shared"}, rid="same-id", peer="owner")["result"]
    assert again == first  # RTY-5: the same connection gets its session back
    other = harness.call("session.create", {"client_id": "shared"}, rid="same-id", peer="stranger")
    assert other["status"] == "success"
    leaked = json.dumps(other)
    assert first["token"] not in leaked and first["session_id"] not in leaked
