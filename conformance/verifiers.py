"""Shared verifiers: "expect that" in one line, so a case reads as "send this, expect that".

Each verifier takes what came back and raises `CaseFailed` (expected vs actual, the requirement) when
it does not hold; on success it returns the useful part (a result, an error object). Schema validity
of every reply is already checked by the context (`conformance/context.py`); `expect_schema_valid` is
here for cases and plug-ins that hold a reply obtained some other way.

Verifiers must never send anything except `expect_alive`, which exists to do exactly that.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from stui_protocol_kit.conformance import citations
from stui_protocol_kit.conformance.case import CaseFailed
from stui_protocol_kit.protocol.client import Exchange
from stui_protocol_kit.protocol.codec import parse_rfc3339
from stui_protocol_kit.protocol.validation import validator

if TYPE_CHECKING:
    from stui_protocol_kit.conformance.context import CaseContext, CheckedClient, SessionHandle


def _summary(reply: Any) -> Any:
    """What to show as "actual" for a reply: the error code or the status, not a wall of JSON."""
    if isinstance(reply, dict):
        if reply.get("status") == "error" and isinstance(reply.get("error"), dict):
            error = reply["error"]
            reason = (error.get("details") or {}).get("reason") if isinstance(error.get("details"), dict) else None
            return f"error {error.get('code')}" + (f" ({reason})" if reason else "")
        if reply.get("status") == "success":
            return "success"
    return reply


def expect_success(exchange: Exchange, command: str, requirement: str | None = None) -> dict[str, Any]:
    """A success reply to `command`; returns its result."""
    reply = exchange.reply
    if not isinstance(reply, dict) or reply.get("status") != "success":
        raise CaseFailed(f"success for {command}", _summary(reply), requirement,
                         message=f"{command}: expected success, got {_summary(reply)}"
                         + _error_message(reply))
    if reply.get("command") != command:
        raise CaseFailed(command, reply.get("command"), citations.SUCCESS_SCHEMA)
    return reply["result"]


def _error_message(reply: Any) -> str:
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        return f": {reply['error'].get('message', '')!s}"[:200]
    return ""


def expect_error(exchange: Exchange, code: str, requirement: str | None = None, *,
                 reason: str | None = None) -> dict[str, Any]:
    """An error reply with `code` (and, for InvalidRequest, `details.reason`); returns `error`."""
    return expect_error_in(exchange, [code], requirement, reasons=[reason] if reason else None)


def expect_error_in(exchange: Exchange, codes: Iterable[str], requirement: str | None = None, *,
                    reasons: Iterable[str] | None = None) -> dict[str, Any]:
    """An error reply whose code is one of `codes` (where the spec allows a choice)."""
    codes = list(codes)
    wanted = " or ".join(codes) + (f" ({'/'.join(reasons)})" if reasons else "")
    reply = exchange.reply
    if not isinstance(reply, dict) or reply.get("status") != "error":
        raise CaseFailed(f"error {wanted}", _summary(reply), requirement)
    error = reply["error"]
    if error.get("code") not in codes:
        raise CaseFailed(f"error {wanted}", _summary(reply), requirement,
                         message=f"expected error {wanted}, got {_summary(reply)}{_error_message(reply)}")
    if reasons is not None:
        reasons = list(reasons)
        got = (error.get("details") or {}).get("reason")
        if got not in reasons:
            raise CaseFailed(f"error {wanted}", _summary(reply), requirement,
                             message=f"expected details.reason {' or '.join(reasons)}, got {got!r}")
    return error


def expect_null_echo(exchange: Exchange, requirement: str = "TRN-13") -> None:
    """An error reply to a message rejected at step P1 carries `id: null` and `command: null`."""
    reply = exchange.reply
    got = {"id": reply.get("id"), "command": reply.get("command")}
    if got != {"id": None, "command": None}:
        raise CaseFailed({"id": None, "command": None}, got, requirement)


def expect_echo(exchange: Exchange, request_id: Any, command: Any, requirement: str) -> None:
    reply = exchange.reply
    got = {"id": reply.get("id"), "command": reply.get("command")}
    want = {"id": request_id, "command": command}
    if got != want:
        raise CaseFailed(want, got, requirement)


def expect_schema_valid(reply: Any, *, has_float: bool = True, requirement: str | None = None) -> None:
    """The reply matches the response schemas (for its command / error code)."""
    violations = validator().check_response(reply, has_float=has_float)
    if violations:
        first = violations[0]
        status = reply.get("status") if isinstance(reply, dict) else None
        req = requirement or (citations.SUCCESS_SCHEMA if status == "success" else citations.ERROR_SCHEMA)
        raise CaseFailed("a schema-valid reply", f"{first.path}: {first.message}", req,
                         violations=[v.as_dict() for v in violations])


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON values (spec README): a boolean never equals a number, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def expect_equal(expected: Any, actual: Any, requirement: str | None, what: str = "") -> None:
    """Equal as JSON values."""
    if not json_equal(expected, actual):
        raise CaseFailed(expected, actual, requirement,
                         message=f"{what + ': ' if what else ''}expected {expected!r}, got {actual!r}"[:600])


def expect_state_equal(expected: dict[str, Any], actual: dict[str, Any], requirement: str | None,
                       parts: Iterable[str] = ("workspace", "objects", "inspector", "preferences")) -> None:
    """The named parts of two state documents are equal as JSON values (a missing part differs)."""
    missing = object()
    for part in parts:
        want, got = expected.get(part, missing), actual.get(part, missing)
        if want is missing or got is missing or not json_equal(want, got):
            raise CaseFailed({part: None if want is missing else want}, {part: None if got is missing else got},
                             requirement, message=f"state.{part} differs"[:600])


def expect_true(condition: bool, expected: Any, actual: Any, requirement: str | None, message: str = "") -> None:
    """A named property holds; the catch-all for checks no other verifier expresses."""
    if not condition:
        raise CaseFailed(expected, actual, requirement, message=message)


def expect_timestamp_not_after(earlier: str, later: str, requirement: str | None, what: str) -> None:
    if parse_rfc3339(earlier) > parse_rfc3339(later):
        raise CaseFailed(f"{what} <= {later}", earlier, requirement)


def expect_alive(ctx: CaseContext, session: SessionHandle | None = None, *, revision: int | None = None,
                 requirement: str = "TRN-14", client: CheckedClient | None = None) -> None:
    """The target still answers `hello` (on a new connection) and, given a session, validates it with
    an unchanged revision: what robustness cases check after every malformed message."""
    probe = client or ctx.client()
    expect_success(probe.call("hello", {}), "hello", requirement)
    if session is not None:
        result = expect_success(probe.call("session.validate", session.params()), "session.validate", requirement)
        want = session.revision if revision is None else revision
        expect_equal(want, result["revision"], requirement, "revision after a rejected message")
