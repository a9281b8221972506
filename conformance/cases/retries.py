"""Cases for spec 10, retries (RTY): a repeated request id is answered from the cache, never executed
twice; a reused id with different content is `id_reused`.
"""

from __future__ import annotations

import json
import secrets
import time

from stui_protocol_kit.conformance.case import NEED_RESTART, CaseSkipped, case
from stui_protocol_kit.conformance.cases._helpers import evaluate, expect_retry_reply, ok, validate
from stui_protocol_kit.conformance.cases.concurrency import _message
from stui_protocol_kit.conformance.context import CaseContext, CheckedClient
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_error, expect_success, expect_true
from stui_protocol_kit.protocol.client import Exchange, ReplyTimeout
from stui_protocol_kit.protocol.codec import encode


@case("retries.snapshot-not-executed-twice", "a retried snapshot returns the original reply and no new revision",
      sends="snapshot with id R, the same request again", requirements=["RTY-2", "RTY-1"])
def snapshot_twice(ctx: CaseContext) -> None:
    s = ctx.new_session()
    first = ctx.call("session.snapshot", s.params(), request_id="retry-snap")
    expect_success(first, "session.snapshot", "RTY-2")
    again = ctx.call("session.snapshot", s.params(), request_id="retry-snap")
    expect_retry_reply(ctx, first, again, "RTY-2", "the retried reply (timestamp included)")
    expect_equal(1, validate(ctx, s)["revision"], "RTY-2", "revision after a retry")


@case("retries.other-connection", "a retry on another connection gets the original reply",
      sends="snapshot with id R on A, the same request on a new connection B", requirements=["RTY-2"])
def other_connection(ctx: CaseContext) -> None:
    s = ctx.new_session()
    params = s.params(state={"preferences": {"r": 1}})
    first = ctx.client().call("session.snapshot", params, request_id="retry-conn")
    again = ctx.client().call("session.snapshot", params, request_id="retry-conn")
    expect_retry_reply(ctx, first, again, "RTY-2", "the reply on the other connection")
    expect_equal(1, validate(ctx, s)["revision"], "RTY-2", "revision")


@case("retries.id-reused", "the same id with different parameters is InvalidRequest id_reused",
      sends="snapshot id R {preferences a}; snapshot id R {preferences b}; snapshot id R {preferences a}",
      requirements=["RTY-3"])
def id_reused(ctx: CaseContext) -> None:
    s = ctx.new_session()
    first = ctx.call("session.snapshot", s.params(state={"preferences": {"v": "a"}}), request_id="reused")
    expect_success(first, "session.snapshot")
    expect_error(ctx.call("session.snapshot", s.params(state={"preferences": {"v": "b"}}), request_id="reused"),
                 "InvalidRequest", "RTY-3", reason="id_reused")
    expect_error(ctx.call("session.validate", s.params(), request_id="reused"), "InvalidRequest", "RTY-3",
                 reason="id_reused")
    again = ctx.call("session.snapshot", s.params(state={"preferences": {"v": "a"}}), request_id="reused")
    expect_retry_reply(ctx, first, again, "RTY-3", "the cached entry after an id_reused answer")
    expect_equal(1, validate(ctx, s)["revision"], "RTY-3", "revision")


@case("retries.evaluate-not-executed-twice", "a retried evaluate does not run its assignment again",
      sends="evaluate 'c := 0'; evaluate 'c := c + 1' with id R twice; evaluate 'c'",
      requirements=["RTY-2"], needs=["evaluate"])
def evaluate_twice(ctx: CaseContext) -> None:
    s = ctx.new_session()
    evaluate(ctx, s, "c := 0")
    first = ctx.call("evaluate", s.params(code="c := c + 1"), request_id="retry-eval")
    again = ctx.call("evaluate", s.params(code="c := c + 1"), request_id="retry-eval")
    if again.reply != first.reply and ctx.retry_traffic.may_have_dropped("evaluate", ctx.limits):
        raise CaseSkipped("the run's cached replies may have filled the announced retry_cache_bytes, which lets "
                          "the target drop a cached evaluate reply (RTY-12); run it with a larger one "
                          "(reference server: --retry-cache-bytes)")
    expect_retry_reply(ctx, first, again, "RTY-2", "the retried reply")
    expect_equal("1", evaluate(ctx, s, "c")["print_string"], "RTY-2", "c after a retried increment")


@case("retries.close-retry", "a retried close gets the original success, not SessionClosed",
      sends="close with id R, close with id R again", requirements=["RTY-2", "CLS-2"])
def close_retry(ctx: CaseContext) -> None:
    s = ctx.new_session()
    first = ctx.call("session.close", s.params(), request_id="retry-close")
    expect_success(first, "session.close", "CLS-1")
    again = ctx.call("session.close", s.params(), request_id="retry-close")
    expect_retry_reply(ctx, first, again, "RTY-2", "the retried close reply")


