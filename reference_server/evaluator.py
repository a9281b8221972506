"""Evaluator for the conformance subset of Smalltalk used by the reference server's `evaluate`.

The subset (docs/architecture.md, "Evaluate subset"): statements separated by `.`, the value of the
last one answered; assignment `name := expr` (chainable); SmallInteger literals, also negative
(`-5`); single-quoted strings with `''` for a quote; reads of workspace variables; binary `+ - *`
on integers and `,` on strings, strictly left to right as Smalltalk binary messages; parentheses.
Results follow Pharo: class names and print strings are what Pharo's `class` and `printString`
answer. Everything else is answered with `EvaluationError(reason, position)`.

Code comes from the network, so this module must never hand it to Python (no `eval`, `exec`,
`compile`, imports or attribute lookups driven by the source), never perform I/O, and never let
input exhaust the process: parenthesis nesting, the size of every value and the total size of
values produced per call are bounded, and a limit breach is an `EvaluationError`, not a
`RecursionError` or `MemoryError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "MAX_EVALUATION_OUTPUT",
    "MAX_INTEGER_DIGITS",
    "MAX_NESTING_DEPTH",
    "MAX_STRING_LENGTH",
    "MAX_VARIABLE_NAME_LENGTH",
    "EvaluationError",
    "Value",
    "evaluate",
]

# 64-bit Pharo: SmallInteger is a 61-bit tagged immediate.
SMALL_INTEGER_MIN = -(2**60)
SMALL_INTEGER_MAX = 2**60 - 1

MAX_INTEGER_DIGITS = 10_000
MAX_STRING_LENGTH = 1_000_000
# Parser and evaluator recurse once per parenthesis level; this keeps both far below Python's
# recursion limit even when the caller is itself deep in its stack.
MAX_NESTING_DEPTH = 64
# schemas/state.json VariableName: a longer name could not be stored in the state document.
MAX_VARIABLE_NAME_LENGTH = 256
# Per-value limits alone do not bound memory: 64 KiB of `bN := a , 'x'.` statements would bind
# thousands of megabyte strings. So the characters/digits of all values produced in one call are
# bounded too.
MAX_EVALUATION_OUTPUT = 10_000_000

_INTEGER_LIMIT = 10**MAX_INTEGER_DIGITS  # abs(n) >= this has more than MAX_INTEGER_DIGITS digits
# CPython refuses int<->str conversions above 4300 digits by default; we stay below that per chunk
# rather than changing the interpreter-wide setting, which other code in the process relies on.
_SAFE_STR_DIGITS = 4000
_SAFE_STR_BITS = 13_000  # 13_000 bits < 3_914 decimal digits

_INTEGER_CLASSES = ("SmallInteger", "LargePositiveInteger", "LargeNegativeInteger")
_STRING_CLASSES = ("ByteString", "WideString")
_PSEUDO_VARIABLES = frozenset({"self", "super", "thisContext", "nil", "true", "false"})

_CANONICAL_INTEGER = re.compile(r"0|-?[1-9][0-9]*")
_QUOTED_STRING = re.compile(r"'(?:[^']|'')*'", re.DOTALL)


def _integer_class(n: int) -> str:
    if SMALL_INTEGER_MIN <= n <= SMALL_INTEGER_MAX:
        return "SmallInteger"
    return "LargePositiveInteger" if n > 0 else "LargeNegativeInteger"


def _string_class(s: str) -> str:
    # Pharo's ByteString holds Latin-1 only; anything wider becomes a WideString. isascii() is a flag
    # CPython keeps per string (constant time); max() runs in C but still visits every character.
    return "ByteString" if not s or s.isascii() or max(s) <= "\xff" else "WideString"


def _decimal_digits_to_int(digits: str) -> int:
    if len(digits) <= _SAFE_STR_DIGITS:
        return int(digits)
    low_len = len(digits) // 2
    high = _decimal_digits_to_int(digits[:-low_len])
    return high * 10**low_len + _decimal_digits_to_int(digits[-low_len:])


def _int_to_decimal(n: int) -> str:
    if n < 0:
        return "-" + _int_to_decimal(-n)
    if n.bit_length() <= _SAFE_STR_BITS:
        return str(n)
    low_len = int(n.bit_length() * 0.30103) // 2
    high, low = divmod(n, 10**low_len)
    return _int_to_decimal(high) + _int_to_decimal(low).zfill(low_len)


def _approximate_size(value: int | str) -> int:
    if isinstance(value, str):
        return len(value)
    # log10(2) ~ 0.30103; one more for the sign/rounding is harmless for a budget.
    return int(value.bit_length() * 0.30103) + 1


@dataclass(frozen=True)
class Value:
    """An evaluated object: its Pharo class name and the Python value it is modelled by."""

    class_name: str
    python_value: int | str

    def __post_init__(self) -> None:
        # A Value reaches the state document and other sessions' evaluations; refusing an
        # inconsistent one here means no caller can store e.g. a "SmallInteger" holding a string.
        value = self.python_value
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"unsupported python_value type {type(value).__name__}")
        expected = _integer_class(value) if isinstance(value, int) else _string_class(value)
        if self.class_name != expected:
            raise ValueError(f"class_name {self.class_name!r} does not match value (expected {expected!r})")

    @classmethod
    def _known(cls, class_name: str, python_value: int | str) -> Value:
        """A Value whose class the caller derived without looking at every character (a concatenation
        is a WideString exactly when one of its parts is): no check, no scan of megabyte strings."""
        value = object.__new__(cls)
        object.__setattr__(value, "class_name", class_name)
        object.__setattr__(value, "python_value", python_value)
        return value

    @classmethod
    def of(cls, python_value: int | str) -> Value:
        """The Value for an int or str, with the class Pharo would give it."""
        if isinstance(python_value, bool) or not isinstance(python_value, (int, str)):
            raise TypeError(f"unsupported python_value type {type(python_value).__name__}")
        if isinstance(python_value, int):
            return cls(_integer_class(python_value), python_value)
        return cls(_string_class(python_value), python_value)

    @property
    def print_string(self) -> str:
        value = self.python_value
        if isinstance(value, int):
            return _int_to_decimal(value)
        return "'" + value.replace("'", "''") + "'"

    def to_binding(self) -> dict:
        """The value as stored in the session state document's workspace variables."""
        return {"class": self.class_name, "print_string": self.print_string}

    @classmethod
    def from_binding(cls, binding: dict) -> Value:
        """Rebuild a Value from `to_binding` output; ValueError for anything else.

        Only the canonical print string is accepted (no leading zeros, no `-0`, quotes doubled),
        so that a stored binding round-trips exactly and a tampered state file is refused rather
        than silently reinterpreted. Members other than class and print_string are ignored
        (clients and later versions may add some).
        """
        # ValueError, not TypeError, for wrong types too: callers restoring a state file catch
        # one exception for "cannot rebuild", whatever was wrong with it.
        if not isinstance(binding, dict):
            raise ValueError("binding must be an object")  # noqa: TRY004
        class_name = binding.get("class")
        text = binding.get("print_string")
        if not isinstance(class_name, str) or not isinstance(text, str):
            raise ValueError("binding needs string members 'class' and 'print_string'")  # noqa: TRY004
        if class_name in _INTEGER_CLASSES:
            if _CANONICAL_INTEGER.fullmatch(text) is None:
                raise ValueError(f"not a canonical decimal integer print string: {text[:40]!r}")
            if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
                raise ValueError(f"integer exceeds the limit of {MAX_INTEGER_DIGITS} digits")
            digits = _decimal_digits_to_int(text.lstrip("-"))
            return cls(class_name, -digits if text.startswith("-") else digits)
        if class_name in _STRING_CLASSES:
            if _QUOTED_STRING.fullmatch(text) is None:
                raise ValueError("not a string print string: must be quoted with embedded quotes doubled")
            content = text[1:-1].replace("''", "'")
            if len(content) > MAX_STRING_LENGTH:
                raise ValueError(f"string exceeds the limit of {MAX_STRING_LENGTH} characters")
            return cls(class_name, content)
        raise ValueError(f"class {class_name[:80]!r} is not in the evaluate conformance subset")


