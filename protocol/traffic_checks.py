"""Both directions of live (or recorded) STUI traffic, checked: one pure home for `proxy` and for `validate`
of a transcript, built on the checks `run` and `client-check` use.

Theory of operation: `TrafficChecker` sees messages per connection, in the order they passed. A request goes
through `protocol.client_rules.ClientRules` (the client's rules, CLT) and waits, outstanding, for its reply.
A reply is paired with the request it answers - on a REQ-framed connection the one outstanding request; on
a DEALER the outstanding request whose id the reply echoes (a reply with a null id: one whose body had no
valid id; else, with a single request outstanding, that one) - and checked by
`protocol.reply_checks.check_reply` against that request, exactly as the conformance cases check every
reply. Pairing itself can fail:
- a reply on a connection with no request outstanding: a second reply, or a reply to nothing (TRN-3: exactly
  one reply per message);
- a reply whose id matches none of several outstanding requests (ENV-3 for a success, ENV-5 for an error);
- a request still unanswered after `timeout_s` (TRN-3), reported once by `overdue(now)`.

Recorded traffic (`redacted=True`) carries tokens as redaction placeholders: they stand in for valid tokens
while messages are checked, so a transcript gets the verdicts its live traffic got.

This module must never do I/O or read a clock (times are given), and never change a message: it only judges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stui_protocol_kit.protocol import reply_checks
from stui_protocol_kit.protocol.client_rules import CheckedRequest, ClientRules, with_stand_in_tokens
from stui_protocol_kit.protocol.codec import FrameError, decode_body
from stui_protocol_kit.protocol.problems import Problem, show
from stui_protocol_kit.protocol.validation import MessageValidator, validator

UNANSWERED = "TRN-3"
DEFAULT_TIMEOUT_S = 10.0


@dataclass
class Finding:
    """One problem of one message, with where it passed."""

    problem: Problem
    connection: str
    direction: str  # "request" or "reply"
    at: float
    request_id: str | None = None
    command: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**self.problem.as_dict(), "connection": self.connection, "direction": self.direction,
                "at": round(self.at, 6), "request_id": self.request_id, "command": self.command}


@dataclass
class _Outstanding:
    request: CheckedRequest
    req_framed: bool
    overdue: bool = False


@dataclass
class _Connection:
    outstanding: list[_Outstanding] = field(default_factory=list)


@dataclass
class Reply:
    """A reply as the checker read it, with the request it answers (None: paired with nothing)."""

    message: Any
    request: CheckedRequest | None
    findings: list[Finding]
    decode_error: str | None = None


class TrafficChecker:
    """Checks requests and replies per connection. Single-threaded."""

    def __init__(self, limits: Mapping[str, Any] | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 redacted: bool = False, check: MessageValidator | None = None) -> None:
        self.check = check or validator()
        self.rules = ClientRules(limits, check=self.check)
        self.timeout_s = timeout_s
        self.redacted = redacted
        self._connections: dict[str, _Connection] = {}
        self.requests = 0
        self.replies = 0

    @property
    def limits(self) -> dict[str, Any]:
        return self.rules.limits

    def _connection(self, name: str) -> _Connection:
        return self._connections.setdefault(name, _Connection())

    # -- requests -------------------------------------------------------------------------------------

    def request(self, connection: str, body_frames: Sequence[bytes], *, at: float, req_framed: bool = False,
                socket_type: str | None = None) -> tuple[CheckedRequest, list[Finding]]:
        """A request as it passed: its body frames (routing id and delimiter removed)."""
        self.requests += 1
        checked = self.rules.request(connection, body_frames, at=at, socket_type=socket_type)
        self._connection(connection).outstanding.append(_Outstanding(checked, req_framed))
        return checked, [self._finding(p, checked, "request", at) for p in checked.problems]

    # -- replies --------------------------------------------------------------------------------------

    def reply(self, connection: str, body_frames: Sequence[bytes], *, at: float) -> Reply:
        """A reply as it passed back to `connection`: its body frames (delimiter removed)."""
        self.replies += 1
        message, has_float, decode_error = self._decode(body_frames)
        has_null = len(body_frames) != 1 or b"null" in body_frames[0]
        conn = self._connection(connection)
        paired, pairing = self._pair(conn, message)
        findings: list[Finding] = []
        request = paired.request if paired is not None else None
        where = request or CheckedRequest(connection, at)
        for problem in pairing:
            findings.append(self._finding(problem, where, "reply", at, connection))
        checked_message = with_stand_in_tokens(message) if self.redacted else message
        request_message = request.message if request is not None else None
        if self.redacted and request_message is not None:
            request_message = with_stand_in_tokens(request_message)
        for problem in reply_checks.check_reply(checked_message, request_message, limits=self.limits,
                                                has_float=has_float, decode_error=decode_error, check=self.check,
                                                has_null=has_null):
            findings.append(self._finding(problem, where, "reply", at, connection))
        if request is not None:
            self.rules.replied(request, message, at)
        return Reply(message, request, findings, decode_error)

    def _decode(self, body_frames: Sequence[bytes]) -> tuple[Any, bool, str | None]:
        if len(body_frames) != 1:
            return None, False, f"{len(body_frames)} body frames"
        try:
            decoded = decode_body(bytes(body_frames[0]), max_bytes=len(body_frames[0]) + 1, max_depth=100_000,
                                  require_object=False)
        except FrameError as exc:
            return None, False, exc.message
        return decoded.message, decoded.has_float, None

    def _pair(self, conn: _Connection, message: Any) -> tuple[_Outstanding | None, list[Problem]]:
        waiting = conn.outstanding
        reply_id = message.get("id") if isinstance(message, dict) else None
        if not waiting:
            return None, [Problem(UNANSWERED, "a reply on a connection with no request outstanding: a second reply,"
                                  " or a reply to nothing (exactly one reply per message)", "$.id",
                                  "no reply", reply_id, "reply-to-nothing")]
        chosen: _Outstanding | None = None
        if waiting[0].req_framed:
            chosen = waiting[0]  # REQ framing: replies come in order, one at a time
        else:
            by_id = [o for o in waiting if self.check.echo_id(o.request.message) == reply_id and reply_id is not None]
            if by_id:
                chosen = by_id[0]
            elif reply_id is None:
                nameless = [o for o in waiting if self.check.echo_id(o.request.message) is None]
                chosen = nameless[0] if nameless else (waiting[0] if len(waiting) == 1 else None)
            elif len(waiting) == 1:
                chosen = waiting[0]  # check_reply says what is wrong with its echo
        if chosen is None:
            status = message.get("status") if isinstance(message, dict) else None
            requirement = reply_checks.ERROR_ECHO_ID if status == "error" else reply_checks.SUCCESS_SCHEMA
            ids = [o.request.request_id for o in waiting]
            return None, [Problem(requirement, f"a reply whose id matches none of the {len(waiting)} requests"
                                  " outstanding on this connection", "$.id", ids, reply_id, "pairing")]
        waiting.remove(chosen)
        return chosen, []

    # -- time -----------------------------------------------------------------------------------------

    def overdue(self, now: float) -> list[Finding]:
        """Requests unanswered for longer than `timeout_s`, each reported once (TRN-3)."""
        found = []
        for name, conn in self._connections.items():
            for waiting in conn.outstanding:
                if not waiting.overdue and now - waiting.request.at > self.timeout_s:
                    waiting.overdue = True
                    found.append(self._finding(Problem(
                        UNANSWERED, f"no reply within {self.timeout_s:g}s (the proxy's --timeout)", "$",
                        f"a reply within {self.timeout_s:g}s", "no reply", "unanswered", "request"),
                        waiting.request, "request", now, name))
        return found

    def outstanding(self, connection: str | None = None) -> int:
        conns = [self._connection(connection)] if connection else list(self._connections.values())
        return sum(len(c.outstanding) for c in conns)

    def forget(self, connection: str) -> None:
        """The connection is gone; its outstanding requests will get no reply through it."""
        self._connections.pop(connection, None)

    def _finding(self, problem: Problem, request: CheckedRequest, direction: str, at: float,
                 connection: str | None = None) -> Finding:
        scrub = self.rules.scrub
        clean = Problem(problem.requirement, scrub(problem.message), problem.path, scrub(problem.expected),
                        scrub(problem.actual), problem.rule, problem.subject)
        return Finding(clean, connection or request.connection, direction, at, scrub(request.request_id),
                       request.command)


def describe(finding: Finding) -> str:
    """One line for a terminal or log: requirement, where, what."""
    problem = finding.problem
    where = f"{finding.connection} {finding.direction} {finding.command or '?'} id={show(finding.request_id, 40)}"
    line = f"[{problem.requirement}] {where} at {problem.path}: {problem.message.splitlines()[0][:300]}"
    if problem.expected is not None or problem.actual is not None:
        line += f" (expected {show(problem.expected, 80)}, actual {show(problem.actual, 80)})"
    return line
