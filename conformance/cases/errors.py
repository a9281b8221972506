"""Cases for spec 12, errors (ERR): the precedence order P1..P7, no side effects, the registry.

Each precedence case builds one request that fails two steps and expects the earlier step's error.
"""

from __future__ import annotations

from stui_protocol_kit.conformance.case import case
from stui_protocol_kit.conformance.cases._helpers import UNKNOWN_SESSION_ID, WRONG_TOKEN, ok, resume, snapshot, validate
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_error, expect_true


@case("errors.version-before-envelope", "P2 before P3: a bad envelope in version 2.0 is UnsupportedVersion",
      sends='{"version": "2.0", "id": 5, "extra": true}', requirements=["ERR-1", "VER-1"])
def p2_p3(ctx: CaseContext) -> None:
    expect_error(ctx.send({"version": "2.0", "id": 5, "extra": True}), "UnsupportedVersion", "ERR-1")


@case("errors.envelope-before-command", "P3 before P4: an unknown command with an extra member is InvalidRequest",
      sends="command 'no.such' with an extra envelope member", requirements=["ERR-1"])
def p3_p4(ctx: CaseContext) -> None:
    message = {"id": "p3", "version": "1.0", "command": "no.such", "parameters": {}, "extra": 1}
    expect_error(ctx.send(message), "InvalidRequest", "ERR-1", reason="schema")


@case("errors.command-before-parameters", "P4 before P5: an unknown command with odd parameters is UnknownCommand",
      sends="command 'no.such' with parameters {weird: [1]}", requirements=["ERR-1", "VER-6"])
def p4_p5(ctx: CaseContext) -> None:
    expect_error(ctx.call("no.such", {"weird": [1]}), "UnknownCommand", "ERR-1")


@case("errors.parameters-before-session", "P5 before P6: invalid parameters on an unknown session are InvalidRequest",
      sends="validate with an unknown session_id and an extra parameter", requirements=["ERR-1"])
def p5_p6(ctx: CaseContext) -> None:
    params = {"session_id": UNKNOWN_SESSION_ID, "token": WRONG_TOKEN, "extra": 1}
    expect_error(ctx.call("session.validate", params), "InvalidRequest", "ERR-1", reason="schema")


@case("errors.token-before-retry", "P6b before P6c: a wrong token with a cached request id is InvalidToken",
      sends="snapshot id R; snapshot id R with a wrong token", requirements=["ERR-1", "SEC-3"])
def p6b_p6c(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ok(ctx, "session.snapshot", s.params(), request_id="cached-r")
    expect_error(ctx.call("session.snapshot", s.params(token=WRONG_TOKEN), request_id="cached-r"), "InvalidToken",
                 "ERR-1")


@case("errors.closed-before-command", "P6d before P7: a conflicting snapshot on a closed session is SessionClosed",
      sends="create, close, snapshot expected_revision 7", requirements=["ERR-1"])
def p6d_p7(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ok(ctx, "session.close", s.params())
    expect_error(ctx.call("session.snapshot", s.params(expected_revision=7)), "SessionClosed", "ERR-1")


@case("errors.size-before-everything", "P1: an oversize body of garbage is PayloadTooLarge",
      sends="max_message_bytes + 1 bytes of 0xFF", requirements=["ERR-1", "TRN-6"])
def p1_size(ctx: CaseContext) -> None:
    body = b"\xff" * (int(ctx.limits["max_message_bytes"]) + 1)
    expect_error(ctx.default.send_frames([body], request={"raw_bytes": len(body)}), "PayloadTooLarge", "ERR-1")


@case("errors.no-side-effects", "failed requests change nothing",
      sends="snapshot (rev 1); conflicting snapshot; schema-invalid snapshot; unknown-member snapshot; resume",
      requirements=["ERR-3"])
def no_side_effects(ctx: CaseContext) -> None:
    s = ctx.new_session()
    snapshot(ctx, s, state={"preferences": {"v": 1}})
    before = resume(ctx, s)
    new = {"preferences": {"v": 2}}
    expect_error(ctx.call("session.snapshot", s.params(state=new, expected_revision=0)), "RevisionConflict", "ERR-3")
    expect_error(ctx.call("session.snapshot", s.params(state=new, expected_revision=-1)), "InvalidRequest", "ERR-3")
    expect_error(ctx.call("session.snapshot", {**s.params(state=new), "x": 1}), "InvalidRequest", "ERR-3")
    after = resume(ctx, s)
    expect_equal(before["state"], after["state"], "ERR-3", "state")
    expect_equal(1, validate(ctx, s)["revision"], "ERR-3", "revision")


@case("errors.registry-details", "each reachable error code carries the details the registry requires",
      sends="requests that trigger InvalidRequest, UnknownCommand, UnsupportedVersion, SessionNotFound, "
            "InvalidToken, SessionClosed, RevisionConflict, PayloadTooLarge", requirements=["ERR-2", "ENV-4"])
def registry_details(ctx: CaseContext) -> None:
    s, closed = ctx.new_session(), ctx.new_session()
    ok(ctx, "session.close", closed.params())
    big = b" " * (int(ctx.limits["max_message_bytes"]) + 1)
    seen = {
        "InvalidRequest": ctx.send([1]).reply,
        "UnknownCommand": ctx.call("no.such", {}).reply,
        "UnsupportedVersion": ctx.send({"version": "3.0"}).reply,
        "SessionNotFound": ctx.call("session.validate", {"session_id": UNKNOWN_SESSION_ID, "token": WRONG_TOKEN}).reply,
        "InvalidToken": ctx.call("session.validate", s.params(token=WRONG_TOKEN)).reply,
        "SessionClosed": ctx.call("session.validate", closed.params()).reply,
        "RevisionConflict": ctx.call("session.snapshot", s.params(expected_revision=5)).reply,
        "PayloadTooLarge": ctx.default.send_frames([big], request={"raw_bytes": len(big)}).reply,
    }
    for code, reply in seen.items():
        expect_equal(code, reply.get("error", {}).get("code"), "ERR-2", f"code for the {code} trigger")
        required = ctx.registry.error_variant(code).get("required", [])
        expect_true("details" not in required or "details" in reply["error"], "details present",
                    reply["error"], "ERR-2", f"{code} without the details the registry requires")
