"""Message bodies to JSON values and back: the frame-level checks of spec/01-transport.md.

Pure functions, shared by the reference server, the conformance client and the `validate` tool. The
decoder applies, in the spec's order, the checks that come before any schema: size, UTF-8, JSON
syntax (with duplicate keys rejected), nesting depth, and "is an object". It never raises anything but
`FrameError`, whatever bytes it is given.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stui_protocol_kit.protocol.facts import ErrorCode, InvalidRequestReason
from stui_protocol_kit.protocol.problems import quote

_INVALID, _TOO_LARGE = ErrorCode.InvalidRequest, ErrorCode.PayloadTooLarge
_R = InvalidRequestReason

DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
DEFAULT_MAX_NESTING_DEPTH = 32


class FrameError(Exception):
    """A body that fails a frame-level check. `code` is the protocol error code, `reason` the
    InvalidRequest reason (spec/12-errors.md); `received_bytes` is set for PayloadTooLarge."""

    def __init__(self, code: str, reason: str | None, message: str, received_bytes: int | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.received_bytes = received_bytes


class _DuplicateKey(ValueError):
    pass


class _NumberOutOfRange(ValueError):
    pass


_DOUBLE_DIGITS = 309  # an integer literal with more digits than this may exceed binary64 (spec CMP-8)


def _parse_int(literal: str) -> int:
    if len(literal.lstrip("-")) >= _DOUBLE_DIGITS and math.isinf(float(literal)):
        raise _NumberOutOfRange(literal)
    return int(literal)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


@dataclass(frozen=True)
class Decoded:
    """A decoded body. `has_float` tells whether any number had a fraction or exponent, so the
    hot path can skip the integer-typing check (spec CMP) for the usual message that has none."""

    message: Any
    has_float: bool


def nesting_depth(value: Any) -> int:
    """Depth of arrays/objects: a scalar is 0, `{}` is 1, `{"a": []}` is 2."""
    depth, level = 0, [(value, 1)]
    while level:
        node, d = level.pop()
        if isinstance(node, dict):
            depth = max(depth, d)
            level.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            depth = max(depth, d)
            level.extend((v, d + 1) for v in node)
    return depth


def _bracket_depth(text: str, limit: int) -> bool:
    """True when brackets outside strings nest deeper than `limit`. Scans text, so it runs before
    the parser could recurse; only called when the body holds more brackets than `limit`. Every pass
    runs in C (a per-character Python loop took 0.3 s for 1 MiB of objects, CPU fairness, issue 10):
    strings removed (an unterminated one runs to the end), brackets kept, depth as a running sum."""
    bare = _JSON_STRING.sub("", text)
    quote = bare.find('"')
    if quote >= 0:
        bare = bare[:quote]
    brackets = _NOT_BRACKET.sub("", bare)
    if len(brackets) <= limit:
        return False
    return max(itertools.accumulate(map(_BRACKET_STEP.__getitem__, brackets))) > limit


# A JSON string, escapes included (the unrolled form runs fastest in `re`).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def decode_body(
    body: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_depth: int = DEFAULT_MAX_NESTING_DEPTH,
    require_object: bool = True,
) -> Decoded:
    """Decode one message body or raise FrameError."""
    if len(body) > max_bytes:
        raise FrameError(
            _TOO_LARGE, None,
            f"message body is {len(body)} bytes; the limit is {max_bytes}", received_bytes=len(body),
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError(_INVALID, _R.ENCODING, f"body is not UTF-8 (byte {exc.start})") from None
    # Counting brackets is done in C; the character scan only runs for bodies that could be too deep.
    if text.count("[") + text.count("{") > max_depth and _bracket_depth(text, max_depth):
        raise FrameError(_INVALID, _R.NESTING_DEPTH, f"JSON nests deeper than {max_depth} levels")
    # The integer hook (a Python call per integer literal, ~0.7 us) only matters for literals long
    # enough to leave binary64 (CMP-8); a body without a 309-digit run skips it (CPU fairness, issue 10:
    # 1 MiB of integers cost 0.4 s in the hook alone).
    decoder, floats = _thread_decoder(long_digits=_LONG_DIGITS.search(text) is not None)
    floats.clear()
    try:
        message = decoder.decode(text)
    except _DuplicateKey as exc:
        raise FrameError(_INVALID, _R.JSON, f"duplicate object key {quote(str(exc))}") from None
    except _NumberOutOfRange as exc:
        shown = str(exc) if len(str(exc)) <= 24 else str(exc)[:20] + "..."
        raise FrameError(_INVALID, _R.JSON, f"number {shown} is outside the IEEE 754 binary64 range") from None
    except (ValueError, RecursionError) as exc:
        if text.startswith("\ufeff"):  # json's own words ("Expecting value: line 1 column 1") hide the cause
            raise FrameError(_INVALID, _R.JSON, "body starts with a UTF-8 byte order mark (BOM, bytes EF BB BF):"
                             " JSON on the wire must not have one (RFC 8259 section 8.1); remove it") from None
        raise FrameError(_INVALID, _R.JSON, f"body is not JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(message):
        raise FrameError(_INVALID, _R.JSON, "a \\u escape encodes a lone surrogate, which is not Unicode text")
    if require_object and not isinstance(message, dict):
        raise FrameError(_INVALID, _R.NOT_OBJECT, f"body is a JSON {_JSON_TYPE_NAMES.get(type(message), 'value')},"
                         " not an object")
    return Decoded(message, bool(floats))


_JSON_TYPE_NAMES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
                    type(None): "null"}
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(value: Any) -> bool:
    # json.loads joins escaped surrogate pairs into one character, so any surrogate left is lone.
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _LONE_SURROGATE.search(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_local = threading.local()


_LONG_DIGITS = re.compile(rf"\d{{{_DOUBLE_DIGITS}}}")


def _thread_decoder(long_digits: bool = True) -> tuple[json.JSONDecoder, list[str]]:
    """One decoder per thread, built once: json.loads with hooks would build a new one per call.
    The float list is how the parse_float hook reports back; it is cleared before each decode.
    Without `long_digits`, the decoder that parses integers in C (no literal can leave binary64)."""
    try:
        return (_local.decoder if long_digits else _local.plain_ints), _local.floats
    except AttributeError:
        floats: list[str] = []

        def note_float(literal: str) -> float:
            floats.append(literal)
            value = float(literal)
            if math.isinf(value):
                raise _NumberOutOfRange(literal)
            return value

        _local.floats = floats
        _local.decoder = json.JSONDecoder(
            object_pairs_hook=_reject_duplicates, parse_float=note_float, parse_int=_parse_int,
            parse_constant=_reject_constant,
        )
        _local.plain_ints = json.JSONDecoder(
            object_pairs_hook=_reject_duplicates, parse_float=note_float, parse_constant=_reject_constant,
        )
        return (_local.decoder if long_digits else _local.plain_ints), floats


# Built once; json.dumps with non-default options would build a new encoder per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode(message: Any) -> bytes:
    """Compact UTF-8 JSON. NaN and infinities are refused: they are not JSON. Nesting of any depth is
    encoded: the C encoder recurses per level and gives up near the interpreter's recursion limit (a
    target may announce a `max_nesting_depth` of thousands), so deeper values take an iterative path."""
    try:
        return _ENCODER.encode(message).encode("utf-8")
    except RecursionError:
        return _encode_iteratively(message).encode("utf-8")


def _encode_iteratively(message: Any) -> str:
    """The same text as `_ENCODER.encode`, without recursion (only for values nested too deep for it)."""
    out: list[str] = []
    # A stack of pending work: values to encode, or literal text to emit.
    stack: list[tuple[bool, Any]] = [(True, message)]
    while stack:
        is_value, item = stack.pop()
        if not is_value:
            out.append(item)
        elif isinstance(item, dict):
            pending: list[tuple[bool, Any]] = [(False, "{")]
            for i, (key, value) in enumerate(item.items()):
                if not isinstance(key, str):
                    raise TypeError(f"keys must be str, not {type(key).__name__}")
                pending += [(False, ("," if i else "") + _ENCODER.encode(key) + ":"), (True, value)]
            pending.append((False, "}"))
            stack.extend(reversed(pending))
        elif isinstance(item, (list, tuple)):
            pending = [(False, "[")]
            for i, value in enumerate(item):
                if i:
                    pending.append((False, ","))
                pending.append((True, value))
            pending.append((False, "]"))
            stack.extend(reversed(pending))
        else:
            out.append(_ENCODER.encode(item))
    return "".join(out)


_prefixes: dict[int, str] = {}


def rfc3339(moment: datetime | float) -> str:
    """An RFC 3339 UTC timestamp with millisecond precision (truncated) and a literal Z (spec ENV).

    A reply carries up to three timestamps in different seconds (now, the expiry deadline, the last
    activity), so date-and-time parts are formatted once per second and kept in a small table
    (strftime dominated the cost of a small reply)."""
    if isinstance(moment, datetime):
        moment = moment.timestamp()
    second = int(moment // 1)
    millis = int((moment - second) * 1000)
    prefix = _prefixes.get(second)
    if prefix is None:
        if len(_prefixes) >= 256:
            _prefixes.clear()  # bounded; a burst of misses costs one strftime each
        prefix = _prefixes[second] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{prefix}.{millis:03d}Z"


def parse_rfc3339(text: str) -> datetime:
    """Inverse of rfc3339 (accepts any fraction length the schema allows)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
