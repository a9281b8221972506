"""Cases for spec 4.7 `evaluate` (EVL): the conformance subset, bindings, syntax errors.

All cases need the `evaluate` capability and use only the subset of spec 4.7.1.
"""

from __future__ import annotations

from stui_protocol_kit.conformance.case import CaseFailed, case
from stui_protocol_kit.conformance.cases._helpers import evaluate, resume
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_error, expect_true
from stui_protocol_kit.protocol.problems import quote

EVAL = ["evaluate"]


def _expect_values(ctx: CaseContext, table: list[tuple[str, str, str]], requirement: str) -> None:
    s = ctx.new_session()
    for code, cls, printed in table:
        result = evaluate(ctx, s, code, requirement)
        got = (result["class"], result["print_string"])
        if got != (cls, printed):
            raise CaseFailed(f"{cls} {printed}", f"{got[0]} {got[1]}", requirement,
                             message=f"{quote(code)}: expected {cls} {printed}, got {got[0]} {got[1]}")


@case("evaluate.integers", "integer literals and arithmetic give Pharo's results",
      sends="'3 + 4', '0', '-5 - 2', '3 - -2', '6 * 7', '10 - 20'", requirements=["EVL-1"], needs=EVAL)
def integers(ctx: CaseContext) -> None:
    _expect_values(ctx, [("3 + 4", "SmallInteger", "7"), ("0", "SmallInteger", "0"),
                         ("-5 - 2", "SmallInteger", "-7"), ("3 - -2", "SmallInteger", "5"),
                         ("6 * 7", "SmallInteger", "42"), ("10 - 20", "SmallInteger", "-10")], "EVL-1")


@case("evaluate.strings", "string literals, quote doubling and concatenation",
      sends="\"'hello'\", \"'it''s' , ' ok'\", \"''\"", requirements=["EVL-1"], needs=EVAL)
def strings(ctx: CaseContext) -> None:
    _expect_values(ctx, [("'hello'", "ByteString", "'hello'"), ("'it''s' , ' ok'", "ByteString", "'it''s ok'"),
                         ("''", "ByteString", "''"), ("'a' , 'b' , 'c'", "ByteString", "'abc'"),
                         # a double quote inside a string is a character, not the start of a comment
                         ("'say \"hi\" now'", "ByteString", "'say \"hi\" now'"),
                         # Latin-1 characters keep a ByteString; one above U+00FF makes a WideString
                         ("'\u00e9'", "ByteString", "'\u00e9'"), ("'\u0101'", "WideString", "'\u0101'"),
                         ("'a' , '\u0101'", "WideString", "'a\u0101'")], "EVL-1")


@case("evaluate.no-precedence", "binary operators go left to right; parentheses group",
      sends="'2 + 3 * 4', '2 + (3 * 4)', '(1 + 2) * (3 + 4)'", requirements=["EVL-2"], needs=EVAL)
def no_precedence(ctx: CaseContext) -> None:
    _expect_values(ctx, [("2 + 3 * 4", "SmallInteger", "20"), ("2 + (3 * 4)", "SmallInteger", "14"),
                         ("(1 + 2) * (3 + 4)", "SmallInteger", "21"), ("10 - 2 - 3", "SmallInteger", "5")], "EVL-2")


@case("evaluate.large-integers", "integer arithmetic is exact beyond 64 bits",
      sends="2^60 - 1 + 1, -2^60 - 1, a 1000-digit product", requirements=["EVL-1", "EVL-2"], needs=EVAL)
def large(ctx: CaseContext) -> None:
    big = "9" * 500
    _expect_values(ctx, [
        ("1152921504606846975 + 1", "LargePositiveInteger", "1152921504606846976"),
        ("1152921504606846975", "SmallInteger", "1152921504606846975"),
        ("-1152921504606846976", "SmallInteger", "-1152921504606846976"),
        ("-1152921504606846976 - 1", "LargeNegativeInteger", "-1152921504606846977"),
        (f"{big} * {big}", "LargePositiveInteger", str(int(big) * int(big))),
    ], "EVL-2")


@case("evaluate.statements-and-assignment", "statements, chained assignment and variable reads",
      sends="'x := 6 * 7. x', 'a := b := 3. a + b', 'x + 1.'", requirements=["EVL-1", "EVL-3"], needs=EVAL)
