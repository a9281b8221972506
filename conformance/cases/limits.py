"""Cases for spec 11, limits (LIM), and the size rules of spec 1.2 (TRN-6, TRN-7)."""

from __future__ import annotations

import time

from stui_protocol_kit.conformance.case import NEED_EXPIRY, NEED_RESTART, CaseFailed, CaseSkipped, case
from stui_protocol_kit.conformance.cases._helpers import ok, validate
from stui_protocol_kit.conformance.context import CaseContext, SessionHandle
from stui_protocol_kit.conformance.verifiers import (
    expect_alive,
    expect_equal,
    expect_error,
    expect_null_echo,
    expect_success,
)
from stui_protocol_kit.protocol.codec import encode
from stui_protocol_kit.protocol.facts import LIMIT_MINIMUMS, REQUIRED_LIMITS
from stui_protocol_kit.protocol.problems import Problem

# The limits hello must announce, with the smallest value each may have (hello.json, spec/11-limits.md).
MINIMUMS = {name: minimum for name, minimum in LIMIT_MINIMUMS.items() if name in REQUIRED_LIMITS}


def _padded_snapshot(ctx: CaseContext, params: dict, size: int, char: str = "x") -> bytes:
    """A valid snapshot request of exactly `size` bytes (padding inside a preferences string, made of
    `char` as far as its UTF-8 length allows, topped up with "x")."""
    message = {"id": "pad", "version": "1.0", "command": "session.snapshot",
               "parameters": {**params, "state": {"preferences": {"pad": ""}}}}
    base = len(encode(message))
    if size < base:
        raise CaseSkipped("max_message_bytes is smaller than a snapshot request")
    width = len(char.encode())
    count = (size - base) // width
    message["parameters"]["state"]["preferences"]["pad"] = char * count + "x" * (size - base - count * width)
    body = encode(message)
    assert len(body) == size
    return body


@case("limits.announced", "hello announces every limit as an integer no smaller than the minimum",
      sends="hello", requirements=["LIM-1"])
def announced(ctx: CaseContext) -> None:
    limits = ok(ctx, "hello", {}, "LIM-1")["limits"]
    for name, minimum in MINIMUMS.items():
        value = limits.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise CaseFailed(f"{name} >= {minimum}", value, "LIM-1")


@case("limits.stable", "the announced limits do not change while the target runs",
      sends="hello on two connections, compared with the run's first hello", requirements=["LIM-3"])
def stable(ctx: CaseContext) -> None:
    for client in (ctx.client(), ctx.client()):
        expect_equal(ctx.limits, ok(ctx, "hello", {}, client=client)["limits"], "LIM-3", "limits")


@case("limits.payload-too-large", "max_message_bytes + 1 is PayloadTooLarge with the announced limit",
      sends="a valid snapshot padded to max_message_bytes + 1 bytes with ASCII, then with 2-byte characters"
            " (fewer characters than the limit)",
      requirements=["TRN-6", "LIM-2", "TRN-13", "TRN-14"])
def too_large(ctx: CaseContext) -> None:
    s = ctx.new_session()
    limit = int(ctx.limits["max_message_bytes"])
    # The size is counted in bytes: the second body has limit + 1 bytes but only about half as many characters.
    for body in (_padded_snapshot(ctx, s.params(), limit + 1), _padded_snapshot(ctx, s.params(), limit + 1, "\u00e9")):
        exchange = ctx.default.send_frames([body], request={"padded": limit + 1, "characters": len(body.decode())})
        error = expect_error(exchange, "PayloadTooLarge", "TRN-6")
        expect_equal(limit, error["details"]["max_message_bytes"], "TRN-6", "details.max_message_bytes")
        expect_null_echo(exchange)
    expect_alive(ctx, s)


@case("limits.payload-exactly-at-limit", "a request of exactly max_message_bytes is processed",
      sends="a valid snapshot padded to exactly max_message_bytes bytes", requirements=["TRN-7", "LIM-2"])
def exactly(ctx: CaseContext) -> None:
    s = ctx.new_session()
    limit = int(ctx.limits["max_message_bytes"])
    exchange = ctx.default.send_frames([_padded_snapshot(ctx, s.params(), limit)], request={"padded": limit})
    expect_success(exchange, "session.snapshot", "TRN-7")
    expect_equal(1, validate(ctx, s)["revision"], "TRN-7", "revision")


@case("limits.sessions-per-client", "one more session than max_sessions_per_client is LimitExceeded",
      sends="create max_sessions_per_client sessions, one more, close one, create again", requirements=["LIM-4"])
def per_client(ctx: CaseContext) -> None:
    limit = int(ctx.limits["max_sessions_per_client"])
    if limit > 200:
        raise CaseSkipped(f"max_sessions_per_client is {limit}; creating that many sessions is not worth it")
    cid = ctx.client_id("limit")
    made = [ctx.new_session(client_id=cid) for _ in range(limit)]
    error = expect_error(ctx.call("session.create", {"client_id": cid}), "LimitExceeded", "LIM-4")
    expect_equal({"limit": "max_sessions_per_client", "value": limit},
                 {k: error["details"].get(k) for k in ("limit", "value")}, "LIM-4", "details")
    ok(ctx, "session.create", {"client_id": ctx.client_id("other")}, "LIM-4")
    ok(ctx, "session.close", made[0].params())
    ok(ctx, "session.create", {"client_id": cid}, "LIM-4")