def _expect_new_session(ctx: CaseContext, first: dict, repeat: Exchange, limit: float, requirement: str) -> None:
    """A repeated create is a new request: a new session (LimitExceeded only when one session already
    reaches the limit), and never any part of the first reply."""
    leaked = json.dumps(repeat.reply)
    expect_true(first["token"] not in leaked and first["session_id"] not in leaked,
                "a reply without the first session's id and token", "the first session's reply", requirement,
                "a repeated session.create was answered with the original session (a takeover)")
    if limit >= 2:
        expect_success(repeat, "session.create", requirement)
    elif isinstance(repeat.reply, dict) and repeat.reply.get("status") == "error":
        expect_error(repeat, "LimitExceeded", requirement)


@case("retries.create-never-replayed", "a create repeated on the same connection makes a new session",
      sends="session.create id R with client_id C twice on one connection", requirements=["RTY-11", "SEC-5"])
def create_never_replayed(ctx: CaseContext) -> None:
    cid = ctx.client_id("again")
    limit = ctx.limit("max_sessions_per_client")
    first = expect_success(ctx.call("session.create", {"client_id": cid}, request_id="create-again"),
                           "session.create", "RTY-11")
    _expect_new_session(ctx, first, ctx.call("session.create", {"client_id": cid}, request_id="create-again"),
                        limit, "RTY-11")


@case("retries.create-same-routing-id", "a peer reconnecting under a victim's routing id never gets its token",
      sends="session.create id 1 on a socket with routing id X, closed; the same request on a new socket with "
            "routing id X", requirements=["RTY-11", "SEC-5"])
def create_same_routing_id(ctx: CaseContext) -> None:
    # The attack of issue 10: a ROUTER hands out routing ids in a predictable sequence and any peer may
    # set its own (ZMQ_ROUTING_ID), so "the same connection" proves nothing about the sender.
    routing_id = b"stui-" + secrets.token_hex(8).encode()
    cid = ctx.client_id("victim")
    victim = ctx.client(routing_id=routing_id)
    first = expect_success(victim.call("session.create", {"client_id": cid}, request_id="1"), "session.create",
                           "RTY-11")
    victim.close()
    attacker = _reclaim(ctx, routing_id)
    _expect_new_session(ctx, first, attacker.call("session.create", {"client_id": cid}, request_id="1"),
                        ctx.limit("max_sessions_per_client"), "RTY-11")


def _reclaim(ctx: CaseContext, routing_id: bytes) -> CheckedClient:
    """A socket under `routing_id` once the server has let go of the closed one: a ROUTER refuses a
    second connection under an id still in use, so hello is tried (harmless) until one is answered."""
    deadline = time.monotonic() + min(ctx.config.timeout_s, 5.0)
    while True:
        client = ctx.client(routing_id=routing_id)
        try:
            client.raw.call("hello", {}, timeout_s=0.5)
            return client
        except ReplyTimeout:
            client.close()
            if time.monotonic() > deadline:
                # Refusing a routing id still in use is ZeroMQ's default, not a fault: nothing to judge.
                raise CaseSkipped("the target did not take a new connection under the closed one's routing id "
                                  "within min(--timeout, 5 s); the attack it guards against needs that") from None


@case("retries.create-replay-needs-the-same-connection",
      "a create repeated on another connection never gets the original session's token",
      sends="session.create id R on connection A; the same request (client_id, id) on connection B",
      requirements=["RTY-10", "SEC-5"])
def create_replay_other_connection(ctx: CaseContext) -> None:
    cid = ctx.client_id("replay")
    first = expect_success(ctx.call("session.create", {"client_id": cid}, request_id="replay-create"),
                           "session.create", "RTY-10")
    other = ctx.client().call("session.create", {"client_id": cid}, request_id="replay-create")
    leaked = json.dumps(other.reply)
    expect_true(first["token"] not in leaked and first["session_id"] not in leaked,
                "a reply without the first session's id and token", "the first session's reply", "RTY-10",
                "a repeated create from another connection was answered with the original session")


@case("retries.pipelined-duplicate", "a retry arriving before the original's reply is not executed twice",
      sends="one DEALER sends the same snapshot (same id) twice without waiting", requirements=["RTY-4"])
def pipelined(ctx: CaseContext) -> None:
    s = ctx.new_session()
    client = ctx.client("dealer")
    message = _message("dup", "session.snapshot", s.params())
    for _ in range(2):
        client.raw.send_frames([encode(message)])
    bodies = [client.raw.receive(), client.raw.receive()]
    expect_equal(bodies[0], bodies[1], "RTY-4", "the two replies (byte for byte)")
    expect_equal(1, validate(ctx, s)["revision"], "RTY-4", "revision")


