"""The engine's retry cache, on the in-memory store with a fake clock: error replies of snapshot and
close kept across a restart (RTY-6), creates never replayed (RTY-10, RTY-11: the takeover of issue 10,
also over a real ROUTER socket), read-only commands not cached, the cache's bound in bytes and whom it
drops first (RTY-12), and the cache's expiry order."""

from __future__ import annotations

import dataclasses
import json
import time
import tracemalloc

import pytest
import zmq
from rs_harness import EngineHarness, FakeClock, ThreadServer, error_code

from stui_protocol_kit.protocol.facts import RETRY_CACHED_COMMANDS
from stui_protocol_kit.reference_server.config import ServerConfig
from stui_protocol_kit.reference_server.reply_cache import (
    ENTRY_OVERHEAD_BYTES,
    CachedReply,
    ReplyCache,
    fingerprint,
)


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
    other = harness.call("session.create", {"client_id": "shared"}, rid="same-id", peer="stranger")
    assert other["status"] == "success"
    leaked = json.dumps(other)
    assert first["token"] not in leaked and first["session_id"] not in leaked


def test_create_repeated_under_the_victims_routing_id_never_gets_its_token(harness: EngineHarness) -> None:
    """Issue 10's takeover, sans I/O: a peer that reconnects under the victim's routing id (chosen with
    ZMQ_ROUTING_ID, or predicted) and repeats its create (client_id and a counter-style id) must get a
    session of its own (RTY-11). Before 1.0.2 the engine replayed the victim's reply here."""
    victim = harness.call("session.create", {"client_id": "victim"}, rid="1", peer="0080000001")["result"]
    attacker = harness.call("session.create", {"client_id": "victim"}, rid="1", peer="0080000001")
    assert attacker["status"] == "success"
    assert victim["token"] not in json.dumps(attacker) and victim["session_id"] not in json.dumps(attacker)


def test_takeover_over_a_real_router_socket_gets_a_new_session(tmp_path) -> None:
    """The attack as issue 10 ran it: real ZeroMQ, the victim's socket gone, the attacker's socket
    under the same routing id sends the same create."""
    config = ServerConfig(idle_timeout_s=60, absolute_timeout_s=600, retry_window_s=30, strict=True)
    server = ThreadServer(tmp_path / "data", config)
    body = json.dumps({"id": "1", "version": "1.0", "command": "session.create",
                       "parameters": {"client_id": "victim"}}).encode()
    try:
        def exchange(routing_id: bytes) -> dict | None:
            sock = server.context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.ROUTING_ID, routing_id)
            sock.connect(server.endpoint)
            try:
                sock.send(body)
                return json.loads(sock.recv()) if sock.poll(1000) else None
            finally:
                sock.close(0)

        victim = exchange(b"victim-routing-id")
        assert victim is not None and victim["status"] == "success"
        deadline = time.monotonic() + 10
        attacker = None
        while attacker is None and time.monotonic() < deadline:  # until the ROUTER let go of the old socket
            attacker = exchange(b"victim-routing-id")
        assert attacker is not None, "the attacker's socket was never answered"
        assert attacker["status"] == "success"
        assert attacker["result"]["token"] != victim["result"]["token"]
        assert attacker["result"]["session_id"] != victim["result"]["session_id"]
    finally:
        server.stop()


def test_read_only_commands_are_answered_anew_not_from_the_cache(harness: EngineHarness) -> None:
    """A retried resume or validate executes again (it changes nothing): it shows the current state, and
    it pins nothing in the cache. Before, the first reply (revision 0) was replayed."""
    auth = harness.create()
    assert harness.call("session.resume", auth, rid="read")["result"]["revision"] == 0
    assert harness.call("session.validate", auth, rid="check")["result"]["revision"] == 0
    harness.call("session.snapshot", auth)
    assert harness.call("session.resume", auth, rid="read")["result"]["revision"] == 1
    assert harness.call("session.validate", auth, rid="check")["result"]["revision"] == 1
    assert len(harness.engine.replies) == 1  # the snapshot's
    # The lookup still runs for them: an id naming a cached reply of another request is id_reused (RTY-3).
    harness.call("session.snapshot", auth, rid="taken")
    assert harness.call("session.validate", auth, rid="taken")["error"]["details"]["reason"] == "id_reused"


def test_only_commands_that_change_something_are_cached() -> None:
    assert {"session.snapshot", "session.close", "evaluate", "inspect"} == RETRY_CACHED_COMMANDS


@pytest.fixture
def small_cache(config: ServerConfig) -> ServerConfig:
    return dataclasses.replace(config, retry_cache_bytes=1024 * 1024, max_message_bytes=1024 * 1024)


