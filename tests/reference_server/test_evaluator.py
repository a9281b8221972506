"""Behaviour of the reference server's evaluator for the evaluate conformance subset."""

from __future__ import annotations

import functools
import operator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stui_protocol_kit.reference_server.evaluator import (
    MAX_EVALUATION_OUTPUT,
    MAX_INTEGER_DIGITS,
    MAX_NESTING_DEPTH,
    MAX_STRING_LENGTH,
    EvaluationError,
    Value,
    evaluate,
)


def result_of(code: str, **variables: int | str) -> Value:
    value, _ = evaluate(code, {name: Value.of(v) for name, v in variables.items()})
    return value


def error_of(code: str, **variables: int | str) -> EvaluationError:
    with pytest.raises(EvaluationError) as caught:
        evaluate(code, {name: Value.of(v) for name, v in variables.items()})
    return caught.value


# --- statements and assignment -----------------------------------------------------------------


def test_value_of_last_statement_is_returned() -> None:
    assert result_of("1. 2. 3").python_value == 3


def test_trailing_period_is_allowed() -> None:
    assert result_of("1. 2.").python_value == 2


def test_assignment_binds_and_answers_the_value() -> None:
    value, assignments = evaluate("x := 42", {})
    assert value == Value("SmallInteger", 42)
    assert assignments == {"x": Value("SmallInteger", 42)}


def test_assigned_variable_is_visible_to_later_statements() -> None:
    assert result_of("x := 3. y := x + 1. y * 2").python_value == 8


def test_chained_assignment_binds_every_name_right_to_left() -> None:
    value, assignments = evaluate("a := b := 3", {})
    assert value.python_value == 3
    assert list(assignments) == ["b", "a"]
    assert all(v.python_value == 3 for v in assignments.values())


def test_assignments_are_returned_in_order_with_last_value() -> None:
    _, assignments = evaluate("a := 1. b := 2. a := a + 10", {})
    assert list(assignments) == ["a", "b"]
    assert assignments["a"].python_value == 11


def test_assignment_inside_parentheses_is_allowed() -> None:
    value, assignments = evaluate("(a := 3) + 1", {})
    assert value.python_value == 4
    assert assignments == {"a": Value.of(3)}


def test_workspace_variables_are_read() -> None:
    assert result_of("x + y", x=40, y=2).python_value == 42


def test_assignment_shadows_workspace_variable_without_mutating_it() -> None:
    variables = {"x": Value.of(1)}
    value, assignments = evaluate("x := x + 1. x", variables)
    assert value.python_value == 2
    assert assignments == {"x": Value.of(2)}
    assert variables == {"x": Value.of(1)}


def test_failed_statement_returns_no_assignments() -> None:
    variables = {"x": Value.of(1)}
    with pytest.raises(EvaluationError):
        evaluate("x := 5. y := 6. z", variables)
    assert variables == {"x": Value.of(1)}


def test_identifiers_may_contain_digits_and_underscores() -> None:
    assert result_of("a_1 := 2. a_1 + B2", B2=3).python_value == 5


# --- literals ------------------------------------------------------------------------------------


def test_integer_literal_is_small_integer() -> None:
    assert result_of("42") == Value("SmallInteger", 42)
    assert result_of("42").print_string == "42"


def test_negative_literal_is_read_when_minus_touches_a_digit() -> None:
    assert result_of("-5").python_value == -5
    assert result_of("x := -5. x").print_string == "-5"


def test_negative_literal_after_binary_operator() -> None:
    assert result_of("3 - -4").python_value == 7
    assert result_of("3 * -4").python_value == -12
    assert result_of("3--4").python_value == 7
    assert result_of("3+-4").python_value == -1


def test_minus_after_an_operand_is_a_binary_message() -> None:
    assert result_of("3 -4").python_value == -1
    assert result_of("3-4").python_value == -1
    assert result_of("x-1", x=10).python_value == 9


def test_detached_minus_is_not_a_literal() -> None:
    error = error_of("- 5")
    assert error.position == 1
    assert "expected an expression" in error.reason


def test_small_integer_range_follows_64_bit_pharo() -> None:
    assert result_of("1152921504606846975").class_name == "SmallInteger"  # 2**60 - 1
    assert result_of("1152921504606846976").class_name == "LargePositiveInteger"  # 2**60
    assert result_of("-1152921504606846976").class_name == "SmallInteger"  # -2**60
    assert result_of("-1152921504606846977").class_name == "LargeNegativeInteger"


