"""Cases for spec 4.4 `session.validate` (VAL)."""

from __future__ import annotations

from conformance.case import case
from conformance.cases._helpers import resume, snapshot, validate
from conformance.context import CaseContext
from conformance.verifiers import expect_equal, expect_success, expect_true


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
      sends="create, validate, validate", requirements=["VAL-2"])
def last_active(ctx: CaseContext) -> None:
    s = ctx.new_session()
    first = ctx.call("session.validate", s.params())
    result = expect_success(first, "session.validate", "VAL-2")
    second = validate(ctx, s, "VAL-2")
    stamp = first.reply["timestamp"]
    expect_true(result["last_active_at"] <= second["last_active_at"] <= stamp,
                f"between {result['last_active_at']} and {stamp}", second["last_active_at"], "VAL-2")


@case("validate.changes-nothing", "validate creates no revision and changes no state",
      sends="create, snapshot, resume, validate x3, resume", requirements=["VAL-3"])
def changes_nothing(ctx: CaseContext) -> None:
    s = ctx.new_session()
    snapshot(ctx, s, state={"inspector": {"x": 1}})
    before = resume(ctx, s)
    for _ in range(3):
        expect_equal(1, validate(ctx, s)["revision"], "VAL-3", "revision")
    expect_equal(before["state"], resume(ctx, s)["state"], "VAL-3", "state")
