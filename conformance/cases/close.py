"""Cases for spec 4.6 `session.close` (CLS). Per-command behaviour after close is in lifecycle.py."""

from __future__ import annotations

from stui_protocol_kit.conformance.case import case
from stui_protocol_kit.conformance.cases._helpers import ok
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import (
    expect_equal,
    expect_error,
    expect_success,
    expect_timestamp_not_after,
)


@case("close.success", "close answers closed: true and the session answers SessionClosed afterwards",
      sends="create, close, validate", requirements=["CLS-1", "CLS-2"])
def success(ctx: CaseContext) -> None:
    s = ctx.new_session()
    exchange = ctx.call("session.close", s.params())
    result = expect_success(exchange, "session.close", "CLS-1")
    expect_equal({"session_id": s.session_id, "closed": True}, {k: result[k] for k in ("session_id", "closed")},
                 "CLS-1", "result")
    error = expect_error(ctx.call("session.validate", s.params()), "SessionClosed", "CLS-2")
    expect_timestamp_not_after(error["details"]["closed_at"], exchange.reply["timestamp"], "CLS-2", "closed_at")


@case("close.twice", "a second close (new request id) answers SessionClosed",
      sends="create, close, close", requirements=["CLS-2"])
def twice(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ok(ctx, "session.close", s.params())
    expect_error(ctx.call("session.close", s.params()), "SessionClosed", "CLS-2")


@case("close.closed-at-stable", "closed_at is the time of the close in every later answer",
      sends="create, close, validate, resume", requirements=["CLS-2"])
def closed_at_stable(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ok(ctx, "session.close", s.params())
    first = expect_error(ctx.call("session.validate", s.params()), "SessionClosed", "CLS-2")
    second = expect_error(ctx.call("session.resume", s.params()), "SessionClosed", "CLS-2")
    expect_equal(first["details"]["closed_at"], second["details"]["closed_at"], "CLS-2", "closed_at")
