"""Cases for spec 4.4 `session.validate` (VAL)."""

from __future__ import annotations

import time

from stui_protocol_kit.conformance.case import case
from stui_protocol_kit.conformance.cases._helpers import resume, snapshot, validate
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_error, expect_success, expect_true
from stui_protocol_kit.protocol.codec import parse_rfc3339


@case("validate.success", "validate answers valid: true with the current revision",
      sends="create, validate", requirements=["VAL-1", "VAL-2"])
def success(ctx: CaseContext) -> None:
    s = ctx.new_session()
    result = validate(ctx, s, "VAL-1")
    expect_equal(s.session_id, result["session_id"], "VAL-1", "session_id")
    expect_equal(0, result["revision"], "VAL-1", "revision")
    expect_equal(s.created["created_at"], result["last_active_at"], "VAL-2", "last_active_at of a fresh session")
    expect_true(result["attached_clients"] >= 1, ">= 1 (the caller)", result["attached_clients"], "VAL-1")


@case("validate.last-active-at", "last_active_at is the time of the previous successful request",
      sends="create, wait 0.25 s, validate, wait 0.25 s, validate", requirements=["VAL-2"])
def last_active(ctx: CaseContext) -> None:
    s = ctx.new_session()
    time.sleep(0.25)
    first = ctx.call("session.validate", s.params())
    expect_success(first, "session.validate", "VAL-2")
    time.sleep(0.25)
    second = validate(ctx, s, "VAL-2")
    # The previous activity is the first validate: its reply time, not created_at nor this request's time.
    gap = abs((parse_rfc3339(second["last_active_at"]) - parse_rfc3339(first.reply["timestamp"])).total_seconds())
    expect_true(gap <= 0.1, f"within 0.1 s of {first.reply['timestamp']}", second["last_active_at"], "VAL-2",
                f"last_active_at {second['last_active_at']} is {gap:.2f}s from the previous validate's reply "
                f"{first.reply['timestamp']}")


@case("validate.changes-nothing", "validate creates no revision and changes no state",
      sends="create, snapshot, resume, validate x3, resume", requirements=["VAL-3"])
def changes_nothing(ctx: CaseContext) -> None:
    s = ctx.new_session()
    snapshot(ctx, s, state={"inspector": {"x": 1}})
    before = resume(ctx, s)
    for _ in range(3):
        expect_equal(1, validate(ctx, s)["revision"], "VAL-3", "revision")
    expect_equal(before["state"], resume(ctx, s)["state"], "VAL-3", "state")


@case("validate.last-active-after-errors", "error replies do not change last_active_at",
      sends="create, validate, wait 0.25 s; RevisionConflict, EvaluationError, ObjectNotFound, InvalidToken;"
            " wait 0.25 s, validate",
      requirements=["VAL-2", "ERR-3"])
def last_active_after_errors(ctx: CaseContext) -> None:
    s = ctx.new_session()
    first = ctx.call("session.validate", s.params())
    expect_success(first, "session.validate", "VAL-2")
    time.sleep(0.25)
    expect_error(ctx.call("session.snapshot", s.params(expected_revision=7)), "RevisionConflict", "ERR-3")
    if "evaluate" in ctx.capabilities:
        expect_error(ctx.call("evaluate", s.params(code="1 +")), "EvaluationError", "ERR-3")
    if "inspect" in ctx.capabilities:
        expect_error(ctx.call("inspect", s.params(object_id="o999999")), "ObjectNotFound", "ERR-3")
    expect_error(ctx.call("session.validate", s.params(token="Z" * 43)), "InvalidToken", "ERR-3")
    time.sleep(0.25)
    second = validate(ctx, s, "VAL-2")
    gap = abs((parse_rfc3339(second["last_active_at"]) - parse_rfc3339(first.reply["timestamp"])).total_seconds())
    expect_true(gap <= 0.1, f"within 0.1 s of the last success ({first.reply['timestamp']})", second["last_active_at"],
                "VAL-2", f"last_active_at {second['last_active_at']} moved with error replies; the last successful"
                f" request was answered at {first.reply['timestamp']}")
