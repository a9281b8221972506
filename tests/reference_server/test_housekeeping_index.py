"""tick() visits only the sessions with something due (issue 14: its cost does not grow with the
number of sessions held). Behaviour: every timeout, retention end, idle detach and activity flush
still happens when due - also when activity moved a deadline later, or closing moved it earlier -
and a session with nothing due is left alone."""

from __future__ import annotations

from rs_harness import EngineHarness, FakeClock, error_code

from stui_protocol_kit.reference_server.config import ServerConfig


def _held_status(harness: EngineHarness, session: dict[str, str]) -> str | None:
    held = harness.engine.sessions.live.get(session["session_id"])
    return held.status.value if held is not None else None


def test_activity_moves_the_deadline_and_tick_follows(harness: EngineHarness, clock) -> None:
    session = harness.create()
    clock.advance(50)
    assert harness.call("session.validate", session)["status"] == "success"  # idle deadline now +60 from here
    clock.advance(20)  # past the first deadline, not the moved one
    harness.engine.tick()
    assert harness.stored_status(session["session_id"]) == "active"
    assert _held_status(harness, session) == "active"
    clock.advance(41)  # past the moved deadline: tick fires the timeout in memory, not only in storage
    harness.engine.tick()
    # Fired in memory: the session is expired there or, its end durable, a tombstone that left memory.
    assert _held_status(harness, session) in ("expired", None)
    assert harness.stored_status(session["session_id"]) == "expired"
    assert error_code(harness.call("session.validate", session)) == "SessionExpired"


def test_closing_moves_the_next_event_earlier_and_the_tombstone_is_purged_on_time(clock: FakeClock) -> None:
    # Long timeouts, short retention: a close makes the session's next event much earlier.
    config = ServerConfig(idle_timeout_s=600, absolute_timeout_s=3600, tombstone_retention_s=5, strict=True)
    harness = EngineHarness(None, config, clock)
    try:
        session = harness.create()
        harness.engine.tick()
        assert harness.call("session.close", session)["status"] == "success"
        clock.advance(6)
        harness.engine.tick()
        assert _held_status(harness, session) is None  # purged from memory by tick, not by a request
        assert harness.stored_status(session["session_id"]) is None
        assert error_code(harness.call("session.validate", session)) == "SessionNotFound"
    finally:
        harness.engine.close()


def test_many_sessions_nothing_due_then_all_due(harness: EngineHarness, clock) -> None:
    sessions = [harness.create(f"client-{i}") for i in range(30)]
    harness.engine.tick()
    assert all(harness.stored_status(s["session_id"]) == "active" for s in sessions)
    clock.advance(61)
    harness.engine.tick()
    assert all(_held_status(harness, s) in ("expired", None) for s in sessions)  # None: the tombstone left memory
    assert all(harness.stored_status(s["session_id"]) == "expired" for s in sessions)


def test_activity_is_flushed_by_tick(disk: EngineHarness, clock) -> None:
    session = disk.create()
    clock.advance(10)
    assert disk.call("session.validate", session)["status"] == "success"
    disk.engine.tick()
    row = disk.store.load_session(session["session_id"])
    assert row is not None and row.last_active_at == clock.now