def test_arithmetic_overflowing_small_integer_becomes_large_integer() -> None:
    value = result_of("1152921504606846975 + 1")
    assert value.class_name == "LargePositiveInteger"
    assert value.print_string == str(2**60)
    assert result_of("0 - 1152921504606846976 - 1").class_name == "LargeNegativeInteger"


def test_string_literal_is_byte_string_printed_with_quotes() -> None:
    value = result_of("'hello'")
    assert value == Value("ByteString", "hello")
    assert value.print_string == "'hello'"


def test_doubled_quote_in_string_literal_is_one_quote() -> None:
    value = result_of("'it''s'")
    assert value.python_value == "it's"
    assert value.print_string == "'it''s'"


def test_empty_string_literal() -> None:
    assert result_of("''").print_string == "''"


def test_latin1_string_is_byte_string_and_wider_is_wide_string() -> None:
    assert result_of("'caf\u00e9 \u00ff'").class_name == "ByteString"
    assert result_of("'\u20ac'").class_name == "WideString"
    assert result_of("'a' , '\U0001f600'").class_name == "WideString"


def test_string_literal_may_span_lines_and_hold_periods() -> None:
    assert result_of("'a.\nb'").python_value == "a.\nb"


# --- binary messages ---------------------------------------------------------------------------


def test_integer_addition_subtraction_multiplication() -> None:
    assert result_of("2 + 3").python_value == 5
    assert result_of("2 - 3").python_value == -1
    assert result_of("2 * 3").python_value == 6


def test_binary_messages_evaluate_left_to_right() -> None:
    assert result_of("2 + 3 * 4").python_value == 20
    assert result_of("10 - 2 - 3").python_value == 5
    assert result_of("2 * 3 + 4 * 5").python_value == 50


def test_parentheses_group_first() -> None:
    assert result_of("2 + (3 * 4)").python_value == 14
    assert result_of("((7))").python_value == 7


def test_comma_concatenates_strings() -> None:
    assert result_of("'foo' , 'bar' , 'baz'").python_value == "foobarbaz"
    assert result_of("s , '!'", s="hi").print_string == "'hi!'"


def test_long_binary_chain_does_not_recurse() -> None:
    assert result_of(" + ".join(["1"] * 20_000)).python_value == 20_000


def test_whitespace_and_comments_are_skipped() -> None:
    assert result_of('\t"lead" 1\r\n+ "mid" 2 "trail".\f"after"').python_value == 3


# --- errors and their positions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "position", "fragment"),
    [
        ("3 + 'a'", 3, "expects an integer argument, got ByteString"),
        ("'a' , 3", 5, "expects a string argument, got SmallInteger"),
        ("'a' - 'b'", 5, "ByteString does not understand #-"),
        ("3 , 4", 3, "SmallInteger does not understand #,"),
        ("'a' * 2", 5, "ByteString does not understand #*"),
    ],
)
def test_type_errors_are_reported_at_the_operator(code: str, position: int, fragment: str) -> None:
    error = error_of(code)
    assert error.position == position
    assert fragment in error.reason


def test_unbound_variable_is_reported_at_its_name() -> None:
    error = error_of("1. 2 + foo")
    assert error.position == 8
    assert error.reason == "undefined variable 'foo'"


def test_variable_is_unbound_before_its_assignment_runs() -> None:
    assert error_of("x := x + 1").position == 6


@pytest.mark.parametrize(
    ("code", "position", "fragment"),
    [
        ("3 factorial", 3, "unary message 'factorial'"),
        ("3 max: 4", 3, "keyword message 'max:'"),
        ("#foo", 1, "symbols"),
        ("x := $c", 6, "character literals"),
        ("1.5", 1, "float literals"),
        ("16r1F", 1, "decimal integer literals"),
        ("1e3", 1, "decimal integer literals"),
        ("[ 1 ]", 1, "blocks"),
        ("3 ; + 4", 3, "cascades"),
        ("^ 3", 1, "return statements"),
        ("{ 1 }", 1, "brace arrays"),
        ("| a | a := 1", 1, "temporary variable declarations"),
        ("6 / 3", 3, "binary message '/'"),
        ("1 -> 2", 3, "binary message '->'"),
        ("nil", 1, "pseudo-variable 'nil'"),
        ("self", 1, "pseudo-variable 'self'"),
    ],
)
def test_constructs_beyond_the_subset_are_errors(code: str, position: int, fragment: str) -> None:
    error = error_of(code)
    assert error.position == position
    assert fragment in error.reason


