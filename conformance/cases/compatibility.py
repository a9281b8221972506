"""Cases for spec 13, compatibility (CMP): unknown members, null, integers written as integers.

The checks that every reply has no null outside the allowed places (CMP-3) and no non-integer
number outside `inspector`/`preferences` (CMP-5) run on every reply of every case (see
`conformance/context.py`); `compatibility.reply-numbers-and-nulls` drives every command once so those
checks have a case of their own to report under.
"""

from __future__ import annotations

from stui_protocol_kit.conformance.case import case
from stui_protocol_kit.conformance.cases._helpers import ok
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import expect_alive, expect_error, expect_null_echo, expect_true


@case("compatibility.unknown-parameter", "an unknown parameter member is InvalidRequest schema",
      sends="validate with parameters {session_id, token, verbose: true}", requirements=["CMP-1"])
def unknown_parameter(ctx: CaseContext) -> None:
    s = ctx.new_session()
    expect_error(ctx.call("session.validate", {**s.params(), "verbose": True}), "InvalidRequest", "CMP-1",
                 reason="schema")


@case("compatibility.client-documents-are-free", "inspector and preferences may hold any members",
      sends="snapshot with inspector {anything: {deep: [null, 1.5]}}", requirements=["CMP-1", "SNP-6"])
def free_documents(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ok(ctx, "session.snapshot", s.params(state={"inspector": {"anything": {"deep": [None, 1.5]}}}), "CMP-1")


@case("compatibility.null-rejected", "null for a member is InvalidRequest schema, never 'absent'",
      sends="snapshot with expected_revision null, with state null; hello with parameters null",
      requirements=["CMP-4"])
def null_rejected(ctx: CaseContext) -> None:
    s = ctx.new_session()
    for params in (s.params(expected_revision=None), s.params(state=None), s.params(state={"preferences": None})):
        expect_error(ctx.call("session.snapshot", params), "InvalidRequest", "CMP-4", reason="schema")
    message = {"id": "null-params", "version": "1.0", "command": "hello", "parameters": None}
    expect_error(ctx.send(message), "InvalidRequest", "CMP-4", reason="schema")


@case("compatibility.integral-floats-rejected", "3.0 or 3e0 where an integer belongs is InvalidRequest schema",
      sends="snapshot with expected_revision written as 0.0 and as 0e0", requirements=["CMP-6"])
def floats_rejected(ctx: CaseContext) -> None:
    s = ctx.new_session()
    expect_error(ctx.call("session.snapshot", s.params(expected_revision=0.0)), "InvalidRequest", "CMP-6",
                 reason="schema")
    body = ('{"id":"exp","version":"1.0","command":"session.snapshot","parameters":{"session_id":"' + s.session_id
            + '","token":"' + s.token + '","expected_revision":0e0}}').encode()
    expect_error(ctx.default.send_frames([body], request={"expected_revision": "0e0"}), "InvalidRequest", "CMP-6",
                 reason="schema")


@case("compatibility.reply-numbers-and-nulls", "replies write integers as integers and carry no stray null",
      sends="every command once (evaluate/inspect when announced), with float-holding client documents",
      requirements=["CMP-3", "CMP-5"])
def numbers_and_nulls(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ok(ctx, "hello", {})
    ok(ctx, "session.snapshot", s.params(state={"preferences": {"size": 1.5, "none": None}}))
    ok(ctx, "session.validate", s.params())
    ok(ctx, "session.resume", s.params())
    if "evaluate" in ctx.capabilities:
        ok(ctx, "evaluate", s.params(code="n := 2"))
    if "inspect" in ctx.capabilities:
        ok(ctx, "inspect", s.params(expression="3"))
    ok(ctx, "session.resume", s.params())
    ok(ctx, "session.close", s.params())


@case("compatibility.numbers-beyond-binary64", "a number beyond the binary64 range is InvalidRequest json",
      sends="snapshot whose preferences hold 1e400, then one holding a 310-digit integer; then 1e308 and "
            "1.0 that must be kept as equal binary64 values",
      requirements=["CMP-8", "CMP-7", "SNP-6", "TRN-13"])
def numbers_beyond_binary64(ctx: CaseContext) -> None:
    s = ctx.new_session()
    for literal in ("1e400", "-1e400", "9" * 310):
        body = ('{"id":"big-number","version":"1.0","command":"session.snapshot","parameters":{"session_id":"'
                + s.session_id + '","token":"' + s.token + '","state":{"preferences":{"n":' + literal + "}}}}")
        exchange = ctx.default.send_frames([body.encode()], request={"preferences": {"n": literal[:12]}})
        expect_error(exchange, "InvalidRequest", "CMP-8", reason="json")
        expect_null_echo(exchange, "TRN-13")
    expect_alive(ctx, s, revision=0, requirement="CMP-8")
    ok(ctx, "session.snapshot", s.params(state={"preferences": {"edge": 1e308, "one": 1.0}}), "CMP-7")
    prefs = ok(ctx, "session.resume", s.params(), "SNP-6")["state"]["preferences"]
    expect_true(prefs.get("edge") == 1e308 and prefs.get("one") == 1, "{edge: 1e308, one: 1}", prefs, "SNP-6",
                "numbers inside preferences must come back equal as binary64 values")
