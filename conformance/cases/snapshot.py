"""Cases for spec 4.5 `session.snapshot` (SNP): revisions, client-owned parts, conflicts."""

from __future__ import annotations

from stui_protocol_kit.conformance.case import case
from stui_protocol_kit.conformance.cases._helpers import evaluate, resume, snapshot, validate
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import (
    expect_equal,
    expect_error,
    expect_success,
    expect_timestamp_not_after,
)


@case("snapshot.revisions-increment", "each snapshot adds exactly one to the revision",
      sends="create, snapshot x3", requirements=["SNP-1", "PER-7"])
def increments(ctx: CaseContext) -> None:
    s = ctx.new_session()
    for want in (1, 2, 3):
        exchange = ctx.call("session.snapshot", s.params())
        result = expect_success(exchange, "session.snapshot", "SNP-1")
        expect_equal(want, result["revision"], "SNP-1", "revision")
        expect_timestamp_not_after(result["saved_at"], exchange.reply["timestamp"], "SNP-1", "saved_at")


@case("snapshot.client-parts-replace-or-keep", "a given part replaces the stored one, an omitted part is kept",
      sends="snapshot {inspector A, preferences P}, snapshot {inspector B}, resume", requirements=["SNP-2"])
def replace_or_keep(ctx: CaseContext) -> None:
    s = ctx.new_session()
    snapshot(ctx, s, state={"inspector": {"a": 1}, "preferences": {"p": True}})
    snapshot(ctx, s, state={"inspector": {"b": 2}})
    state = resume(ctx, s)["state"]
    expect_equal({"b": 2}, state["inspector"], "SNP-2", "inspector (replaced)")
    expect_equal({"p": True}, state["preferences"], "SNP-2", "preferences (kept)")
    snapshot(ctx, s)
    state = resume(ctx, s)["state"]
    expect_equal({"b": 2}, state["inspector"], "SNP-2", "inspector after a snapshot without state")


@case("snapshot.rejects-server-parts", "state may not carry workspace, objects or unknown parts",
      sends="snapshot with state.workspace, state.objects, state.extra", requirements=["SNP-3", "CMP-1"])
def rejects_server_parts(ctx: CaseContext) -> None:
    s = ctx.new_session()
    for state in ({"workspace": {"variables": {}}}, {"objects": {}}, {"extra": {}}):
        expect_error(ctx.call("session.snapshot", s.params(state=state)), "InvalidRequest", "SNP-3", reason="schema")
    expect_equal(0, validate(ctx, s)["revision"], "SNP-3", "revision after rejected snapshots")


@case("snapshot.revision-conflict", "a wrong expected_revision is a RevisionConflict that consumes nothing",
      sends="snapshot (rev 1), snapshot expected_revision 0, snapshot expected_revision 1",
      requirements=["SNP-4", "ERR-3"])
def conflict(ctx: CaseContext) -> None:
    s = ctx.new_session()
    snapshot(ctx, s, state={"preferences": {"v": 1}})
    error = expect_error(ctx.call("session.snapshot", s.params(expected_revision=0, state={"preferences": {"v": 2}})),
                         "RevisionConflict", "SNP-4")
    expect_equal({"current_revision": 1, "expected_revision": 0},
                 {k: error["details"].get(k) for k in ("current_revision", "expected_revision")}, "SNP-4", "details")
    expect_equal({"v": 1}, resume(ctx, s)["state"]["preferences"], "SNP-4", "preferences after the conflict")
    result = snapshot(ctx, s, "SNP-4", expected_revision=1)
    expect_equal(2, result["revision"], "SNP-4", "revision after a conflict (no number consumed)")


@case("snapshot.expected-revision-match", "a matching expected_revision succeeds",
      sends="create, snapshot expected_revision 0, snapshot expected_revision 1", requirements=["SNP-4", "SNP-5"])
def expected_match(ctx: CaseContext) -> None:
    s = ctx.new_session()
    expect_equal(1, snapshot(ctx, s, "SNP-4", expected_revision=0)["revision"], "SNP-4", "revision")
    expect_equal(2, snapshot(ctx, s, "SNP-4", expected_revision=1)["revision"], "SNP-4", "revision")


@case("snapshot.last-writer-wins", "without expected_revision a snapshot never conflicts",
      sends="two connections snapshot the same session without expected_revision", requirements=["SNP-5"])
def last_writer(ctx: CaseContext) -> None:
    s = ctx.new_session()
    a, b = ctx.client(), ctx.client()
    snapshot(ctx, s, "SNP-5", client=a, state={"preferences": {"by": "a"}})
    snapshot(ctx, s, "SNP-5", client=b, state={"preferences": {"by": "b"}})
    expect_equal({"by": "b"}, resume(ctx, s)["state"]["preferences"], "SNP-5", "preferences")


@case("snapshot.client-json-roundtrip", "inspector and preferences come back equal as JSON values",
      sends="snapshot with floats, exponents, null, nesting, unicode, big integers; resume",
      requirements=["SNP-6", "CMP-7"])
def roundtrip(ctx: CaseContext) -> None:
    s = ctx.new_session()
    inspector = {"ratio": 0.5, "exp": 1.5e10, "none": None, "list": [1, [2, {"x": False}]], "text": "é😀\"\\",
                 "big": 9007199254740993, "neg": -3, "empty": {}}
    preferences = {"font_size": 12.0, "flags": [True, None]}
    snapshot(ctx, s, state={"inspector": inspector, "preferences": preferences})
    state = resume(ctx, s, "SNP-6")["state"]
    expect_equal(inspector, state["inspector"], "SNP-6", "inspector")
    expect_equal(preferences, state["preferences"], "SNP-6", "preferences")


@case("snapshot.workspace-from-live-session", "the snapshot stores the live workspace",
      sends="evaluate 'w := 5', snapshot, resume", requirements=["SNP-2", "EVL-3"], needs=["evaluate"])
def workspace_from_live(ctx: CaseContext) -> None:
    s = ctx.new_session()
    evaluate(ctx, s, "w := 5")
    snapshot(ctx, s)
    variables = resume(ctx, s)["state"]["workspace"]["variables"]
    expect_equal({"class": "SmallInteger", "print_string": "5"}, variables.get("w"), "SNP-2", "workspace w")


@case("snapshot.empty-client-parts", "an empty inspector or preferences object replaces the stored one",
      sends="snapshot {inspector A, preferences P}, snapshot {preferences: {}}, resume, snapshot {inspector: {}},"
            " resume", requirements=["SNP-2", "SNP-6"])
def empty_client_parts(ctx: CaseContext) -> None:
    s = ctx.new_session()
    snapshot(ctx, s, state={"inspector": {"a": 1}, "preferences": {"p": True}})
    snapshot(ctx, s, state={"preferences": {}})
    state = resume(ctx, s)["state"]
    expect_equal({}, state["preferences"], "SNP-2", "preferences after a snapshot with preferences {}")
    expect_equal({"a": 1}, state["inspector"], "SNP-2", "inspector (kept)")
    snapshot(ctx, s, state={"inspector": {}})
    state = resume(ctx, s)["state"]
    expect_equal({}, state["inspector"], "SNP-2", "inspector after a snapshot with inspector {}")