@pytest.mark.parametrize(
    ("code", "position", "fragment"),
    [
        ("", 1, "expected a statement, found end of input"),
        ("  ", 3, "expected a statement, found end of input"),
        ('"only a comment"', 17, "expected a statement"),
        (".", 1, "empty statements"),
        ("1..2", 3, "empty statements"),
        ("1. . 2", 4, "empty statements"),
        ("3 4", 3, "expected '.' or end of input, found integer '4'"),
        ("(1 + 2", 7, "expected ')' to close the '(' at position 1"),
        ("1 + 2)", 6, "unmatched ')'"),
        ("()", 2, "expected an expression"),
        ("1 +", 4, "expected an expression"),
        ("1 + * 2", 5, "expected an expression"),
        ("'abc", 1, "unterminated string literal"),
        ('1 "abc', 3, "unterminated comment"),
        ("1 + 2 :", 7, "unexpected character ':'"),
        ("a := 1 ` 2", 8, "unexpected character '`'"),
        ("1 +\u00a02", 4, "unexpected character U+00A0"),
        ("3 + a := 4", 7, "assignment to 'a' is only allowed"),
        ("_x := 1", 1, "unexpected character '_'"),
        ("nil := 1", 1, "cannot assign to pseudo-variable 'nil'"),
        ("1 := 2", 3, "':=' must follow a variable name"),
    ],
)
def test_syntax_errors_report_where_they_were_detected(code: str, position: int, fragment: str) -> None:
    error = error_of(code)
    assert error.position == position
    assert fragment in error.reason


def test_errors_are_reported_in_source_order() -> None:
    assert error_of("3 factorial $a").position == 3


def test_syntax_error_anywhere_wins_over_earlier_runtime_error() -> None:
    error = error_of("3 + 'a'. 4 factorial")
    assert "unary message" in error.reason


def test_positions_count_characters_not_bytes() -> None:
    assert error_of("'\u20ac\u20ac' + 1").position == 6


def test_evaluation_error_exposes_reason_and_position() -> None:
    error = EvaluationError("boom", 7)
    assert (error.reason, error.position) == ("boom", 7)
    assert str(error) == "boom (at position 7)"


# --- resource limits ---------------------------------------------------------------------------


def test_nesting_up_to_the_limit_is_evaluated() -> None:
    code = "(" * MAX_NESTING_DEPTH + "1" + ")" * MAX_NESTING_DEPTH
    assert result_of(code).python_value == 1


@pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH + 1, 100, 100_000])
def test_deep_nesting_is_an_evaluation_error_not_a_recursion_error(depth: int) -> None:
    error = error_of("(" * depth + "1" + ")" * depth)
    assert error.position == MAX_NESTING_DEPTH + 1
    assert "nested deeper than the limit" in error.reason


def test_long_assignment_chain_does_not_recurse() -> None:
    code = " ".join(f"v{i} :=" for i in range(5_000)) + " 1"
    _, assignments = evaluate(code, {})
    assert len(assignments) == 5_000


def test_integer_result_over_the_digit_limit_is_an_error() -> None:
    # 10**5000 squared has 10_001 digits.
    big = "1" + "0" * 5000
    error = error_of(f"x := {big}. x * x")
    assert error.position == len(big) + 10
    assert f"limit of {MAX_INTEGER_DIGITS} digits" in error.reason


def test_integer_at_the_digit_limit_is_allowed_and_printed() -> None:
    digits = "9" * MAX_INTEGER_DIGITS
    value = result_of(digits)
    assert value.class_name == "LargePositiveInteger"
    assert value.print_string == digits
    assert result_of("0 - " + digits).print_string == "-" + digits


def test_integer_literal_over_the_digit_limit_is_an_error() -> None:
    error = error_of("1 + " + "1" * (MAX_INTEGER_DIGITS + 1))
    assert error.position == 5
    assert f"limit of {MAX_INTEGER_DIGITS} digits" in error.reason