@case("retries.durable-after-restart", "with retry.durable a snapshot or close retried after a restart is not "
      "re-executed, nor is an error reply of a snapshot",
      sends="snapshot with a wrong expected_revision id E, snapshot id R on session A, close id C on session B,"
            " restart, all three again",
      requirements=["RTY-6"], needs=[NEED_RESTART, "retry.durable"])
def durable(ctx: CaseContext) -> None:
    s, closing = ctx.new_session(), ctx.new_session()
    # An error reply is covered too (RTY-6: "success or error"); executed again after the snapshot below it
    # would name another current_revision.
    conflict = ctx.call("session.snapshot", s.params(expected_revision=5), request_id="durable-conflict")
    expect_error(conflict, "RevisionConflict", "RTY-6")
    first = ctx.call("session.snapshot", s.params(), request_id="durable-retry")
    expect_success(first, "session.snapshot")
    closed = ctx.call("session.close", closing.params(), request_id="durable-close")
    expect_success(closed, "session.close")
    ctx.restart()
    client = ctx.client()
    again = client.call("session.snapshot", s.params(), request_id="durable-retry")
    expect_retry_reply(ctx, first, again, "RTY-6", "the retried snapshot reply after a restart")
    expect_equal(1, validate(ctx, s, client=client)["revision"], "RTY-6", "revision")
    closed_again = client.call("session.close", closing.params(), request_id="durable-close")
    expect_retry_reply(ctx, closed, closed_again, "RTY-6", "the retried close reply after a restart")
    conflict_again = client.call("session.snapshot", s.params(expected_revision=5), request_id="durable-conflict")
    expect_retry_reply(ctx, conflict, conflict_again, "RTY-6", "the retried RevisionConflict reply after a restart")



@case("retries.kept-for-the-window", "a reply stays cached across a delay and many other requests",
      sends="snapshot id R; 120 evaluates (or snapshots) with other ids; a pause of up to 3 s within "
            "retry_window_s; snapshot id R",
      requirements=["RTY-1", "RTY-2"])
def kept_for_window(ctx: CaseContext) -> None:
    s = ctx.new_session()
    first = ctx.call("session.snapshot", s.params(), request_id="window-retry")
    expect_success(first, "session.snapshot", "RTY-1")
    # A cache that keeps only the last N replies loses R here. Read-only replies are not cached
    # (10.1), so the others are replies that are: evaluates when the target has them, else snapshots.
    for _ in range(120):
        if "evaluate" in ctx.capabilities:
            evaluate(ctx, s, "1", "RTY-1")
        else:
            ok(ctx, "session.snapshot", s.params(), "RTY-1")
    # A pause well inside the window (whose minimum is 1 s), so a cache that expires early is seen - and
    # inside the idle timeout, so the session outlives it.
    time.sleep(min(3.0, ctx.limit("retry_window_s") / 2, ctx.limit("idle_timeout_s") / 2))
    again = ctx.call("session.snapshot", s.params(), request_id="window-retry")
    expect_retry_reply(ctx, first, again, "RTY-1", "the retried reply after a pause and 120 other requests")
    revision = 1 if "evaluate" in ctx.capabilities else 121
    expect_equal(revision, validate(ctx, s)["revision"], "RTY-2", "revision after the retry")


@case("retries.error-reply-cached", "a retried request that got an error gets the identical error, not a re-run",
      sends="snapshot expected_revision 5 with id R (RevisionConflict); snapshot to revision 5..; the same R again",
      requirements=["RTY-2", "RTY-1"])
def error_cached(ctx: CaseContext) -> None:
    s = ctx.new_session()
    params = s.params(expected_revision=1)
    first = ctx.call("session.snapshot", params, request_id="err-retry")
    expect_error(first, "RevisionConflict", "RTY-2")
    ok(ctx, "session.snapshot", s.params())  # now at revision 1: re-executing R would succeed
    again = ctx.call("session.snapshot", params, request_id="err-retry")
    expect_retry_reply(ctx, first, again, "RTY-2", "the retried error reply (timestamp included)")
    expect_equal(1, validate(ctx, s)["revision"], "RTY-2", "revision")


# Past this many requests the flood costs more than the case is worth; the reason names the setting.
PRESSURE_MAX_REQUESTS = 400


@case("retries.durable-kept-under-cache-pressure",
      "snapshot and close replies stay cached for the window however full the retry cache is",
      sends="snapshot id R and close id Q; evaluates with large results on the same client until the replies "
            "exceed retry_cache_bytes; R and Q again", requirements=["RTY-12", "RTY-2"], needs=["evaluate"])
