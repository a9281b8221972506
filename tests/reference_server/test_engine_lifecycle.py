"""The engine and the session lifecycle, on the in-memory store with a fake clock: an expiry a request
reports is durable before the reply, deadlines after a restart, retention, a clock that steps back,
and every edge of the lifecycle diagram executed by the engine."""

from __future__ import annotations

import pytest
from rs_harness import T0, EngineHarness, error_code

from stui_protocol_kit.protocol import lifecycle
from stui_protocol_kit.protocol.codec import rfc3339
from stui_protocol_kit.protocol.lifecycle import Event, SessionLifecycle, State, Timeouts
from stui_protocol_kit.reference_server.store import StoreError

# conftest's config: idle 60 s, absolute 600 s, retention 120 s, retry window 30 s, 3 sessions per client.


# -- an expiry a request reports is durable before the reply (LIF-1, EXP-3) ---------------------------


def test_expiry_reported_by_a_request_survives_a_crash(harness: EngineHarness, clock) -> None:
    auth = harness.create()
    clock.advance(61)
    first = harness.call("session.validate", auth)
    assert error_code(first) == "SessionExpired"
    assert harness.stored_status(auth["session_id"]) == "expired"  # written before the reply, no tick
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
            raise StoreError("disk I/O error")
        real(session_id, at)

    monkeypatch.setattr(harness.store, "expire_session", failing_once)
    assert error_code(harness.call("session.validate", auth)) == "InternalError"  # never an undurable expiry
    assert harness.stored_status(auth["session_id"]) == "active"
    assert error_code(harness.call("session.validate", auth)) == "SessionExpired"
    assert harness.stored_status(auth["session_id"]) == "expired"


# -- recorded activity vs. idle-deadline base after a restart (VAL-2, EXP-4) ---------------------------


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


# -- retention: a request drops a tombstone from memory, tick() from storage ---------------------------


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
    assert harness.stored_status(auth["session_id"]) == "closed"
    monkeypatch.undo()
    harness.engine.tick()
    assert harness.stored_status(auth["session_id"]) is None
    assert error_code(harness.call("session.validate", auth)) == "SessionNotFound"


# -- a clock that steps back ----------------------------------------------------------------------------


def test_clock_step_back_never_moves_a_deadline_earlier() -> None:
    session = SessionLifecycle.create(Timeouts(60, 600, 120), T0)
    session.process_event(Event.USE, T0 + 30)
    session.process_event(Event.USE, T0 + 10)  # wall clock stepped back
    assert session.deadline() == (T0 + 90, Event.IDLE_TIMEOUT) and session.last_active_at == T0 + 30


# -- every edge of the generated diagram is executed by the engine (spec/05-lifecycle.md) ---------------


def test_the_engine_fires_every_transition_of_the_lifecycle_table(
    harness: EngineHarness, clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fired: set[tuple[State | None, Event]] = set()
    real_process, real_create = SessionLifecycle.process_event, SessionLifecycle.create.__func__

    def recording(self: SessionLifecycle, event: Event, at: float) -> State:
        fired.add((self.state, event))
        return real_process(self, event, at)

    def recording_create(cls, timeouts: Timeouts, at: float) -> SessionLifecycle:
        fired.add((lifecycle.INITIAL, Event.CREATE))
        return real_create(cls, timeouts, at)

    monkeypatch.setattr(SessionLifecycle, "process_event", recording)
    monkeypatch.setattr(SessionLifecycle, "create", classmethod(recording_create))
    closed, idle, busy = harness.create(), harness.create(), harness.create("busy")
    harness.call("session.validate", closed)  # use
    harness.call("session.close", closed)  # close
    for n in range(1, 11):  # busy stays in use until t=550, idle is left alone
        clock.advance(55)
        assert harness.call("session.validate", busy)["status"] == "success"
        if n == 2:  # t=110
            assert error_code(harness.call("session.validate", idle)) == "SessionExpired"  # idle timeout
    clock.advance(55)  # t=605: used 55 s ago, but created 605 s ago
    assert error_code(harness.call("session.validate", busy)) == "SessionExpired"  # absolute timeout
    clock.advance(121)
    harness.engine.tick()  # retention elapsed: closed and both expired ones are purged
    for auth in (closed, idle, busy):
        assert error_code(harness.call("session.validate", auth)) == "SessionNotFound"
    table = {(source, event) for source, edges in lifecycle.TRANSITIONS.items() for event in edges}
    assert fired == table, {"never fired": table - fired}


def test_lifecycle_advance_ends_a_session_at_its_deadline_and_purges_after_retention() -> None:
    s = SessionLifecycle.create(Timeouts(60, 600, 120), T0)
    assert s.advance(T0 + 59.9) == [] and s.state is State.ACTIVE
    assert s.advance(T0 + 100) == [Event.IDLE_TIMEOUT] and s.ended_at == T0 + 60  # not when noticed
    assert s.answer() == "SessionExpired"
    assert s.advance(T0 + 180) == [Event.RETENTION_ELAPSED] and s.state is State.PURGED
    late = SessionLifecycle.create(Timeouts(60, 600, 120), T0)
    assert late.advance(T0 + 181) == [Event.IDLE_TIMEOUT, Event.RETENTION_ELAPSED]
    assert late.answer() == "SessionNotFound"
    with pytest.raises(lifecycle.TransitionError):
        late.process_event(Event.USE, T0 + 200)


def test_restored_session_counts_idle_from_the_later_of_its_activity_and_the_start() -> None:
    timeouts = Timeouts(60, 600, 120)
    s = SessionLifecycle.restore(timeouts, state=State.ACTIVE, created_at=T0, last_active_at=T0 + 10,
                                 ended_at=None, started_at=T0 + 40)
    assert s.deadline() == (T0 + 100, Event.IDLE_TIMEOUT) and s.last_active_at == T0 + 10
    assert rfc3339(s.deadline()[0]) == rfc3339(T0 + 100)