def test_repeated_multiplication_cannot_grow_without_bound() -> None:
    code = "x := 99999999999. " + "x := x * x. " * 20 + "x"
    error = error_of(code)
    assert f"limit of {MAX_INTEGER_DIGITS} digits" in error.reason


def test_string_result_over_the_length_limit_is_an_error() -> None:
    code = "s := 'xxxxxxxxxxxxxxxx'. " + "s := s , s. " * 16 + "s"  # 2**20 > 1_000_000
    error = error_of(code)
    assert f"limit of {MAX_STRING_LENGTH} characters" in error.reason
    assert error.position == len(code) - len("s , s. s") + 3


def test_string_at_the_length_limit_is_allowed() -> None:
    value = result_of("s , 'y'", s="x" * (MAX_STRING_LENGTH - 1))
    assert len(value.python_value) == MAX_STRING_LENGTH


def test_total_output_of_one_evaluation_is_bounded() -> None:
    half = "x" * (MAX_STRING_LENGTH // 2)
    statements = [f"v{i} := s , s" for i in range(MAX_EVALUATION_OUTPUT // MAX_STRING_LENGTH + 1)]
    error = error_of(". ".join(statements), s=half)
    assert f"limit of {MAX_EVALUATION_OUTPUT} characters" in error.reason


def test_overlong_identifier_is_an_error() -> None:
    error = error_of("a" * 257 + " := 1")
    assert error.position == 1
    assert "identifier exceeds the limit" in error.reason


# --- Value ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "python_value",
    [
        *(0, 42, -7, 2**60 - 1, 2**60, -(2**60) - 1),
        pytest.param(10**9999, id="10**9999"),  # the default id would str() it, past CPython's 4300 digits
        *("", "it's", "''", "caf\u00e9", "\u20ac", "a\nb"),
    ],
)
def test_binding_round_trips(python_value: int | str) -> None:
    value = Value.of(python_value)
    binding = value.to_binding()
    assert binding == {"class": value.class_name, "print_string": value.print_string}
    assert Value.from_binding(binding) == value


def test_evaluated_value_binding_can_be_read_back_by_a_later_evaluation() -> None:
    _, assignments = evaluate("s := 'it''s'. n := 2 * 3", {})
    restored = {name: Value.from_binding(v.to_binding()) for name, v in assignments.items()}
    assert result_of_with(restored, "s , ' ' , s").python_value == "it's it's"
    assert result_of_with(restored, "n * n").python_value == 36


def result_of_with(variables: dict[str, Value], code: str) -> Value:
    return evaluate(code, variables)[0]


def test_from_binding_ignores_unknown_members() -> None:
    assert Value.from_binding({"class": "SmallInteger", "print_string": "3", "extra": 1}) == Value.of(3)


@pytest.mark.parametrize(
    "binding",
    [
        None,
        [],
        {},
        {"class": "SmallInteger"},
        {"class": "SmallInteger", "print_string": 3},
        {"class": "SmallInteger", "print_string": "03"},
        {"class": "SmallInteger", "print_string": "-0"},
        {"class": "SmallInteger", "print_string": "+3"},
        {"class": "SmallInteger", "print_string": " 3"},
        {"class": "SmallInteger", "print_string": "1_000"},
        {"class": "SmallInteger", "print_string": "\u0663"},  # Arabic-Indic digit three
        {"class": "SmallInteger", "print_string": str(2**60)},
        {"class": "LargePositiveInteger", "print_string": "5"},
        {"class": "LargeNegativeInteger", "print_string": str(2**61)},
        {"class": "LargePositiveInteger", "print_string": "9" * (MAX_INTEGER_DIGITS + 1)},
        {"class": "ByteString", "print_string": "abc"},
        {"class": "ByteString", "print_string": "'it's'"},
        {"class": "ByteString", "print_string": "'"},
        {"class": "ByteString", "print_string": "'\u20ac'"},
        {"class": "WideString", "print_string": "'abc'"},
        {"class": "Float", "print_string": "1.5"},
        {"class": "ByteSymbol", "print_string": "#foo"},
    ],
)
def test_from_binding_rejects_what_it_cannot_rebuild(binding: object) -> None:
    with pytest.raises(ValueError):
        Value.from_binding(binding)  # type: ignore[arg-type]


def test_value_refuses_a_class_that_does_not_match_its_python_value() -> None:
    with pytest.raises(ValueError):
        Value("SmallInteger", "3")
    with pytest.raises(ValueError):
        Value("ByteString", "\u20ac")
    with pytest.raises(TypeError):
        Value("SmallInteger", True)


def test_value_print_string_of_huge_integer_does_not_hit_python_str_limit() -> None:
    assert Value.of(-(10**9999)).print_string == "-1" + "0" * 9999


# --- property ------------------------------------------------------------------------------------

_OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul}

_literals = st.integers(min_value=-(10**6), max_value=10**6)


@st.composite
def _expressions(draw: st.DrawFn, depth: int = 0) -> tuple[str, int]:
    """A flat chain of + - * whose operands are literals or parenthesised sub-chains."""
    spacing = draw(st.sampled_from(["", " ", "  ", "\n"]))

    def operand() -> tuple[str, int]:
        if depth < 2 and draw(st.booleans()):
            text, value = draw(_expressions(depth + 1))
            return f"({text})", value
        number = draw(_literals)
        return str(number), number

    text, expected = operand()
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        selector = draw(st.sampled_from(sorted(_OPERATORS)))
        argument_text, argument = operand()
        # With no spacing this yields forms like "3-5" and "3--5", which must still read as
        # 3 - 5 and 3 - -5.
        text = f"{text}{spacing}{selector}{spacing}{argument_text}"
        expected = _OPERATORS[selector](expected, argument)
    return text, expected


@given(_expressions())
def test_integer_expressions_equal_left_to_right_python_computation(case: tuple[str, int]) -> None:
    code, expected = case
    value = result_of(code)
    assert value.python_value == expected
    assert value == Value.of(expected)
    assert value.print_string == str(expected)


@given(_literals, st.lists(st.tuples(st.sampled_from(sorted(_OPERATORS)), _literals), max_size=12))
def test_flat_chain_ignores_conventional_precedence(first: int, rest: list[tuple[str, int]]) -> None:
    code = str(first) + "".join(f" {selector} {number}" for selector, number in rest)
    expected = functools.reduce(lambda acc, step: _OPERATORS[step[0]](acc, step[1]), rest, first)
    assert result_of(code).python_value == expected


@given(st.text(max_size=200))
def test_string_literals_round_trip_through_print_string(text: str) -> None:
    literal = "'" + text.replace("'", "''") + "'"
    value = result_of(literal)
    assert value.python_value == text
    assert value.print_string == literal
    assert value.class_name == ("ByteString" if all(ord(c) < 256 for c in text) else "WideString")
    assert Value.from_binding(value.to_binding()) == value


@given(st.text(max_size=60))
def test_arbitrary_code_either_evaluates_or_raises_evaluation_error(code: str) -> None:
    try:
        evaluate(code, {"x": Value.of(1)})
    except EvaluationError as error:
        assert 0 < error.position <= len(code) + 1
        assert error.reason


def test_a_concatenation_takes_its_class_from_its_parts_without_a_scan(monkeypatch) -> None:
    """Issue 10's string bomb: every concatenation scanned its whole result for a wide character, so
    ~10 million characters of `,` took 1.2-1.4 s. Now only literals (within the code's size) are looked
    at, and the class is still Pharo's: a WideString exactly when a part is one."""
    from stui_protocol_kit.reference_server import evaluator

    scanned: list[int] = []
    original = evaluator._string_class
    monkeypatch.setattr(evaluator, "_string_class", lambda s: scanned.append(len(s)) or original(s))
    code = "a := '" + "x" * 1000 + "'." + " a := a , a." * 9 + " a"
    value, _ = evaluate(code, {})
    assert value.class_name == "ByteString" and len(value.python_value) == 512_000
    assert sum(scanned) <= 2 * len(code)  # the literal, checked twice; never a result
    wide, _ = evaluate("w := 'x' , '\u2713'. w , 'abc'", {})
    assert wide.class_name == "WideString" and wide.print_string == "'x\u2713abc'"
    latin, _ = evaluate("'caf' , '\u00e9'", {})
    assert latin.class_name == "ByteString"
