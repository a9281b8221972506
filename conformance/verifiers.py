"""Shared verifiers: "expect that" in one line, so a case reads as "send this, expect that".

Each verifier takes what came back and raises `CaseFailed` - a typed problem: the requirement broken,
the JSON path in the reply, expected vs actual - when it does not hold; on success it returns the
useful part (a result, an error object). The reply checks every reply gets are already done by the
context (`conformance/context.py`); `expect_schema_valid` is here for plug-ins that hold a reply
obtained some other way.

A step that expects success states the requirement it checks; without one, it checks the command's
success requirement (`success_requirement`, e.g. RES-1 for session.resume). When the target answered
`SessionExpired`/`SessionNotFound` after the session's deadline (the context marks such exchanges),
a verifier expecting something else skips the case: the target did what the spec says, the case could
not finish in the time the target's settings allow.

Verifiers must never send anything except `expect_alive`, which exists to do exactly that.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from stui_protocol_kit.conformance.case import CaseFailed, CaseSkipped
from stui_protocol_kit.conformance.context import EXPIRED_NOTE
from stui_protocol_kit.protocol.client import Exchange
from stui_protocol_kit.protocol.codec import parse_rfc3339
from stui_protocol_kit.protocol.facts import ErrorCode
from stui_protocol_kit.protocol.problems import Problem, show
from stui_protocol_kit.protocol.reply_checks import SUCCESS_SCHEMA, check_reply_alone
from stui_protocol_kit.protocol.requirements import success_requirement

if TYPE_CHECKING:
    from stui_protocol_kit.conformance.context import CaseContext, CheckedClient, SessionHandle

CREATE_OK = "CRE-1"


def _summary(reply: Any) -> Any:
    """What to show as "actual" for a reply: the error code or the status, not a wall of JSON."""
    if isinstance(reply, dict):
        if reply.get("status") == "error" and isinstance(reply.get("error"), dict):
            error = reply["error"]
            details = error.get("details")
            reason = details.get("reason") if isinstance(details, dict) else None
            return f"error {error.get('code')}" + (f" ({reason})" if reason else "")
        if reply.get("status") == "success":
            return "success"
    return reply


def _error_message(reply: Any) -> str:
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        return f": {reply['error'].get('message', '')!s}"[:200]
    return ""


def _excused(exchange: Exchange) -> None:
    """A SessionExpired/NotFound the spec required (the deadline passed): the case cannot go on."""
    reason = exchange.notes.get(EXPIRED_NOTE)
    if reason:
        raise CaseSkipped(reason)


def expect_success(exchange: Exchange, command: str, requirement: str | None = None) -> dict[str, Any]:
    """A success reply to `command`; returns its result."""
    requirement = requirement or success_requirement(command)
    reply = exchange.reply
    if not isinstance(reply, dict) or reply.get("status") != "success":
        _excused(exchange)
        raise CaseFailed(f"success for {command}", _summary(reply), requirement, path="$.status",
                         message=f"{command}: expected success, got {_summary(reply)}" + _error_message(reply))
    if reply.get("command") != command:
        raise CaseFailed(command, reply.get("command"), SUCCESS_SCHEMA, path="$.command")
    return reply["result"]


def expect_error(exchange: Exchange, code: str, requirement: str, *, reason: str | None = None) -> dict[str, Any]:
    """An error reply with `code` (and, for InvalidRequest, `details.reason`); returns `error`."""
    return expect_error_in(exchange, [code], requirement, reasons=[reason] if reason else None)


def expect_error_in(exchange: Exchange, codes: Iterable[str], requirement: str, *,
                    reasons: Iterable[str] | None = None) -> dict[str, Any]:
    """An error reply whose code is one of `codes` (where the spec allows a choice)."""
    codes = list(codes)
    wanted = " or ".join(codes) + (f" ({'/'.join(reasons)})" if reasons else "")
    reply = exchange.reply
    if not isinstance(reply, dict) or reply.get("status") != "error":
        raise CaseFailed(f"error {wanted}", _summary(reply), requirement, path="$.status")
    error = reply["error"]
    if error.get("code") not in codes:
        if ErrorCode.SessionExpired not in codes and ErrorCode.SessionNotFound not in codes:
            _excused(exchange)
        raise CaseFailed(f"error {wanted}", _summary(reply), requirement, path="$.error.code",
                         message=f"expected error {wanted}, got {_summary(reply)}{_error_message(reply)}")
    if reasons is not None:
        reasons = list(reasons)
        details = error.get("details")
        got = details.get("reason") if isinstance(details, dict) else None
        if got not in reasons:
            raise CaseFailed(" or ".join(reasons), got, requirement, path="$.error.details.reason",
                             message=f"expected details.reason {' or '.join(reasons)}, got {show(got)}")
    return error


def expect_null_echo(exchange: Exchange, requirement: str = "TRN-13") -> None:
    """An error reply to a message rejected at step P1 carries `id: null` and `command: null`."""
    reply = exchange.reply
    for member in ("id", "command"):
        if reply.get(member) is not None:
            raise CaseFailed(None, reply.get(member), requirement, path=f"$.{member}",
                             message=f"a message rejected at step P1 is answered with {member} null, "
                                     f"got {show(reply.get(member))}")


def expect_echo(exchange: Exchange, request_id: Any, command: Any, requirement: str) -> None:
    reply = exchange.reply
    for member, want in (("id", request_id), ("command", command)):
        if reply.get(member) != want:
            raise CaseFailed(want, reply.get(member), requirement, path=f"$.{member}",
                             message=f"{member}: expected {show(want)}, got {show(reply.get(member))}")


def expect_schema_valid(reply: Any, *, has_float: bool = True, requirement: str | None = None) -> None:
    """The reply matches the response schemas (for its command / error code)."""
    problems = check_reply_alone(reply, has_float=has_float)
    if problems:
        if requirement:
            problems = [Problem(requirement, p.message, p.path, p.expected, p.actual, p.rule) for p in problems]
        raise CaseFailed.of(problems, [p.as_dict() for p in problems])


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


def expect_equal(expected: Any, actual: Any, requirement: str, what: str = "", *, path: str | None = None) -> None:
    """Equal as JSON values. `what` names the value for the message; `path` is its JSON path in the
    reply (default: `what` when it reads as a path, e.g. "result.revision" -> "$.result.revision")."""
    if not json_equal(expected, actual):
        where = path or (("$." + what) if what and " " not in what and "(" not in what else "$")
        raise CaseFailed(expected, actual, requirement, path=where,
                         message=f"{what + ': ' if what else ''}expected {show(expected)}, got {show(actual)}"[:600])


def expect_state_equal(expected: dict[str, Any], actual: dict[str, Any], requirement: str,
                       parts: Iterable[str] = ("workspace", "objects", "inspector", "preferences")) -> None:
    """The named parts of two state documents are equal as JSON values (a missing part differs)."""
    missing = object()
    for part in parts:
        want, got = expected.get(part, missing), actual.get(part, missing)
        if want is missing or got is missing or not json_equal(want, got):
            raise CaseFailed(None if want is missing else want, None if got is missing else got, requirement,
                             path=f"$.result.state.{part}", message=f"state.{part} differs")


def expect_true(condition: bool, expected: Any, actual: Any, requirement: str, message: str = "", *,
                path: str = "$") -> None:
    """A named property holds; the catch-all for checks no other verifier expresses."""
    if not condition:
        raise CaseFailed(expected, actual, requirement, message=message, path=path)


def expect_timestamp_not_after(earlier: str, later: str, requirement: str, what: str) -> None:
    if parse_rfc3339(earlier) > parse_rfc3339(later):
        raise CaseFailed(f"{what} <= {later}", earlier, requirement, path=f"$.{what}" if " " not in what else "$")


def expect_alive(ctx: CaseContext, session: SessionHandle | None = None, *, revision: int | None = None,
                 requirement: str = "TRN-14", client: CheckedClient | None = None) -> None:
    """The target still answers `hello` (on a new connection) and, given a session, validates it with
    an unchanged revision: what robustness cases check after every malformed message."""
    probe = client or ctx.client()
    expect_success(probe.call("hello", {}), "hello", requirement)
    if session is not None:
        result = expect_success(probe.call("session.validate", session.params()), "session.validate", requirement)
        want = session.revision if revision is None else revision
        expect_equal(want, result["revision"], requirement, "result.revision",
                     path="$.result.revision")
