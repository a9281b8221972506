"""What sessions cost the server (issue 10, item 3): a closed or expired session keeps no state and
leaves memory once its end is durable; the total number of active sessions is capped (max_sessions,
LIM-6), counted exactly - closed and expired sessions never, sessions kept alive by activity not yet
flushed to storage always."""

from __future__ import annotations

import dataclasses

import pytest
from rs_harness import EngineHarness, FakeClock, error_code

from stui_protocol_kit.reference_server.config import ServerConfig

BLOB = "x" * 500_000


def _with_state(harness: EngineHarness, client_id: str = "client-1") -> dict[str, str]:
    auth = harness.create(client_id)
    saved = harness.call("session.snapshot", {**auth, "state": {"preferences": {"blob": BLOB}}})
    assert saved["status"] == "success", saved
    return auth


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_a_closed_session_keeps_no_state_and_leaves_memory(
        config: ServerConfig, clock: FakeClock, tmp_path, where: str) -> None:
    """Before, a closed 1 MiB session kept its whole state in memory until its purge (24 h by default)."""
    harness = EngineHarness(tmp_path / "data" if where == "disk" else None, config, clock)
    try:
        auth = _with_state(harness)
        closed = harness.call("session.close", auth, rid="bye")
        held = harness.engine.sessions.live[auth["session_id"]]
        assert held.variables is None and held.preferences == {} and held.server_bytes == held.client_bytes == 0
        harness.engine.tick()
        assert auth["session_id"] not in harness.engine.sessions.live
        # What the tombstone answers is unchanged: its error with the time of the close, and a retry.
        again = harness.call("session.resume", auth)
        assert error_code(again) == "SessionClosed"
        assert again["error"]["details"]["closed_at"] == closed["timestamp"]
        assert harness.call("session.close", auth, rid="bye") == closed
    finally:
        harness.engine.close()


def test_an_expired_session_keeps_no_state_and_leaves_memory(harness: EngineHarness, clock: FakeClock) -> None:
    auth = _with_state(harness)
    clock.advance(61)
    harness.engine.tick()  # the expiry fires and is written
    assert auth["session_id"] not in harness.engine.sessions.live
    assert error_code(harness.call("session.validate", auth)) == "SessionExpired"
    held = harness.engine.sessions.live[auth["session_id"]]  # read again for the reply: without state
    assert held.variables is None and held.preferences == {}


def test_expiry_found_by_a_request_drops_the_state_at_once(harness: EngineHarness, clock: FakeClock) -> None:
    auth = _with_state(harness)
    clock.advance(61)
    assert error_code(harness.call("session.validate", auth)) == "SessionExpired"
    assert harness.engine.sessions.live[auth["session_id"]].variables is None


@pytest.fixture
def capped(config: ServerConfig, clock: FakeClock) -> EngineHarness:
    return EngineHarness(None, dataclasses.replace(config, max_sessions=16, max_sessions_per_client=50), clock)


def test_hello_announces_the_total_cap_and_the_retry_cache_bound(capped: EngineHarness) -> None:
    limits = capped.call("hello")["result"]["limits"]
    assert limits["max_sessions"] == 16
    assert limits["retry_cache_bytes"] == capped.config.retry_cache_bytes


def test_create_beyond_the_total_cap_is_limit_exceeded_with_any_client_id(capped: EngineHarness) -> None:
    sessions = [capped.create(f"client-{n}") for n in range(16)]
    refused = capped.call("session.create", {"client_id": "client-new"})
    assert error_code(refused) == "LimitExceeded"
    assert refused["error"]["details"] == {"limit": "max_sessions", "value": 16}
    capped.call("session.close", sessions[0])  # closed sessions do not count
    assert capped.call("session.create", {"client_id": "client-new"})["status"] == "success"


def test_expired_sessions_do_not_count_against_the_total(capped: EngineHarness, clock: FakeClock) -> None:
    for n in range(16):
        capped.create(f"client-{n}")
    clock.advance(61)  # all idle past their deadline, none told yet, nothing written yet
    assert capped.call("session.create", {"client_id": "client-new"})["status"] == "success"


def test_activity_not_yet_flushed_still_counts(capped: EngineHarness, clock: FakeClock) -> None:
    """Storage sees the activity of held sessions only at the next flush: counting by it alone would
    take a session kept alive a moment ago for expired, and let a create past the cap."""
    sessions = [capped.create(f"client-{n}") for n in range(16)]
    clock.advance(50)
    for auth in sessions:
        assert capped.call("session.validate", auth)["status"] == "success"  # deadline now T0+110
    clock.advance(20)  # T0+70: past the stored activity's deadline (T0+60), before the real one
    assert error_code(capped.call("session.create", {"client_id": "client-new"})) == "LimitExceeded"


def test_the_per_client_limit_is_answered_before_the_total(capped: EngineHarness) -> None:
    engine = EngineHarness(None, dataclasses.replace(capped.config, max_sessions_per_client=2), capped.clock)
    engine.create("one")
    engine.create("one")
    for n in range(14):
        engine.create(f"other-{n}")
    refused = engine.call("session.create", {"client_id": "one"})
    assert refused["error"]["details"]["limit"] == "max_sessions_per_client"
