"""Connection tracking in the engine (CON-7, CON-8): who is attached, idle detach, and the INFO log
lines for attach/detach (the per-request DEBUG line is the transport's: test_sockets.py)."""

from __future__ import annotations

import logging

from rs_harness import EngineHarness


def test_attach_is_logged_at_info_and_the_engine_logs_no_line_per_request(harness: EngineHarness, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="stui")
    auth = harness.create()
    harness.call("session.validate", auth)
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert caplog.records[0].getMessage() == f"attach session={auth['session_id'][:8]} peer=peer-a"
    caplog.clear()
    harness.call("session.validate", auth)
    assert caplog.records == []  # the transport writes the per-request line, where it is timed


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