class EvaluationError(Exception):
    """Code that is not in the subset, or fails while evaluating; `position` is 1-based."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(reason, position)
        self.reason = reason
        self.position = position

    def __str__(self) -> str:
        return f"{self.reason} (at position {self.position})"


# ---------------------------------------------------------------------------------------------
# Lexer

_INT = "integer"
_STRING = "string"
_IDENT = "identifier"
_KEYWORD = "keyword"
_ASSIGN = "':='"
_BINARY = "binary"
_LPAREN = "'('"
_RPAREN = "')'"
_PERIOD = "'.'"
_EOF = "end of input"
_ERROR = "error"

_WHITESPACE = frozenset(" \t\r\n\f")
# Smalltalk's binary selector characters; a run of them is one selector.
_BINARY_CHARS = frozenset("!%&*+,-/<=>?@\\~|")
_SUPPORTED_SELECTORS = frozenset({"+", "-", "*", ","})
_BEYOND_SUBSET_CHARS = {
    "#": "symbols and literal arrays (#...) are beyond the evaluate conformance subset",
    "$": "character literals ($c) are beyond the evaluate conformance subset",
    "[": "blocks ([ ]) are beyond the evaluate conformance subset",
    "]": "blocks ([ ]) are beyond the evaluate conformance subset",
    "{": "brace arrays ({ }) are beyond the evaluate conformance subset",
    "}": "brace arrays ({ }) are beyond the evaluate conformance subset",
    ";": "cascades (;) are beyond the evaluate conformance subset",
    "^": "return statements (^) are beyond the evaluate conformance subset",
}
# Letters that continue a Smalltalk number literal: radix (16r1F), exponent (1e3), scaled (1s2),
# and the float exponents d/q.
_NUMBER_SUFFIXES = frozenset("rRsedq")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    start: int  # 0-based index into the source
    end: int
    reason: str = ""  # only for _ERROR tokens


def _is_letter(c: str) -> bool:
    return c.isascii() and c.isalpha()


def _is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def _describe_char(c: str) -> str:
    return repr(c) if c.isprintable() and c.isascii() else f"U+{ord(c):04X}"


def _tokenize(code: str) -> list[_Token]:
    """All tokens up to the first lexical error, which becomes an _ERROR token.

    The error is a token rather than an exception so that the parser reports problems in source
    order: `3 factorial $a` complains about `factorial`, not the later `$`.
    """
    tokens: list[_Token] = []
    i, n = 0, len(code)

    def error(reason: str, at: int) -> list[_Token]:
        tokens.append(_Token(_ERROR, code[at : at + 1], at, at + 1, reason))
        return tokens

    while i < n:
        c = code[i]
        if c in _WHITESPACE:
            i += 1
        elif c == '"':
            close = code.find('"', i + 1)
            if close < 0:
                return error("unterminated comment: missing closing '\"'", i)
            i = close + 1
        elif _is_letter(c):
            j = i + 1
            while j < n and (_is_letter(code[j]) or _is_digit(code[j]) or code[j] == "_"):
                j += 1
            if j < n and code[j] == ":" and code[j + 1 : j + 2] != "=":
                tokens.append(_Token(_KEYWORD, code[i : j + 1], i, j + 1))
                i = j + 1
                continue
            if j - i > MAX_VARIABLE_NAME_LENGTH:
                return error(f"identifier exceeds the limit of {MAX_VARIABLE_NAME_LENGTH} characters", i)
            tokens.append(_Token(_IDENT, code[i:j], i, j))
            i = j
        elif _is_digit(c):
            j = i
            while j < n and _is_digit(code[j]):
                j += 1
            if j + 1 < n and code[j] == "." and _is_digit(code[j + 1]):
                return error("float literals are beyond the evaluate conformance subset", i)
            if j < n and (code[j] in _NUMBER_SUFFIXES or code[j] == "_"):
                return error(
                    "only plain decimal integer literals are in the evaluate conformance subset "
                    "(no radix, exponent or scaled literals)",
                    i,
                )
            if j - i > MAX_INTEGER_DIGITS:
                return error(f"integer literal exceeds the limit of {MAX_INTEGER_DIGITS} digits", i)
            tokens.append(_Token(_INT, code[i:j], i, j))
            i = j
        elif c == "'":
            j = i + 1
            while True:
                close = code.find("'", j)
                if close < 0:
                    return error("unterminated string literal: missing closing quote", i)
                if code[close + 1 : close + 2] == "'":
                    j = close + 2
                    continue
                break
            tokens.append(_Token(_STRING, code[i : close + 1], i, close + 1))
            i = close + 1
        elif c == ":" and code[i + 1 : i + 2] == "=":
            tokens.append(_Token(_ASSIGN, ":=", i, i + 2))
            i += 2
        elif c in _BINARY_CHARS:
            j = i
            while j < n and code[j] in _BINARY_CHARS:
                j += 1
            # As in Pharo, `3--4` is `3 - -4`: a trailing `-` glued to a digit is a literal's sign.
            if j - i > 1 and code[j - 1] == "-" and j < n and _is_digit(code[j]):
                j -= 1
            tokens.append(_Token(_BINARY, code[i:j], i, j))
            i = j
        elif c == "(":
            tokens.append(_Token(_LPAREN, c, i, i + 1))
            i += 1
        elif c == ")":
            tokens.append(_Token(_RPAREN, c, i, i + 1))
            i += 1
        elif c == ".":
            tokens.append(_Token(_PERIOD, c, i, i + 1))
            i += 1
        elif c in _BEYOND_SUBSET_CHARS:
            return error(_BEYOND_SUBSET_CHARS[c], i)
        else:
            return error(f"unexpected character {_describe_char(c)}", i)
    tokens.append(_Token(_EOF, "", n, n))
    return tokens


# ---------------------------------------------------------------------------------------------
# Syntax tree. Binary chains are flat lists, not nested nodes, so that `1 + 1 + ... + 1` of any
# length is evaluated in a loop; only parentheses nest.


@dataclass(frozen=True, slots=True)
class _Literal:
    value: int | str
    start: int


@dataclass(frozen=True, slots=True)
class _Variable:
    name: str
    start: int


@dataclass(frozen=True, slots=True)
class _BinaryOperation:
    selector: str
    start: int
    argument: _Primary


@dataclass(frozen=True, slots=True)
class _Expression:
    targets: tuple[tuple[str, int], ...]  # assignment targets, leftmost first
    receiver: _Primary
    operations: tuple[_BinaryOperation, ...]


_Primary = _Literal | _Variable | _Expression


class _Parser:
    def __init__(self, code: str) -> None:
        self._tokens = _tokenize(code)
        self._index = 0

    def _peek(self, offset: int = 0) -> _Token:
        return self._tokens[min(self._index + offset, len(self._tokens) - 1)]

    def _advance(self) -> _Token:
        token = self._peek()
        if token.kind == _ERROR:
            raise EvaluationError(token.reason, token.start + 1)
        self._index += 1
        return token

    def _fail(self, reason: str, token: _Token | None = None) -> EvaluationError:
        token = token or self._peek()
        if token.kind == _ERROR:
            # The lexical problem is what the user needs to fix first.
            return EvaluationError(token.reason, token.start + 1)
        return EvaluationError(reason, token.start + 1)

    def parse(self) -> list[_Expression]:
        statements = []
        while True:
            token = self._peek()
            if token.kind == _EOF:
                raise self._fail("expected a statement, found end of input")
            if token.kind == _PERIOD:
                raise self._fail("expected a statement, found '.' (empty statements are not allowed)")
            if token.kind == _BINARY and token.text.startswith("|") and not statements:
                raise self._fail("temporary variable declarations (| a |) are beyond the evaluate conformance subset")
            statements.append(self._expression(depth=0))
            token = self._peek()
            if token.kind == _PERIOD:
                self._advance()
                if self._peek().kind == _EOF:
                    return statements
            elif token.kind == _EOF:
                return statements
            elif token.kind == _RPAREN:
                raise self._fail("unmatched ')'")
            else:
                raise self._fail(f"expected '.' or end of input, found {self._describe(token)}")

    def _expression(self, depth: int) -> _Expression:
        targets = []
        # Chained assignment is a loop, not recursion: `a := b := ... := 3` has no depth limit.
        while self._peek().kind == _IDENT and self._peek(1).kind == _ASSIGN:
            name = self._advance()
            if name.text in _PSEUDO_VARIABLES:
                raise self._fail(f"cannot assign to pseudo-variable '{name.text}'", name)
            targets.append((name.text, name.start))
            self._advance()
        receiver = self._primary(depth)
        operations = []
        while True:
            token = self._peek()
            if token.kind == _BINARY:
                if token.text not in _SUPPORTED_SELECTORS:
                    raise self._fail(
                        f"binary message '{token.text}' is beyond the evaluate conformance subset "
                        "(only + - * and , are supported)"
                    )
                self._advance()
                operations.append(_BinaryOperation(token.text, token.start, self._primary(depth)))
            elif token.kind == _IDENT:
                raise self._fail(f"unary message '{token.text}' is beyond the evaluate conformance subset")
            elif token.kind == _KEYWORD:
                raise self._fail(f"keyword message '{token.text}' is beyond the evaluate conformance subset")
            elif token.kind == _ASSIGN:
                raise self._fail("':=' must follow a variable name at the start of a statement or after '('")
            else:
                return _Expression(tuple(targets), receiver, tuple(operations))

    def _primary(self, depth: int) -> _Primary:
        token = self._peek()
        if token.kind == _INT:
            self._advance()
            return _Literal(_decimal_digits_to_int(token.text), token.start)
        if token.kind == _BINARY and token.text == "-":
            following = self._peek(1)
            if following.kind == _INT and following.start == token.end:
                self._advance()
                self._advance()
                return _Literal(-_decimal_digits_to_int(following.text), token.start)
        if token.kind == _STRING:
            self._advance()
            content = token.text[1:-1].replace("''", "'")
            if len(content) > MAX_STRING_LENGTH:
                raise self._fail(f"string literal exceeds the limit of {MAX_STRING_LENGTH} characters", token)
            return _Literal(content, token.start)
        if token.kind == _IDENT:
            if self._peek(1).kind == _ASSIGN:
                raise self._fail(
                    f"assignment to '{token.text}' is only allowed at the start of a statement "
                    "or directly after '('; add parentheses",
                    self._peek(1),
                )
            self._advance()
            return _Variable(token.text, token.start)
        if token.kind == _LPAREN:
            if depth >= MAX_NESTING_DEPTH:
                raise self._fail(f"parentheses nested deeper than the limit of {MAX_NESTING_DEPTH}")
            self._advance()
            inner = self._expression(depth + 1)
            if self._peek().kind != _RPAREN:
                raise self._fail(
                    f"expected ')' to close the '(' at position {token.start + 1}, found {self._describe(self._peek())}"
                )
            self._advance()
            return inner
        raise self._fail(f"expected an expression (literal, variable or '('), found {self._describe(token)}")

    @staticmethod
    def _describe(token: _Token) -> str:
        if token.kind == _EOF:
            return "end of input"
        if token.kind in (_INT, _STRING, _IDENT, _KEYWORD, _BINARY):
            text = token.text if len(token.text) <= 40 else token.text[:37] + "..."
            return f"{token.kind} {text!r}" if token.kind != _BINARY else f"{text!r}"
        return token.kind


# ---------------------------------------------------------------------------------------------
# Evaluation


class _Interpreter:
    def __init__(self, variables: Mapping[str, Value]) -> None:
        self._variables = variables
        self.assignments: dict[str, Value] = {}
        self._output = 0

    def run(self, statements: list[_Expression]) -> Value:
        result: Value | None = None
        for statement in statements:
            result = self._expression(statement)
        assert result is not None  # the parser never returns an empty statement list
        return result

    def _expression(self, node: _Expression) -> Value:
        value = self._primary(node.receiver)
        for operation in node.operations:
            argument = self._primary(operation.argument)
            value = self._send(value, operation.selector, argument, operation.start + 1)
        # Smalltalk assigns right to left: in `a := b := 3`, b is bound first.
        for name, _start in reversed(node.targets):
            self.assignments[name] = value
        return value

    def _primary(self, node: _Primary) -> Value:
        if isinstance(node, _Literal):
            return self._produce(node.value, node.start + 1)
        if isinstance(node, _Variable):
            if node.name in _PSEUDO_VARIABLES:
                raise EvaluationError(
                    f"pseudo-variable '{node.name}' is beyond the evaluate conformance subset", node.start + 1
                )
            if node.name in self.assignments:
                return self.assignments[node.name]
            if node.name in self._variables:
                return self._variables[node.name]
            raise EvaluationError(f"undefined variable '{node.name}'", node.start + 1)
        return self._expression(node)

    def _send(self, receiver: Value, selector: str, argument: Value, position: int) -> Value:
        left, right = receiver.python_value, argument.python_value
        if selector == ",":
            if not isinstance(left, str):
                raise EvaluationError(f"{receiver.class_name} does not understand #,", position)
            if not isinstance(right, str):
                raise EvaluationError(
                    f"{receiver.class_name} , expects a string argument, got {argument.class_name}", position
                )
            # Checked before concatenating so the oversized string is never built.
            if len(left) + len(right) > MAX_STRING_LENGTH:
                raise EvaluationError(f"string result exceeds the limit of {MAX_STRING_LENGTH} characters", position)
            wide = "WideString" in (receiver.class_name, argument.class_name)
            return self._produce(left + right, position, "WideString" if wide else "ByteString")
        if not isinstance(left, int):
            raise EvaluationError(f"{receiver.class_name} does not understand #{selector}", position)
        if not isinstance(right, int):
            raise EvaluationError(
                f"{receiver.class_name} {selector} expects an integer argument, got {argument.class_name}", position
            )
        if selector == "+":
            result = left + right
        elif selector == "-":
            result = left - right
        else:
            # Operands are below 10_000 digits, so the product is at most ~20_000: cheap to build.
            result = left * right
        if abs(result) >= _INTEGER_LIMIT:
            raise EvaluationError(f"integer result exceeds the limit of {MAX_INTEGER_DIGITS} digits", position)
        return self._produce(result, position)

    def _produce(self, python_value: int | str, position: int, class_name: str | None = None) -> Value:
        self._output += _approximate_size(python_value)
        if self._output > MAX_EVALUATION_OUTPUT:
            raise EvaluationError(
                f"evaluation produces more than the limit of {MAX_EVALUATION_OUTPUT} characters of values", position
            )
        return Value.of(python_value) if class_name is None else Value._known(class_name, python_value)


def evaluate(code: str, variables: Mapping[str, Value]) -> tuple[Value, dict[str, Value]]:
    """Returns the value of the last statement and the assignments made (name -> Value), in order.

    Pure: never mutates `variables`; if any statement fails, no assignment is returned (the
    caller applies all or nothing). The whole code is parsed before anything is evaluated, so a
    syntax error anywhere wins over a runtime error in an earlier statement, as in Pharo.
    A name assigned several times appears once, at its first assignment, with its last value.
    """
    statements = _Parser(code).parse()
    interpreter = _Interpreter(variables)
    result = interpreter.run(statements)
    return result, dict(interpreter.assignments)
