"""Cases for spec 10, retries (RTY): a repeated request id is answered from the cache, never executed
twice; a reused id with different content is `id_reused`.
"""

from __future__ import annotations

import json
import time

from stui_protocol_kit.conformance.case import NEED_RESTART, case
from stui_protocol_kit.conformance.cases._helpers import evaluate, expect_retry_reply, ok, validate
from stui_protocol_kit.conformance.cases.concurrency import _message
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_error, expect_success, expect_true
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


@case("retries.create-retry", "a retried create returns the same session and does not count twice",
      sends="session.create id R x(limit+1) with one client_id", requirements=["RTY-5"])
def create_retry(ctx: CaseContext) -> None:
    cid = ctx.client_id("retry")
    limit = int(ctx.limits["max_sessions_per_client"])
    replies = [ctx.call("session.create", {"client_id": cid}, request_id="retry-create")
               for _ in range(min(limit, 20) + 1)]
    expect_success(replies[0], "session.create", "RTY-5")
    for exchange in replies[1:]:
        expect_retry_reply(ctx, replies[0], exchange, "RTY-5", "the retried create reply")
    # The retries did not count: one session is held, so a new create is within the limit unless it is 1.
    fresh = ctx.call("session.create", {"client_id": cid})
    if limit >= 2:
        expect_success(fresh, "session.create", "RTY-5")
    else:
        expect_error(fresh, "LimitExceeded", "RTY-5")


@case("retries.create-replay-needs-the-same-connection",
      "a create repeated on another connection never gets the original session's token",
      sends="session.create id R on connection A; the same request (client_id, id) on connection B",
      requirements=["RTY-10", "SEC-5", "RTY-5"])
def create_replay_other_connection(ctx: CaseContext) -> None:
    cid = ctx.client_id("replay")
    first = expect_success(ctx.call("session.create", {"client_id": cid}, request_id="replay-create"),
                           "session.create", "RTY-5")
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
      "re-executed", sends="snapshot id R on session A, close id C on session B, restart, both again",
      requirements=["RTY-6"], needs=[NEED_RESTART, "retry.durable"])
def durable(ctx: CaseContext) -> None:
    s, closing = ctx.new_session(), ctx.new_session()
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



@case("retries.kept-for-the-window", "a reply stays cached across a delay and many other requests",
      sends="snapshot id R; 120 validates with other ids; a pause of up to 3 s within retry_window_s; snapshot id R",
      requirements=["RTY-1", "RTY-2"])
def kept_for_window(ctx: CaseContext) -> None:
    s = ctx.new_session()
    first = ctx.call("session.snapshot", s.params(), request_id="window-retry")
    expect_success(first, "session.snapshot", "RTY-1")
    for _ in range(120):  # a cache that keeps only the last N replies loses R here
        validate(ctx, s, "RTY-1")
    # A pause well inside the window (whose minimum is 1 s), so a cache that expires early is seen - and
    # inside the idle timeout, so the session outlives it.
    time.sleep(min(3.0, ctx.limit("retry_window_s") / 2, ctx.limit("idle_timeout_s") / 2))
    again = ctx.call("session.snapshot", s.params(), request_id="window-retry")
    expect_retry_reply(ctx, first, again, "RTY-1", "the retried reply after a pause and 120 other requests")
    expect_equal(1, validate(ctx, s)["revision"], "RTY-2", "revision after the retry")


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
