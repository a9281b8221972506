"""Cases for spec 9, concurrency and several clients (CON): serialization, conflicts, isolation,
connection tracking. Concurrent requests are pipelined on DEALER sockets (all sent, then all read),
which needs no threads and no sleeps.
"""

from __future__ import annotations

import time

from stui_protocol_kit.conformance.case import NEED_EXPIRY, CaseFailed, case
from stui_protocol_kit.conformance.cases._helpers import evaluate, ok, resume, snapshot, validate
from stui_protocol_kit.conformance.context import CaseContext, CheckedClient
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_success
from stui_protocol_kit.protocol.client import Exchange
from stui_protocol_kit.protocol.codec import decode_body, encode, parse_rfc3339


def _pipeline(ctx: CaseContext, sends: list[tuple[CheckedClient, dict]]) -> dict[str, Exchange]:
    """Send every message before reading any reply; return the checked exchanges by request id."""
    for client, message in sends:
        ctx.transcript.record("request", message)
        client.raw.send_frames([encode(message)])
    out: dict[str, Exchange] = {}
    for client, message in sends:
        body = client.raw.receive()
        reply = decode_body(body, max_bytes=len(body) + 1, max_depth=10_000, require_object=False)
        ctx.transcript.record("reply", reply.message)
        exchange = Exchange(message, [], reply=reply.message, reply_bytes=body, reply_has_float=reply.has_float)
        rid = reply.message.get("id") if isinstance(reply.message, dict) else None
        if rid not in {m["id"] for c, m in sends if c is client}:
            raise CaseFailed("a reply to a request sent on this connection", rid, "CON-5")
        out[rid] = exchange
        ctx.check_reply(exchange, sent=next(m for c, m in sends if m["id"] == rid))
    return out


def _message(rid: str, command: str, params: dict) -> dict:
    return {"id": rid, "version": "1.0", "command": command, "parameters": params}


@case("concurrency.conflicting-snapshots", "of two snapshots with the same expected_revision one succeeds",
      sends="two connections pipeline snapshot expected_revision 0 on one session",
      requirements=["CON-3", "SNP-4", "CON-5"])
def conflicting(ctx: CaseContext) -> None:
    s = ctx.new_session()
    a, b = ctx.client("dealer"), ctx.client("dealer")
    replies = _pipeline(ctx, [(a, _message("c-a", "session.snapshot", s.params(expected_revision=0))),
                              (b, _message("c-b", "session.snapshot", s.params(expected_revision=0)))])
    outcomes = sorted(r.reply["status"] if r.reply["status"] == "success" else r.reply["error"]["code"]
                      for r in replies.values())
    expect_equal(["RevisionConflict", "success"], outcomes, "CON-3", "outcomes of the two snapshots")
    expect_equal(1, validate(ctx, s)["revision"], "CON-3", "revision")


@case("concurrency.distinct-revisions", "concurrent unconditional snapshots get distinct revisions",
      sends="four connections pipeline snapshot without expected_revision", requirements=["CON-3", "SNP-5", "CON-5"])
def distinct_revisions(ctx: CaseContext) -> None:
    s = ctx.new_session()
    clients = [ctx.client("dealer") for _ in range(4)]
    replies = _pipeline(ctx, [(c, _message(f"d-{i}", "session.snapshot", s.params())) for i, c in enumerate(clients)])
    revisions = sorted(r.reply["result"]["revision"] for r in replies.values() if r.reply["status"] == "success")
    expect_equal([1, 2, 3, 4], revisions, "CON-3", "revisions of four unconditional snapshots")


@case("concurrency.order-on-one-connection", "requests pipelined on one connection keep their order",
      sends="one DEALER pipelines 8 snapshots of one session", requirements=["CON-1", "CON-5"])
def order(ctx: CaseContext) -> None:
    s = ctx.new_session()
    client = ctx.client("dealer")
    replies = _pipeline(ctx, [(client, _message(f"o-{i}", "session.snapshot",
                                                s.params(state={"preferences": {"i": i}}))) for i in range(1, 9)])
    for i in range(1, 9):
        expect_equal(i, replies[f"o-{i}"].reply["result"]["revision"], "CON-1", f"revision of request {i}")
    expect_equal({"i": 8}, resume(ctx, s)["state"]["preferences"], "CON-1", "preferences after the last snapshot")


@case("concurrency.two-clients-one-session", "changes on one connection are seen on another",
      sends="A snapshots preferences, B resumes; B snapshots, A resumes", requirements=["CON-2"])
