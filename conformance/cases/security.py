"""Cases for spec 6, security (SEC): token checks, what a caller without the token learns, secrecy."""

from __future__ import annotations

import base64
import json

from conformance.case import case
from conformance.cases._helpers import ok, validate
from conformance.context import CaseContext
from conformance.verifiers import expect_equal, expect_error, expect_true


def _flip(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@case("security.token-variants", "a token that differs in any way is InvalidToken",
      sends="validate with: last or first character changed, the token plus one character, another session's token",
      requirements=["SEC-2"])
def token_variants(ctx: CaseContext) -> None:
    s, other = ctx.new_session(), ctx.new_session()
    first = ("B" if s.token[0] == "A" else "A") + s.token[1:]
    # Variants stay schema-valid (43..128 base64url characters) so that only the token check can fail.
    for token in (_flip(s.token), first, s.token + "A", other.token):
        expect_error(ctx.call("session.validate", s.params(token=token)), "InvalidToken", "SEC-2")
    validate(ctx, s, "SEC-2")


@case("security.wrong-token-reveals-nothing", "InvalidToken looks the same for an active and a closed session",
      sends="wrong-token validate on an active and on a closed session", requirements=["SEC-3"])
def reveals_nothing(ctx: CaseContext) -> None:
    active, closed = ctx.new_session(), ctx.new_session()
    ok(ctx, "session.close", closed.params())
    errors = [expect_error(ctx.call("session.validate", s.params(token=_flip(s.token))), "InvalidToken", "SEC-3")
              for s in (active, closed)]
    expect_equal(errors[0], errors[1], "SEC-3", "InvalidToken error for active vs closed")
    expect_true(not errors[0].get("details"), "no details", errors[0].get("details"), "SEC-3")


@case("security.wrong-token-no-effect", "requests with a wrong token change nothing the holder can see",
      sends="validate; wrong-token snapshot, evaluate, close; validate", requirements=["SEC-4", "ERR-3"])
def no_effect(ctx: CaseContext) -> None:
    s = ctx.new_session()
    first = ctx.call("session.validate", s.params())
    bad = s.params(token=_flip(s.token))
    expect_error(ctx.call("session.snapshot", {**bad, "state": {"preferences": {"evil": 1}}}), "InvalidToken", "SEC-4")
    expect_error(ctx.call("session.close", bad), "InvalidToken", "SEC-4")
    after = validate(ctx, s, "SEC-4")
    expect_equal(0, after["revision"], "SEC-4", "revision")
    # The latest successful request before this validate is the first validate, not a wrong-token one.
    expect_true(after["last_active_at"] <= first.reply["timestamp"], f"<= {first.reply['timestamp']}",
                after["last_active_at"], "SEC-4", "last_active_at moved by a wrong-token request")
    expect_equal(first.reply["result"]["attached_clients"], after["attached_clients"], "SEC-4", "attached_clients")


@case("security.token-only-in-create", "no reply but create's carries the token",
      sends="create; resume, validate, snapshot, close with the token; schema-invalid and id-reused requests",
      requirements=["SEC-5"])
def token_secret(ctx: CaseContext) -> None:
    s = ctx.new_session()
    replies = [ctx.call(c, s.params()).reply for c in ("session.resume", "session.validate", "session.snapshot")]
    replies.append(ctx.call("session.snapshot", s.params(expected_revision="x")).reply)
    replies.append(ctx.call("session.validate", {**s.params(), "extra": s.token}).reply)
    replies.append(ctx.call("session.snapshot", s.params(expected_revision=99)).reply)
    replies.append(ctx.call("session.close", s.params(), request_id="same-id").reply)
    replies.append(ctx.call("session.validate", s.params(), request_id="same-id").reply)
    replies.append(ctx.send({"id": "t", "version": "1.0", "command": "session.validate",
                             "parameters": {"session_id": s.session_id, "token": s.token + "!"}}).reply)
    for reply in replies:
        expect_true(s.token not in json.dumps(reply), "no token in the reply", "the token appears", "SEC-5",
                    f"the token appears in a {reply.get('command')} {reply.get('status')} reply")


@case("security.ids-are-random", "session ids and tokens look random, not like counters or times",
      sends="session.create x3", requirements=["SEC-1"])
def ids_random(ctx: CaseContext) -> None:
    made = [ctx.new_session(client_id=ctx.client_id(str(i))) for i in range(3)]
    for s in made:
        raw_id = base64.urlsafe_b64decode(s.session_id + "=" * (-len(s.session_id) % 4))
        expect_true(len(raw_id) * 8 >= 128, ">= 128 bits of id", f"{len(raw_id) * 8} bits", "SEC-1")
        expect_true(s.client_id not in s.session_id, "no client_id in the id", s.session_id[:8] + "...", "SEC-1")
    for a, b in zip(made, made[1:], strict=False):
        same = sum(x == y for x, y in zip(a.session_id, b.session_id, strict=False))
        # Counters and timestamps share long prefixes; 22 random base64 characters share ~0.3 on average.
        expect_true(same <= len(a.session_id) // 2, "ids that differ in most characters",
                    f"{same} equal characters", "SEC-1")


@case("security.any-connection", "the right id and token work from a connection that never used the session",
      sends="create on connection A, validate and snapshot on a new connection B", requirements=["SEC-7"])
def any_connection(ctx: CaseContext) -> None:
    s = ctx.new_session(client=ctx.client())
    other = ctx.client()
    validate(ctx, s, "SEC-7", client=other)
    ok(ctx, "session.snapshot", s.params(), "SEC-7", client=other)


@case("security.connection-is-not-identity", "the creating connection still needs the right token",
      sends="create, then on the same connection validate with a wrong token", requirements=["SEC-7", "SEC-2"])
def not_identity(ctx: CaseContext) -> None:
    client = ctx.client()
    s = ctx.new_session(client=client)
    expect_error(client.call("session.validate", s.params(token=_flip(s.token))), "InvalidToken", "SEC-7")
