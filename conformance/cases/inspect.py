"""Cases for spec 4.8 `inspect` (INS): registration, lookup, errors. All need capability `inspect`."""

from __future__ import annotations

from stui_protocol_kit.conformance.case import case
from stui_protocol_kit.conformance.cases._helpers import ok, resume
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_error, expect_true

INS = ["inspect"]


@case("inspect.expression", "inspecting an expression registers the value in state.objects",
      sends="inspect {expression: '3 + 4'}, resume", requirements=["INS-1", "INS-2"], needs=INS)
def expression(ctx: CaseContext) -> None:
    s = ctx.new_session()
    result = ok(ctx, "inspect", s.params(expression="3 + 4"), "INS-1")
    expect_equal({"class": "SmallInteger", "print_string": "7"},
                 {k: result[k] for k in ("class", "print_string")}, "INS-1", "inspect result")
    entry = resume(ctx, s)["state"]["objects"].get(result["object_id"])
    expect_equal({"class": "SmallInteger", "print_string": "7"}, entry, "INS-2",
                 f"state.objects[{result['object_id']}]")


@case("inspect.new-object-ids", "each inspected expression gets an object_id not used before",
      sends="inspect three expressions", requirements=["INS-1"], needs=INS)
def new_ids(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ids = [ok(ctx, "inspect", s.params(expression=e), "INS-1")["object_id"] for e in ("1", "1", "'one'")]
    expect_true(len(set(ids)) == 3, "three distinct object ids", ids, "INS-1")


@case("inspect.by-object-id", "inspecting a registered object_id returns it without registering another",
      sends="inspect {expression}, inspect {object_id}, resume", requirements=["INS-3"], needs=INS)
def by_object_id(ctx: CaseContext) -> None:
    s = ctx.new_session()
    first = ok(ctx, "inspect", s.params(expression="'abc' , 'd'"))
    again = ok(ctx, "inspect", s.params(object_id=first["object_id"]), "INS-3")
    expect_equal(first, again, "INS-3", "inspect by object_id")
    expect_equal(1, len(resume(ctx, s)["state"]["objects"]), "INS-3", "number of registered objects")


@case("inspect.unknown-object", "an object_id never issued is ObjectNotFound",
      sends="inspect {object_id: 'no-such-object'}", requirements=["INS-4"], needs=INS)
def unknown_object(ctx: CaseContext) -> None:
    s = ctx.new_session()
    error = expect_error(ctx.call("inspect", s.params(object_id="no-such-object")), "ObjectNotFound", "INS-4")
    expect_equal("no-such-object", error["details"]["object_id"], "INS-4", "details.object_id")


@case("inspect.other-sessions-object", "an object_id of another session is ObjectNotFound",
      sends="inspect in session A, inspect A's object_id in session B", requirements=["INS-4", "CON-4"], needs=INS)
def other_session(ctx: CaseContext) -> None:
    a, b = ctx.new_session(), ctx.new_session()
    oid = ok(ctx, "inspect", a.params(expression="99"))["object_id"]
    expect_error(ctx.call("inspect", b.params(object_id=oid)), "ObjectNotFound", "INS-4")


@case("inspect.both-or-neither", "expression and object_id together, or neither, is a schema error",
      sends="inspect with both, inspect with neither", requirements=["INS-5"], needs=INS)
def both_or_neither(ctx: CaseContext) -> None:
    s = ctx.new_session()
    for params in (s.params(expression="1", object_id="x"), s.params()):
        expect_error(ctx.call("inspect", params), "InvalidRequest", "INS-5", reason="schema")


@case("inspect.evaluates-like-evaluate", "inspect's expression binds workspace variables like evaluate",
      sends="inspect {expression: 'z := 9'}, resume", requirements=["INS-1"], needs=INS)
def binds(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ok(ctx, "inspect", s.params(expression="z := 9"), "INS-1")
    variables = resume(ctx, s)["state"]["workspace"]["variables"]
    expect_equal({"class": "SmallInteger", "print_string": "9"}, variables.get("z"), "INS-1", "workspace z")


@case("inspect.evaluation-error", "an expression with a syntax error is EvaluationError",
      sends="inspect {expression: '1 +'}", requirements=["INS-1", "EVL-4"], needs=INS)
def evaluation_error(ctx: CaseContext) -> None:
    s = ctx.new_session()
    expect_error(ctx.call("inspect", s.params(expression="1 +")), "EvaluationError", "EVL-4")
    expect_equal({}, resume(ctx, s)["state"]["objects"], "INS-1", "objects after an error")


@case("inspect.by-object-id-is-the-registered-value", "inspect by object_id answers the value registered then, "
      "not the expression evaluated again",
      sends="evaluate 'x := 1', inspect {expression: 'x'}, evaluate 'x := 2', inspect {object_id}, resume",
      requirements=["INS-3", "INS-2"], needs=[*INS, "evaluate"])
def by_object_id_registered(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ok(ctx, "evaluate", s.params(code="x := 1"))
    first = ok(ctx, "inspect", s.params(expression="x"))
    ok(ctx, "evaluate", s.params(code="x := 2"))
    again = ok(ctx, "inspect", s.params(object_id=first["object_id"]), "INS-3")
    expect_equal(first, again, "INS-3", "inspect by object_id after the variable changed")
    objects = resume(ctx, s)["state"]["objects"]
    expect_equal({first["object_id"]: {"class": "SmallInteger", "print_string": "1"}}, objects, "INS-2",
                 "state.objects")