def two_clients(ctx: CaseContext) -> None:
    s = ctx.new_session()
    a, b = ctx.client(), ctx.client()
    snapshot(ctx, s, client=a, state={"preferences": {"by": "a"}})
    expect_equal({"by": "a"}, resume(ctx, s, client=b)["state"]["preferences"], "CON-2", "B sees A's change")
    snapshot(ctx, s, client=b, state={"inspector": {"by": "b"}})
    state = resume(ctx, s, client=a)["state"]
    expect_equal({"by": "b"}, state["inspector"], "CON-2", "A sees B's change")


@case("concurrency.session-isolation", "two sessions on one connection and client_id do not share state",
      sends="two sessions, same client_id and connection: different preferences; resume each",
      requirements=["CON-4"])
def isolation(ctx: CaseContext) -> None:
    ctx.require_limits(ctx.limit("max_sessions_per_client") >= 2, "max_sessions_per_client >= 2 (two sessions of"
                       " one client_id)")
    cid = ctx.client_id("shared")
    a, b = ctx.new_session(client_id=cid), ctx.new_session(client_id=cid)
    snapshot(ctx, a, state={"preferences": {"who": "a"}})
    state_b = resume(ctx, b)["state"]
    expect_equal({}, state_b["preferences"], "CON-4", "B's preferences after A's snapshot")
    expect_equal(0, validate(ctx, b)["revision"], "CON-4", "B's revision")


@case("concurrency.workspace-isolation", "same-named variables in two sessions are independent",
      sends="x := 1 in session A, x := 2 in session B, read x in both", requirements=["CON-4"], needs=["evaluate"])
def workspace_isolation(ctx: CaseContext) -> None:
    a, b = ctx.new_session(), ctx.new_session()
    evaluate(ctx, a, "x := 1")
    evaluate(ctx, b, "x := 2")
    expect_equal("1", evaluate(ctx, a, "x")["print_string"], "CON-4", "x in A")
    expect_equal("2", evaluate(ctx, b, "x")["print_string"], "CON-4", "x in B")


@case("concurrency.twenty-connections", "20 connections with their own sessions all get their own replies",
      sends="20 DEALER connections create sessions, then pipeline validate + snapshot each", requirements=["CON-5"])
def twenty(ctx: CaseContext) -> None:
    pairs = []
    for i in range(20):
        client = ctx.client("dealer")
        pairs.append((client, ctx.new_session(client=client, client_id=ctx.client_id(str(i)))))
    sends = []
    for i, (client, s) in enumerate(pairs):
        sends.append((client, _message(f"v-{i}", "session.validate", s.params())))
        sends.append((client, _message(f"s-{i}", "session.snapshot", s.params(state={"preferences": {"n": i}}))))
    replies = _pipeline(ctx, sends)
    for i, (_client, s) in enumerate(pairs):
        for rid in (f"v-{i}", f"s-{i}"):
            result = replies[rid].reply.get("result") or {}
            expect_equal(s.session_id, result.get("session_id"), "CON-5", f"session of reply {rid}")
    for i, (_client, s) in enumerate(pairs[:3]):
        expect_equal({"n": i}, resume(ctx, s)["state"]["preferences"], "CON-5", f"preferences of session {i}")


@case("concurrency.attached-clients", "attached_clients counts the connections that used the session",
      sends="connection A creates and validates x3; connections B and C validate; A validates again",
      requirements=["CON-7"])
def attached(ctx: CaseContext) -> None:
    a = ctx.client()
    s = ctx.new_session(client=a)
    # Absolute counts: A made create and validate requests, so it counts once however many it made.
    for _ in range(3):
        expect_equal(1, validate(ctx, s, "CON-7", client=a)["attached_clients"], "CON-7",
                     "attached_clients of the only connection (several requests count once)")
    expect_equal(2, validate(ctx, s, "CON-7", client=ctx.client())["attached_clients"], "CON-7", "with B")
    expect_equal(3, validate(ctx, s, "CON-7", client=ctx.client())["attached_clients"], "CON-7", "with C")
    for _ in range(2):
        expect_equal(3, validate(ctx, s, "CON-7", client=a)["attached_clients"], "CON-7",
                     "A again (connections, not requests)")
    ok(ctx, "hello", {})
    expect_equal(3, validate(ctx, s, "CON-7", client=a)["attached_clients"], "CON-7", "after a hello")


