"""Cases for spec 4.1 `hello` (HEL) and the limits it announces."""

from __future__ import annotations

import time

from stui_protocol_kit.conformance.case import case
from stui_protocol_kit.conformance.cases._helpers import ok, validate
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_error, expect_true
from stui_protocol_kit.protocol.codec import parse_rfc3339


@case("hello.success", "hello answers without a session",
      sends="hello {} on a fresh connection", requirements=["HEL-1"])
def hello_success(ctx: CaseContext) -> None:
    result = ok(ctx, "hello", {}, "HEL-1")
    expect_true("1.0" in result["protocol_versions"], '"1.0" in protocol_versions', result["protocol_versions"],
                "HEL-1")


@case("hello.rejects-parameters", "hello with a parameter is a schema error",
      sends='hello {"verbose": true}', requirements=["ENV-2", "HEL-1"])
def hello_rejects_parameters(ctx: CaseContext) -> None:
    expect_error(ctx.call("hello", {"verbose": True}), "InvalidRequest", "ENV-2", reason="schema")


@case("hello.same-on-every-connection", "hello's reply does not depend on the connection",
      sends="hello on two connections (DEALER and REQ)", requirements=["HEL-2"])
def hello_same(ctx: CaseContext) -> None:
    first = ok(ctx, "hello", {}, "HEL-2", ctx.client("dealer"))
    second = ok(ctx, "hello", {}, "HEL-2", ctx.client("req"))
    expect_equal(first, second, "HEL-2", "hello result on another connection")


@case("hello.touches-no-session", "hello does not change or refresh a session",
      sends="session.create, session.validate, hello x3, session.validate", requirements=["HEL-2", "EXP-2"])
def hello_touches_nothing(ctx: CaseContext) -> None:
    s = ctx.new_session()
    exchange = ctx.call("session.validate", s.params())
    first = exchange.reply["result"] if exchange.reply["status"] == "success" else validate(ctx, s)
    time.sleep(0.2)  # so that a hello counted as activity would move last_active_at measurably
    for _ in range(3):
        ok(ctx, "hello", {})
    second = validate(ctx, s)
    # last_active_at of the second validate is the first validate's time: hello was not activity.
    gap = (parse_rfc3339(second["last_active_at"]) - parse_rfc3339(exchange.reply["timestamp"])).total_seconds()
    expect_true(abs(gap) <= 0.1, f"last_active_at at the first validate ({exchange.reply['timestamp']})",
                second["last_active_at"], "HEL-2", "last_active_at moved by hello")
    expect_equal(first["revision"], second["revision"], "HEL-2", "revision")


@case("hello.server-identity", "hello names the implementation", level="SHOULD",
      sends="hello {}", requirements=["HEL-3"])
def hello_identity(ctx: CaseContext) -> None:
    server = ok(ctx, "hello", {})["server"]
    expect_true(server["name"].strip() != "" and server["version"].strip() != "", "non-blank name and version",
                server, "HEL-3")