# Past this cap the case costs more than it is worth (it creates up to max_sessions + 1 sessions).
TOTAL_CAP_MAX = 200


@case("limits.total-sessions", "one more active session than max_sessions, whatever the client_id, is "
      "LimitExceeded; after a close there is room again", sends="create sessions with a new client_id each "
      "until LimitExceeded (at most max_sessions + 1), close one, create again, close them all",
      requirements=["LIM-6"])
def total_sessions(ctx: CaseContext) -> None:
    if "max_sessions" not in ctx.limits:
        raise CaseSkipped("the target announces no max_sessions (an optional limit, LIM-5/LIM-6)")
    cap = int(ctx.limits["max_sessions"])
    if cap > TOTAL_CAP_MAX:
        raise CaseSkipped(f"max_sessions is {cap}; creating that many sessions is not worth it (run the target "
                          f"with max_sessions {TOTAL_CAP_MAX} or less for this case)")
    # Other cases' sessions may still be active and count too, so a refusal may come before cap + 1
    # creates; it must have come by then. Sessions that expire meanwhile would make room: too slow a
    # run proves nothing and is skipped.
    lifetime = min(ctx.limit("idle_timeout_s"), ctx.limit("absolute_timeout_s"))
    made: list[SessionHandle] = []
    started = time.monotonic()
    try:
        refused = None
        for n in range(cap + 1):
            exchange = ctx.call("session.create", {"client_id": ctx.client_id(f"total-{n}")})
            if isinstance(exchange.reply, dict) and exchange.reply.get("status") == "success":
                result = exchange.reply["result"]
                made.append(SessionHandle(result["session_id"], result["token"], "", 0, result))
                continue
            refused = exchange
            break
        if time.monotonic() - started > lifetime - 1:
            raise CaseSkipped(f"creating {len(made) + 1} sessions took longer than the sessions' lifetime less "
                              f"a second (idle_timeout_s/absolute_timeout_s {lifetime:g}); some may have expired")
        if refused is None:
            raise CaseFailed.of([Problem("LIM-6", f"{cap + 1} sessions were created although max_sessions is {cap}",
                                         "$.status", "error LimitExceeded", "success")])
        error = expect_error(refused, "LimitExceeded", "LIM-6")
        expect_equal({"limit": "max_sessions", "value": cap},
                     {k: error["details"].get(k) for k in ("limit", "value")}, "LIM-6", "details")
        if made:
            ok(ctx, "session.close", made.pop().params())
            extra = ok(ctx, "session.create", {"client_id": ctx.client_id("total-again")}, "LIM-6")
            made.append(SessionHandle(extra["session_id"], extra["token"], "", 0, extra))
    finally:
        for handle in made:  # never leave the target full for the cases after this one
            ctx.call("session.close", handle.params())


@case("limits.expired-not-counted", "expired sessions do not count towards max_sessions_per_client",
      sends="create max_sessions_per_client sessions, wait past their expires_at, create again",
      requirements=["LIM-4", "EXP-5"], needs=[NEED_EXPIRY])
def expired_not_counted(ctx: CaseContext) -> None:
    idle = ctx.require_expiry("idle_timeout_s")
    limit = int(ctx.limits["max_sessions_per_client"])
    if limit > 50:
        raise CaseSkipped(f"max_sessions_per_client is {limit}; creating that many sessions is not worth it")
    cid = ctx.client_id("expiring")
    for _ in range(limit):
        ctx.new_session(client_id=cid)
    expect_error(ctx.call("session.create", {"client_id": cid}), "LimitExceeded", "LIM-4")
    time.sleep(idle + 0.6)
    ok(ctx, "session.create", {"client_id": cid}, "LIM-4")


def _limit_or_skip(ctx: CaseContext) -> int:
    limit = int(ctx.limits["max_sessions_per_client"])
    if limit > 200:
        raise CaseSkipped(f"max_sessions_per_client is {limit}; creating that many sessions is not worth it")
    return limit


@case("limits.sessions-per-client-across-connections", "max_sessions_per_client counts a client_id's sessions "
      "whichever connection created them",
      sends="create max_sessions_per_client sessions of one client_id, each on a new connection; one more on"
            " another", requirements=["LIM-4"])
def per_client_across_connections(ctx: CaseContext) -> None:
    limit = _limit_or_skip(ctx)
    cid = ctx.client_id("spread")
    for _ in range(limit):
        ctx.new_session(client=ctx.client(), client_id=cid)
    error = expect_error(ctx.client().call("session.create", {"client_id": cid}), "LimitExceeded", "LIM-4")
    expect_equal(limit, error["details"].get("value"), "LIM-4", "details.value")


@case("limits.sessions-per-client-after-restart", "a restart does not reset the count of a client_id's sessions",
      sends="create max_sessions_per_client sessions, restart, create one more",
      requirements=["LIM-4"], needs=[NEED_RESTART])
def per_client_after_restart(ctx: CaseContext) -> None:
    limit = _limit_or_skip(ctx)
    cid = ctx.client_id("durable")
    made = [ctx.new_session(client_id=cid) for _ in range(limit)]
    ctx.restart()
    # No request on the sessions after the restart: loading them would count them in memory.
    if min(s.seconds_left() for s in made) < 1.0:
        raise CaseSkipped("a session reached its deadline during the restart: run the target with a longer"
                          " idle_timeout_s / absolute_timeout_s to check that the count survives a restart")
    expect_error(ctx.client().call("session.create", {"client_id": cid}), "LimitExceeded", "LIM-4")
