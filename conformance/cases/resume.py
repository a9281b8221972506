"""Cases for spec 4.3 `session.resume` (RES). Resume after a restart is in persistence.py."""

from __future__ import annotations

import time

from stui_protocol_kit.conformance.case import case
from stui_protocol_kit.conformance.cases._helpers import evaluate, resume, snapshot, validate
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_success, expect_true
from stui_protocol_kit.protocol.codec import parse_rfc3339


@case("resume.live-state", "resume of a held session returns its live state",
      sends="create, snapshot {inspector, preferences}, resume", requirements=["RES-1", "RES-2"])
def live_state(ctx: CaseContext) -> None:
    s = ctx.new_session()
    snapshot(ctx, s, state={"inspector": {"pane": "left"}, "preferences": {"theme": "dark"}})
    result = resume(ctx, s, "RES-1")
    expect_equal("live", result["source"], "RES-2", "source")
    expect_equal(1, result["revision"], "RES-1", "revision")
    expect_equal({"pane": "left"}, result["state"]["inspector"], "RES-1", "state.inspector")
    expect_equal({"theme": "dark"}, result["state"]["preferences"], "RES-1", "state.preferences")


@case("resume.live-includes-evaluations", "live state includes evaluations made since the last snapshot",
      sends="create, evaluate 'a := 1', snapshot, evaluate 'b := 2', resume", requirements=["RES-2", "EVL-3"],
      needs=["evaluate"])
def live_evaluations(ctx: CaseContext) -> None:
    s = ctx.new_session()
    evaluate(ctx, s, "a := 1")
    snapshot(ctx, s)
    evaluate(ctx, s, "b := 2")
    result = resume(ctx, s, "RES-2")
    variables = result["state"]["workspace"]["variables"]
    expect_equal({"class": "SmallInteger", "print_string": "2"}, variables.get("b"), "RES-2", "workspace b")
    expect_equal({"class": "SmallInteger", "print_string": "1"}, variables.get("a"), "RES-2", "workspace a")
    expect_equal(1, result["revision"], "RES-2", "revision (evaluate makes no revision)")


@case("resume.changes-nothing", "resume creates no revision and changes no state",
      sends="create, snapshot, resume x2, validate", requirements=["RES-4"])
def changes_nothing(ctx: CaseContext) -> None:
    s = ctx.new_session()
    snapshot(ctx, s, state={"preferences": {"n": 1}})
    first, second = resume(ctx, s), resume(ctx, s)
    expect_equal(first["state"], second["state"], "RES-4", "state after a second resume")
    expect_equal(1, validate(ctx, s)["revision"], "RES-4", "revision")


@case("resume.expires-at-refreshed", "resume reports expires_at as updated by the resume",
      sends="create, wait 0.3 s, resume", requirements=["RES-1", "EXP-1"])
def expires_refreshed(ctx: CaseContext) -> None:
    s = ctx.new_session()
    time.sleep(0.3)
    exchange = ctx.call("session.resume", s.params())
    result = expect_success(exchange, "session.resume", "RES-1")
    idle, absolute = float(ctx.limits["idle_timeout_s"]), float(ctx.limits["absolute_timeout_s"])
    stamp = parse_rfc3339(exchange.reply["timestamp"]).timestamp()
    want = min(stamp + idle, parse_rfc3339(s.created["created_at"]).timestamp() + absolute)
    got = parse_rfc3339(result["expires_at"]).timestamp()
    # expires_at is computed after the resume's own activity (EXP-1): later than create's by the wait.
    expect_true(abs(got - want) <= 0.1, f"about {want:.3f} (the resume's time + idle_timeout_s)",
                result["expires_at"], "EXP-1", "resume's expires_at was not refreshed by the resume")
