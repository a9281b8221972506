"""The engine's retry cache, on the in-memory store with a fake clock: error replies of snapshot and
close kept across a restart (RTY-6), create repeats on another connection (RTY-10), and the cache's
expiry order."""

from __future__ import annotations

import json

from rs_harness import EngineHarness, error_code

from stui_protocol_kit.reference_server.reply_cache import CachedReply, ReplyCache, fingerprint


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


def test_create_repeated_on_another_connection_never_gets_the_original_session(harness: EngineHarness) -> None:
    first = harness.call("session.create", {"client_id": "shared"}, rid="same-id", peer="owner")["result"]
    again = harness.call("session.create", {"client_id": "shared"}, rid="same-id", peer="owner")["result"]
    assert again == first  # RTY-5: the same connection gets its session back
    other = harness.call("session.create", {"client_id": "shared"}, rid="same-id", peer="stranger")
    assert other["status"] == "success"
    leaked = json.dumps(other)
    assert first["token"] not in leaked and first["session_id"] not in leaked


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