def _big_state(harness: EngineHarness, auth: dict[str, str], size: int) -> None:
    reply = harness.call("session.snapshot", {**auth, "state": {"preferences": {"blob": "x" * size}}})
    assert reply["status"] == "success", reply


def test_resumes_of_a_large_session_pin_nothing(small_cache: ServerConfig, clock: FakeClock) -> None:
    """Issue 10's amplification: a small resume with a fresh id pinned a ~1 MiB reply for the window
    (2,000 of them took the server to 2 GiB). Now the cache holds none of them."""
    harness = EngineHarness(None, small_cache, clock)
    auth = harness.create()
    _big_state(harness, auth, 900_000)
    for n in range(40):
        assert harness.call("session.resume", auth, rid=f"fresh-{n}")["status"] == "success"
    assert len(harness.engine.replies) == 1
    assert harness.engine.replies.bytes < 2 * ENTRY_OVERHEAD_BYTES  # only the snapshot's small reply


def test_the_cache_stays_within_its_bound_and_drops_the_largest_sessions_entries_first(
        small_cache: ServerConfig, clock: FakeClock) -> None:
    harness = EngineHarness(None, small_cache, clock)
    victim, attacker = harness.create("victim"), harness.create("attacker")
    original = harness.call("evaluate", {**victim, "code": "v := 41 + 1"}, rid="victim-eval")
    big = "big := '" + "x" * 1000 + "'." + " big := big , big." * 7 + " big"  # 128,000 characters
    for n in range(40):  # ~5 MiB of replies against a 1 MiB bound
        assert harness.call("evaluate", {**attacker, "code": big}, rid=f"flood-{n}")["status"] == "success"
        assert harness.engine.replies.bytes <= small_cache.retry_cache_bytes
    assert harness.engine.replies.evictions > 0
    # The victim's small entry outlived the flood: the attacker's session held the most bytes.
    assert harness.call("evaluate", {**victim, "code": "v := 41 + 1"}, rid="victim-eval") == original


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_a_dropped_snapshot_or_close_reply_still_answers_its_retry(
        small_cache: ServerConfig, clock: FakeClock, tmp_path, where: str) -> None:
    """RTY-12: snapshot/close replies stay for the whole window, whatever the pressure. The cache may
    drop them from memory (they are the oldest of the flooding session), storage answers instead."""
    harness = EngineHarness(tmp_path / "data" if where == "disk" else None, small_cache, clock)
    try:
        auth, closing = harness.create("flooder"), harness.create("flooder")
        snapshot = harness.call("session.snapshot", auth, rid="snap")
        closed = harness.call("session.close", {**closing}, rid="close")
        big = "big := '" + "x" * 1000 + "'." + " big := big , big." * 7 + " big"
        for n in range(20):
            harness.call("evaluate", {**auth, "code": big}, rid=f"flood-{n}")
        assert harness.engine.replies.lost_durable(auth["session_id"])
        assert harness.call("session.snapshot", auth, rid="snap") == snapshot
        assert harness.call("session.validate", auth)["result"]["revision"] == 1
        assert harness.call("session.close", closing, rid="close") == closed
        reused = harness.call("evaluate", {**auth, "code": "1"}, rid="snap")
        assert reused["error"]["details"]["reason"] == "id_reused"
    finally:
        harness.engine.close()


def test_a_cached_entry_keeps_a_digest_not_the_request(harness: EngineHarness) -> None:
    """An evaluate of 30 KB of code (a comment) answering `1` costs its small reply in the cache, not
    the request: before, each entry kept the request's parameters until a retry needed the digest."""
    auth = harness.create()
    code = '"' + "c" * 30_000 + '" 1'
    harness.call("evaluate", {**auth, "code": code})  # warm-up: first-use allocations
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(50):
            assert harness.call("evaluate", {**auth, "code": code}, rid=f"c-{n}")["status"] == "success"
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 50 * 10_000, f"{grown} bytes kept for 50 small replies"


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


def test_reply_cache_accounts_bytes_and_forgets_scopes() -> None:
    cache = ReplyCache(window_s=10, max_bytes=10 * ENTRY_OVERHEAD_BYTES)
    fp = fingerprint("evaluate", {})
    cache.put("a", "1", CachedReply(fp, b"x" * 100, 0.0))
    cache.put("a", "1", CachedReply(fp, b"x" * 200, 0.0))  # replaced, not added
    cache.put("b", "1", CachedReply(fp, b"y" * 50, 0.0))
    assert cache.bytes == 250 + 2 * ENTRY_OVERHEAD_BYTES and len(cache) == 2
    cache.forget_scopes({"a"})
    assert cache.bytes == 50 + ENTRY_OVERHEAD_BYTES and len(cache) == 1
    cache.expire(10.0)
    assert cache.bytes == 0 and len(cache) == 0