@case("concurrency.attached-idle-window", "a connection idle for idle_timeout_s is no longer counted",
      sends="A creates; B validates; A validates every idle/4 s past B's idle window; A validates",
      requirements=["CON-7"], needs=[NEED_EXPIRY], waits={"idle_timeout_s": 1})
def attached_idle_window(ctx: CaseContext) -> None:
    idle = ctx.require_expiry("idle_timeout_s")
    ctx.require_limits(ctx.limit("absolute_timeout_s") >= idle + 2,
                       "absolute_timeout_s >= idle_timeout_s + 2, so that a session in use outlives one idle window")
    a, b = ctx.client(), ctx.client()
    s = ctx.new_session(client=a)
    b_time = parse_rfc3339(b.call("session.validate", s.params()).reply["timestamp"])
    # B stays connected but silent; A keeps the session alive until B's last request is idle_timeout_s old.
    while True:
        exchange = a.call("session.validate", s.params())
        result = expect_success(exchange, "session.validate", "CON-7")
        age = (parse_rfc3339(exchange.reply["timestamp"]) - b_time).total_seconds()
        if age < idle - 0.3:
            expect_equal(2, result["attached_clients"], "CON-7", "attached_clients while B is within the window")
        if age > idle + 0.3:
            break
        time.sleep(min(idle / 4, max(0.05, idle + 0.35 - age)))
    expect_equal(1, result["attached_clients"], "CON-7",
                 f"attached_clients {age:.1f}s after B's last request (idle_timeout_s {idle:g})")


@case("concurrency.disconnect-forgotten", "a connection that disconnects stops being counted within a few seconds",
      sends="A creates; B validates and closes its socket; A validates until the count drops (up to 3 s)",
      requirements=["CON-8", "CON-7"], level="SHOULD")
def disconnect_forgotten(ctx: CaseContext) -> None:
    a, b = ctx.client(), ctx.client()
    s = ctx.new_session(client=a)
    validate(ctx, s, client=b)
    expect_equal(2, validate(ctx, s, client=a)["attached_clients"], "CON-7", "with B connected")
    b.close()
    deadline = time.monotonic() + 3.0
    while True:
        count = validate(ctx, s, client=a)["attached_clients"]
        if count == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    expect_equal(1, count, "CON-8", "attached_clients 3 s after B disconnected")


@case("concurrency.failed-request-does-not-attach", "a connection whose requests on a session all failed is not "
      "attached to it",
      sends="A: create, validate; B: snapshot with a wrong expected_revision, evaluate invalid code, inspect an"
            " unknown object; A: validate", requirements=["CON-7"])
def failed_request_does_not_attach(ctx: CaseContext) -> None:
    s = ctx.new_session()
    a, b = ctx.client(), ctx.client()
    validate(ctx, s, client=a)
    b.call("session.snapshot", s.params(expected_revision=99))
    if "evaluate" in ctx.capabilities:
        b.call("evaluate", s.params(code="1 +"))
    if "inspect" in ctx.capabilities:
        b.call("inspect", s.params(object_id="o999999"))
    expect_equal(1, validate(ctx, s, "CON-7", client=a)["attached_clients"], "CON-7",
                 "attached_clients (B made no successful request)")


@case("concurrency.mixed-order-on-one-connection", "pipelined requests of different commands on one connection "
      "are executed in their order",
      sends="one DEALER pipelines snapshot, validate, snapshot, resume, snapshot, validate on one session",
      requirements=["CON-1", "CON-5"])
def mixed_order(ctx: CaseContext) -> None:
    s = ctx.new_session()
    client = ctx.client("dealer")
    plan = [("m-1", "session.snapshot", {"state": {"preferences": {"i": 1}}}), ("m-2", "session.validate", {}),
            ("m-3", "session.snapshot", {"state": {"preferences": {"i": 2}}}), ("m-4", "session.resume", {}),
            ("m-5", "session.snapshot", {"state": {"preferences": {"i": 3}}}), ("m-6", "session.validate", {})]
    replies = _pipeline(ctx, [(client, _message(rid, command, s.params(**extra))) for rid, command, extra in plan])
    commands = {rid: command for rid, command, _ in plan}
    for rid, revision in (("m-2", 1), ("m-4", 2), ("m-6", 3)):
        result = expect_success(replies[rid], commands[rid], "CON-1")
        expect_equal(revision, result["revision"], "CON-1", f"revision seen by request {rid}")
    expect_equal({"i": 2}, replies["m-4"].reply["result"]["state"]["preferences"], "CON-1",
                 "preferences seen by the resume between the second and third snapshot")
