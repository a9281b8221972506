"""When two `pattern`s are the same regular expression written differently.

`normal_form` parses a JSON Schema (ECMA-262) pattern with Python's own regex parser, after the kit's
ECMA correction (`$` matches only at the very end, `protocol.validation.ecma_regex`), and prints a
normal form in which spelling that cannot change what matches is gone: character-class members are
merged into sorted code-point ranges (`[a-z_0-9]` = `[0-9_a-z]` = `[_0-9a-z]`), groups lose their
numbers (`(a)` = `(?:a)` = `a` where Python already unwraps them), lazy repeats count as greedy (whether
a string matches does not depend on it) and `{1,}` is `+` (the parser already says so).

Two patterns with the same normal form match exactly the same strings. Two with different normal forms
may still be equivalent (`a+` and `aa*`): deciding that in general is out of reach, so the diff then
searches for a witness string each way and says "no witness found" when there is none, instead of
claiming a change. Note that `\\d` and `[0-9]` are *not* equivalent for the validators the kit uses
(Python's and Rust's `\\d` match every Unicode digit), so they keep different normal forms.

This module must never decide a verdict; it only says "same" or "not known to be the same".
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from stui_protocol_kit.protocol.validation import ecma_regex

try:  # Python 3.11+: the parser behind `re`; private, so every use falls back to the raw text
    import re._constants as _sre_constants
    import re._parser as _sre_parse
except ImportError:  # pragma: no cover - very old or unusual interpreters
    _sre_parse = None
    _sre_constants = None


def _ranges(items: list[tuple[Any, Any]]) -> tuple | None:
    """A class made of literals and ranges as merged sorted (low, high) code-point ranges, else None."""
    spans: list[tuple[int, int]] = []
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            spans.append((arg, arg))
        elif name == "RANGE":
            spans.append((arg[0], arg[1]))
        else:
            return None
    spans.sort()
    merged: list[list[int]] = []
    for low, high in spans:
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return tuple((low, high) for low, high in merged)


def _walk(items: Any) -> Any:
    out = []
    for op, arg in items:
        name = str(op)
        if name == "IN":
            negate = bool(arg) and str(arg[0][0]) == "NEGATE"
            members = arg[1:] if negate else arg
            spans = _ranges(members)
            if spans is not None and len(spans) == 1 and spans[0][0] == spans[0][1] and not negate:
                out.append(("LITERAL", spans[0][0]))
            elif spans is not None:
                out.append(("IN", negate, spans))
            else:
                out.append(("IN", negate, tuple(sorted(repr(m) for m in members))))
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, sub = arg
            out.append(("REPEAT", low, str(high), _walk(sub)))
        elif name == "SUBPATTERN":
            _group, add_flags, del_flags, sub = arg
            inner = _walk(sub)
            if add_flags or del_flags:
                out.append(("GROUP", add_flags, del_flags, inner))
            else:
                out.extend(inner)  # a group's number does not change what matches
        elif name == "BRANCH":
            _, alternatives = arg
            out.append(("BRANCH", tuple(sorted(repr(_walk(alt)) for alt in alternatives))))
        elif name in ("ASSERT", "ASSERT_NOT"):
            direction, sub = arg
            out.append((name, direction, _walk(sub)))
        else:
            out.append((name, repr(arg)))
    return tuple(out)


@lru_cache(maxsize=1024)
def normal_form(pattern: str) -> str:
    """A text equal for two patterns when they are the same regular expression written differently."""
    if _sre_parse is None:
        return "raw:" + pattern
    try:
        python = ecma_regex(pattern).pattern
        parsed = _sre_parse.parse(python)
    except Exception:  # an invalid pattern: keep it as written (the lint reports it)
        return "raw:" + pattern
    return repr((parsed.state.flags, _walk(parsed.data)))