def statements(ctx: CaseContext) -> None:
    _expect_values(ctx, [("x := 6 * 7. x", "SmallInteger", "42"), ("a := b := 3. a + b", "SmallInteger", "6"),
                         ("x + 1.", "SmallInteger", "43"), ("s := 'q'. s , s", "ByteString", "'qq'")], "EVL-3")


@case("evaluate.comments-and-whitespace", "comments and any whitespace between tokens are ignored",
      sends="'\"c\" 1 +\\t\\n2 \"d\"', string with a line break", requirements=["EVL-1"], needs=EVAL)
def comments(ctx: CaseContext) -> None:
    _expect_values(ctx, [('"comment" 1 +\t\n2 "end"', "SmallInteger", "3"),
                         ("'line\nbreak'", "ByteString", "'line\nbreak'")], "EVL-1")


@case("evaluate.bindings-in-state", "assignments appear in resume's workspace with class and print string",
      sends="evaluate \"n := 7. t := 'x'\", resume", requirements=["EVL-3"], needs=EVAL)
def bindings_in_state(ctx: CaseContext) -> None:
    s = ctx.new_session()
    evaluate(ctx, s, "n := 7. t := 'x'")
    variables = resume(ctx, s)["state"]["workspace"]["variables"]
    expect_equal({"n": {"class": "SmallInteger", "print_string": "7"},
                  "t": {"class": "ByteString", "print_string": "'x'"}},
                 {k: variables.get(k) for k in ("n", "t")}, "EVL-3", "workspace variables")


@case("evaluate.bindings-across-connections", "a binding made on one connection is read on another",
      sends="evaluate 'v := 11' on connection A, 'v * 2' on connection B", requirements=["EVL-3", "CON-2"], needs=EVAL)
def across_connections(ctx: CaseContext) -> None:
    s = ctx.new_session()
    evaluate(ctx, s, "v := 11", client=ctx.client())
    expect_equal("22", evaluate(ctx, s, "v * 2", client=ctx.client())["print_string"], "EVL-3", "v * 2")


@case("evaluate.syntax-errors", "syntax errors are EvaluationError with reason and position",
      sends="'1 +', '(1', \"'abc\", 'x :=', '1 + + 2'", requirements=["EVL-4"], needs=EVAL)
def syntax_errors(ctx: CaseContext) -> None:
    s = ctx.new_session()
    for code in ("1 +", "(1", "'abc", "x :=", "1 + + 2"):
        error = expect_error(ctx.call("evaluate", s.params(code=code)), "EvaluationError", "EVL-4")
        position = error["details"].get("position")
        if not isinstance(position, int) or not 1 <= position <= len(code) + 1:
            raise CaseFailed(f"details.position in 1..{len(code) + 1}", position, "EVL-4",
                             message=f"{quote(code)}: position {quote(position)} outside 1..{len(code) + 1}")


@case("evaluate.error-changes-nothing", "a syntax error leaves the workspace unchanged",
      sends="evaluate 'k := 1', then 'k := 2. j := (1', then resume", requirements=["EVL-5", "ERR-3"], needs=EVAL)
def error_changes_nothing(ctx: CaseContext) -> None:
    s = ctx.new_session()
    evaluate(ctx, s, "k := 1")
    expect_error(ctx.call("evaluate", s.params(code="k := 2. j := (1")), "EvaluationError", "EVL-5")
    variables = resume(ctx, s)["state"]["workspace"]["variables"]
    expect_equal({"k": {"class": "SmallInteger", "print_string": "1"}}, variables, "EVL-5", "workspace")


@case("evaluate.error-position", "the error position points at the failing token", level="SHOULD",
      sends="'1 +' (end of input), '1 + )' (the ')'), an unterminated string and comment (their opening quote)",
      requirements=["EVL-6"], needs=EVAL)
def error_position(ctx: CaseContext) -> None:
    s = ctx.new_session()
    for code, want in (("1 +", 4), ("1 + )", 5), ("'abc", 1), ('1 + "x', 5)):
        error = expect_error(ctx.call("evaluate", s.params(code=code)), "EvaluationError", "EVL-6")
        expect_true(error["details"].get("position") == want, f"position {want}", error["details"].get("position"),
                    "EVL-6", f"{quote(code)}: expected position {want}, got {error['details'].get('position')}")