def durable_kept_under_pressure(ctx: CaseContext) -> None:
    bound = ctx.limit("retry_cache_bytes")
    if bound == float("inf"):
        raise CaseSkipped("the target announces no retry_cache_bytes: its retry cache is not bounded in bytes, "
                          "so RTY-1 keeps every reply (retries.kept-for-the-window); a bounded one announces it "
                          "(reference server: --retry-cache-bytes)")
    s, closing = ctx.new_session(), ctx.new_session()
    first = ctx.call("session.snapshot", s.params(), request_id="pressure-snap")
    expect_success(first, "session.snapshot", "RTY-2")
    closed = ctx.call("session.close", closing.params(), request_id="pressure-close")
    expect_success(closed, "session.close", "RTY-2")
    # A string result of `size` characters, built from a short request by doubling; the variable is
    # rebound each time, so the session's state stays one such string (it must fit in a reply, EVL-8).
    # At most 128,000 characters: a server may bound its evaluation's values (EVL-8), so larger
    # strings prove nothing; a target refusing even these is SKIPPED below, never blamed.
    room = min(128_000, (int(ctx.limit("max_message_bytes")) - 8192) // 2)
    doublings = max(0, (max(room, 1000) // 1000).bit_length() - 1)
    size = 1000 * 2 ** doublings
    code = "big := '" + "x" * 1000 + "'." + " big := big , big." * doublings + " big"
    needed = int(bound * 1.25) // (size + 1024) + 2  # each reply counted as its size plus at most 1 KiB
    if needed > PRESSURE_MAX_REQUESTS:
        raise CaseSkipped(f"retry_cache_bytes {int(bound)} needs {needed} evaluates of {size} characters to fill; "
                          f"start the target with a retry_cache_bytes below "
                          f"{PRESSURE_MAX_REQUESTS * (size + 1024) * 4 // 5} (the minimum is 1048576; reference "
                          f"server: --retry-cache-bytes)")
    for _ in range(needed):
        flood = ctx.call("evaluate", s.params(code=code))
        if isinstance(flood.reply, dict) and (flood.reply.get("error") or {}).get("code") == "EvaluationError":
            raise CaseSkipped(f"the target refused a string of {size} characters (EvaluationError, which EVL-8 "
                              "allows), so the case cannot fill its retry cache; a smaller max_message_bytes "
                              "makes the case use smaller strings")
        result = expect_success(flood, "evaluate", "RTY-12")
        expect_equal(size + 2, len(result.get("print_string", "")), "RTY-12", "the result's print string length")
    again = ctx.call("session.snapshot", s.params(), request_id="pressure-snap")
    expect_retry_reply(ctx, first, again, "RTY-12", "the retried snapshot reply after the flood")
    expect_equal(1, validate(ctx, s)["revision"], "RTY-12", "revision after the retried snapshot")
    closed_again = ctx.call("session.close", closing.params(), request_id="pressure-close")
    expect_retry_reply(ctx, closed, closed_again, "RTY-12", "the retried close reply after the flood")


@case("retries.member-order-irrelevant", "a retry whose parameters list their members in another order is a retry",
      sends="snapshot id R {state: {inspector {a, b}, preferences {x, y}}}; the same with every object's members"
            " reversed", requirements=["RTY-2"])
def member_order(ctx: CaseContext) -> None:
    s = ctx.new_session()
    state = {"inspector": {"a": 1, "b": [1, {"p": True, "q": None}]}, "preferences": {"x": "1", "y": 2.5}}
    first = ctx.send(_message("order-retry", "session.snapshot", {**s.params(), "state": state}))
    expect_success(first, "session.snapshot", "RTY-2")

    def reversed_members(value: object) -> object:
        if isinstance(value, dict):
            return {k: reversed_members(value[k]) for k in reversed(list(value))}
        if isinstance(value, list):
            return [reversed_members(v) for v in value]
        return value

    again = ctx.send(_message("order-retry", "session.snapshot", reversed_members({**s.params(), "state": state})))
    expect_retry_reply(ctx, first, again, "RTY-2", "a retry with its JSON members in another order")
    expect_equal(1, validate(ctx, s)["revision"], "RTY-2", "revision (the retry must not execute)")


@case("retries.id-reused-before-closed", "an id reused for another request on a closed session is id_reused "
      "(P6c before P6d)",
      sends="snapshot id R, close, resume id R", requirements=["RTY-3", "ERR-1"])
def id_reused_before_closed(ctx: CaseContext) -> None:
    s = ctx.new_session()
    # A snapshot: its reply is cacheable (10.1), so the id is known when it comes back for another request.
    expect_success(ctx.call("session.snapshot", s.params(), request_id="reused-closed"), "session.snapshot")
    ok(ctx, "session.close", s.params())
    expect_error(ctx.call("session.resume", s.params(), request_id="reused-closed"), "InvalidRequest", "RTY-3",
                 reason="id_reused")
