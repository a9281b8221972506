"""client-check's scenarios: what the kit, playing the server, provokes and what a client must do then.

Theory of operation:
1. A scenario waits for a request it can use (its trigger: `eligible`), answers that request in its own way
   (`start` returns a `Plan`: a made-up reply, the engine's reply held back or never sent, a restart, the
   engine's reply with members a newer server might add, ...) and then follows the client's next requests
   and the replies they get until it can conclude: PASSED when the client did what spec/16-clients.md
   asks, FAILED with typed problems citing the CLT requirement it broke.
2. Scenarios run one at a time, in the order given: the next one waits for its trigger only once the one
   before has concluded. A client that never gets past one scenario (it crashed, hung or stopped) leaves
   the later ones NOT EXERCISED - never passed.
3. What the kit made up stays true: a session a scenario ended (SessionExpired, SessionNotFound,
   InvalidToken) keeps answering so for the rest of the run (`Director.poisoned`), except a retry of a
   request sent before, which the engine answers from its cache as a server would.
4. "Carried on" - the evidence that a client survived (CLT-11) - is a later request the kit answered with
   success. A scenario after which the client sent nothing more that succeeded fails on CLT-11 when the
   run ends.

Every scenario here is named, and its `provokes` and `passes` texts are what `client-check --list` and the
docs show. This module must never do I/O or read a clock (the kit gives the time) and must never import
the reference server: the kit's server (kit_server.py) carries out the plans.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

from stui_protocol_kit.protocol.client_rules import (
    ENDED_SESSIONS,
    REQ_LOCKSTEP,
    REQUEST_IDS,
    SCHEMA,
    VERSION,
    CheckedRequest,
)
from stui_protocol_kit.protocol.codec import rfc3339
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION, SESSION_SCOPED_COMMANDS, Command, ErrorCode, Limit
from stui_protocol_kit.protocol.problems import Problem, show

# The client requirements the scenarios cite (spec/16-clients.md).
RETRY_AFTER_TIMEOUT = "CLT-8"
KEEP_THE_SESSION = "CLT-9"
RESOLVE_CONFLICT = "CLT-10"
SURVIVE = "CLT-11"

# A code no v1 registry holds, as a newer server might send it (ERR-5, CLT-11).
UNKNOWN_ERROR_CODE = "Overloaded"
# What a newer server might add: members of the envelope, the result, the details, hello's limits and
# capabilities. Their names are chosen never to collide with a v1 member.
NEWER_ENVELOPE_MEMBER = ("trace_id", "c0ffee-client-check")
NEWER_RESULT_MEMBER = ("server_timing_us", {"parse": 12, "execute": 40})
NEWER_DETAILS_MEMBER = ("help_url", "https://example.invalid/stui/errors")
NEWER_LIMIT = ("max_future_widgets", 7)
NEWER_CAPABILITY = "stream.v2"
NEWER_SERVER_MEMBER = ("build", "client-check")
NEWER_VERSION = "2.0"  # what the unsupported-version scenario says the server speaks instead


class Status(StrEnum):
    WAITING = "waiting"  # not triggered (yet): NOT EXERCISED if the run ends so
    ACTIVE = "active"  # triggered, following the client
    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True)
class Settings:
    """What the scenarios are told by the command line."""

    reply_delay_s: float = 10.0  # slow-reply: how long the reply is held (longer than the client's timeout)
    restart_pause_s: float = 0.3  # server-restart: how long the endpoint stays unbound
    max_sessions_per_client: int = 16  # create-limit: the limit the LimitExceeded names


@dataclass(frozen=True)
class Plan:
    """How the kit answers one request.

    - `serve`: the engine answers (after `before`, when given); `alter` may rewrite the engine's reply;
    - `answer`: the kit sends `message` instead, the engine never sees the request;
    - `hold`: the engine answers now, the reply leaves `delay_s` later;
    - `drop`: the engine answers, the reply is never sent;
    - `restart`: the request is lost unprocessed and the kit's server restarts (same store, state kept)."""

    kind: Literal["serve", "answer", "hold", "drop", "restart"] = "serve"
    message: dict[str, Any] | None = None
    delay_s: float = 0.0
    alter: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    before: Callable[[Kit], None] | None = None


SERVE = Plan()


class Kit(Protocol):
    """What a scenario may ask of the kit's server."""

    def now(self) -> float: ...

    def snapshot_as_another_writer(self, session_id: str, token: str) -> bool:
        """Snapshot the session through the engine as a second client would (state unchanged)."""
        ...

    def holds_session(self, session_id: str) -> bool:
        """The session was created in this run and has not ended (closed, expired, not found)."""
        ...


def error_reply(request: CheckedRequest, code: str, message: str, details: Mapping[str, Any] | None, at: float,
                ) -> dict[str, Any]:
    """An error reply to a valid request, built as spec/02-envelope.md says (id and command echoed)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = dict(details)
    return {"id": request.request_id, "version": PROTOCOL_VERSION, "command": request.command, "status": "error",
            "error": error, "timestamp": rfc3339(at)}


def is_success(reply: Any) -> bool:
    return isinstance(reply, dict) and reply.get("status") == "success"


def _valid(request: CheckedRequest) -> bool:
    """A request a scenario may take: one the engine would dispatch (it passed the framing and schema rules
    and names a command) and not a retry, which gets what its original got."""
    return (request.command is not None and not request.retry
            and not any(p.requirement in ("CLT-1", SCHEMA) for p in request.problems))


class Scenario:
    """One situation the kit provokes. Subclasses set the texts and override the hooks they need."""

    name = ""
    title = ""
    provokes = ""  # what the kit does, for --list and the docs
    passes = ""  # what the client must do
    requirements: tuple[str, ...] = ()
    keeps_session = False  # CLT-9: the client must go on with the session the trigger concerned

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.status = Status.WAITING
        self.trigger: CheckedRequest | None = None
        self.session_id: str | None = None
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.started_at: float | None = None
        self.concluded_at: float | None = None
        self.used_session_again = False

    # -- hooks ----------------------------------------------------------------------------------------

    def eligible(self, request: CheckedRequest, kit: Kit) -> bool:
        raise NotImplementedError

    def start(self, request: CheckedRequest, kit: Kit) -> Plan:
        raise NotImplementedError

    def follow(self, request: CheckedRequest, kit: Kit) -> Plan | None:
        """A later request while ACTIVE: judge it; return a plan to answer it another way, else None."""
        if self.keeps_session and request.command == Command.SESSION_CREATE and not self.used_session_again:
            self.fail(Problem(KEEP_THE_SESSION, "the client created a new session instead of going on with its"
                              f" session after {self.title}", "$.command", "a request on the same session",
                              request.command, "keep-session", "request"), kit)
        if self.session_id is not None and request.session_id == self.session_id:
            self.used_session_again = True
        return None

    def answered(self, request: CheckedRequest, reply: Any, kit: Kit) -> None:
        """A later reply the kit sent while ACTIVE (default: a success on the same session passes when the
        scenario keeps the session, any success otherwise)."""
        if not is_success(reply):
            return
        if self.keeps_session and request.session_id != self.session_id:
            return
        self.passed(kit, f"the client carried on: {request.command} succeeded afterwards")

    def tick(self, kit: Kit) -> None:
        """Time passed (no request needed)."""

    def end(self, kit: Kit) -> None:
        """The run ends while ACTIVE: the client never showed it carried on."""
        self.fail(Problem(SURVIVE, f"after {self.title} the client sent no request that succeeded: it did not carry"
                          " on (it may have crashed, hung or given up)", "$", "a later request that succeeds",
                          "none", "carried-on", "sequence"), kit)

    # -- conclusions ----------------------------------------------------------------------------------

    def passed(self, kit: Kit, note: str) -> None:
        if self.status is Status.ACTIVE:
            self.status, self.concluded_at = Status.PASSED, kit.now()
            self.notes.append(note)

    def fail(self, problem: Problem, kit: Kit) -> None:
        if self.status in (Status.ACTIVE, Status.PASSED):
            self.problems.append(problem)
            self.status, self.concluded_at = Status.FAILED, kit.now()

    def begin(self, request: CheckedRequest, kit: Kit) -> Plan:
        self.status, self.trigger, self.started_at = Status.ACTIVE, request, kit.now()
        self.session_id = request.session_id
        plan = self.start(request, kit)
        self.notes.append(f"triggered by {request.command} (id {show(request.request_id)}) on connection"
                          f" {request.connection}")
        return plan


# -- the scenarios -----------------------------------------------------------------------------------


class _EndsSession(Scenario):
    """Answers the trigger with an error that ends the session for the client; the session keeps answering
    so. Passes when the client leaves the session alone and carries on (a later success elsewhere)."""

    code: ErrorCode
    commands: frozenset[str] = frozenset({Command.SESSION_RESUME})
    requirements = (ENDED_SESSIONS, SURVIVE)

    def eligible(self, request: CheckedRequest, kit: Kit) -> bool:
        return _valid(request) and request.command in self.commands and request.session_id is not None

    def details(self, kit: Kit) -> dict[str, Any] | None:
        return None

    def start(self, request: CheckedRequest, kit: Kit) -> Plan:
        return Plan("answer", error_reply(request, self.code, self.text, self.details(kit), kit.now()))

    text = ""

    def follow(self, request: CheckedRequest, kit: Kit) -> Plan | None:
        ended_for = self.trigger.token_fingerprint if self.code == ErrorCode.InvalidToken and self.trigger else None
        if request.session_id == self.session_id and (ended_for is None or request.token_fingerprint == ended_for):
            for problem in request.problems:
                if problem.requirement == ENDED_SESSIONS:
                    self.fail(problem, kit)
        return None

    def answered(self, request: CheckedRequest, reply: Any, kit: Kit) -> None:
        if is_success(reply) and request.session_id != self.session_id:
            self.passed(kit, f"the client left the session alone and carried on: {request.command} succeeded")


class ResumeExpired(_EndsSession):
    name = "resume-expired"
    title = "SessionExpired on resume"
    code = ErrorCode.SessionExpired
    text = "the session has expired"
    provokes = ("the first session.resume of a session is answered SessionExpired (expired_at: now); the session"
                " answers SessionExpired from then on")
    passes = ("the client sends no new request on that session (CLT-7) and carries on, e.g. with session.create"
              " (CLT-11)")

    def details(self, kit: Kit) -> dict[str, Any] | None:
        return {"expired_at": rfc3339(kit.now())}


class ResumeNotFound(_EndsSession):
    name = "resume-not-found"
    title = "SessionNotFound on resume"
    code = ErrorCode.SessionNotFound
    text = "no session with this id exists"
    provokes = ("the first session.resume of a session is answered SessionNotFound (as after a purge); the session"
                " answers SessionNotFound from then on")
    passes = "the client sends no new request on that session (CLT-7) and carries on (CLT-11)"


class InvalidTokenScenario(_EndsSession):
    name = "invalid-token"
    title = "InvalidToken"
    code = ErrorCode.InvalidToken
    text = "the token does not match the session"
    commands = frozenset(SESSION_SCOPED_COMMANDS - {Command.SESSION_CLOSE})
    provokes = ("the first session-scoped request (other than session.close) is answered InvalidToken; the session"
                " answers InvalidToken to that token from then on")
    passes = "the client sends that token with no new request (CLT-7) and carries on (CLT-11)"


class RevisionConflictScenario(Scenario):
    name = "revision-conflict"
    title = "RevisionConflict on snapshot"
    provokes = ("right before the first session.snapshot that carries expected_revision, the kit snapshots the"
                " session itself as a second client would, so the engine answers RevisionConflict")
    passes = ("the client does not send the snapshot again with the stale expected_revision (CLT-10), goes on"
              " with its session (CLT-9) and a later request on it succeeds (CLT-11)")
    requirements = (RESOLVE_CONFLICT, KEEP_THE_SESSION, SURVIVE)
    keeps_session = True

    def eligible(self, request: CheckedRequest, kit: Kit) -> bool:
        return (_valid(request) and request.command == Command.SESSION_SNAPSHOT
                and isinstance(request.parameters.get("expected_revision"), int))

    def start(self, request: CheckedRequest, kit: Kit) -> Plan:
        session_id, token = request.parameters["session_id"], request.parameters["token"]

        def another_writer(inner: Kit) -> None:
            if not inner.snapshot_as_another_writer(session_id, token):
                self.notes.append("the kit's own snapshot did not succeed: the engine answers the client's as it is")

        return Plan("serve", before=another_writer)

    def answered(self, request: CheckedRequest, reply: Any, kit: Kit) -> None:
        if request is self.trigger:
            return
        super().answered(request, reply, kit)

    def follow(self, request: CheckedRequest, kit: Kit) -> Plan | None:
        super().follow(request, kit)
        stale = self.trigger.parameters.get("expected_revision") if self.trigger else None
        if (request.session_id == self.session_id and request.command == Command.SESSION_SNAPSHOT
                and not request.retry and request.parameters.get("expected_revision") == stale):
            self.fail(Problem(RESOLVE_CONFLICT, "after RevisionConflict the client sent a snapshot with the same"
                              " stale expected_revision again", "$.parameters.expected_revision",
                              "the current_revision from the conflict (or a resume first)", stale,
                              "stale-revision", "request"), kit)
        return None


class _HeldReply(Scenario):
    """The engine executes the trigger; its reply is held back (slow) or never sent (dropped). Passes when
    the client retries it with the same id, command and parameters (CLT-8), the retry breaking no rule."""

    requirements = (RETRY_AFTER_TIMEOUT, KEEP_THE_SESSION, REQ_LOCKSTEP, REQUEST_IDS, SURVIVE)
    keeps_session = True

    def eligible(self, request: CheckedRequest, kit: Kit) -> bool:
        return _valid(request) and request.session_id is not None and request.command != Command.SESSION_CLOSE

    def follow(self, request: CheckedRequest, kit: Kit) -> Plan | None:
        trigger = self.trigger
        assert trigger is not None
        if request.request_id == trigger.request_id and request.retry:
            bad = [p for p in request.problems if p.requirement in (REQ_LOCKSTEP, REQUEST_IDS)]
            for problem in bad:
                self.fail(problem, kit)
            if not bad:
                self.passed(kit, f"the client retried with the same id on connection {request.connection}"
                                 f"{' (a new connection)' if request.connection != trigger.connection else ''}")
            return None
        if (request.session_id == self.session_id and request.command == trigger.command
                and request.parameters == trigger.parameters and request.request_id != trigger.request_id):
            self.fail(Problem(RETRY_AFTER_TIMEOUT, "the client sent the request again under a new id, so a server"
                              " would execute it twice", "$.id", trigger.request_id, request.request_id,
                              "retry-same-id", "request"), kit)
            return None
        super().follow(request, kit)
        return None

    def answered(self, request: CheckedRequest, reply: Any, kit: Kit) -> None:
        """Only the retry concludes these scenarios (in `follow`)."""

    def end(self, kit: Kit) -> None:
        self.fail(Problem(RETRY_AFTER_TIMEOUT, f"the client never retried the request whose reply was"
                          f" {'held back' if isinstance(self, SlowReply) else 'dropped'} (before the run ended)", "$",
                          "a retry with the same id", "none", "retry-same-id", "sequence"), kit)


class SlowReply(_HeldReply):
    name = "slow-reply"
    title = "a reply slower than the client's timeout"
    provokes = ("the engine executes the first session-scoped request (other than session.close)"
                " on a session created in this run; its reply"
                " leaves only after --reply-delay seconds, which must be longer than the client's timeout")
    passes = ("the client retries the request with the same id, command and parameters before the delay is over"
              " (CLT-8; a REQ client on a new socket, CLT-5) and goes on with its session (CLT-9); it ignores the"
              " late original reply")

    def start(self, request: CheckedRequest, kit: Kit) -> Plan:
        self.due = kit.now() + self.settings.reply_delay_s
        return Plan("hold", delay_s=self.settings.reply_delay_s)

    def tick(self, kit: Kit) -> None:
        if self.status is Status.ACTIVE and kit.now() >= self.due:
            self.fail(Problem(RETRY_AFTER_TIMEOUT, f"no retry within --reply-delay ({self.settings.reply_delay_s:g}s):"
                              " the client waited longer than that, or gave up without retrying", "$",
                              "a retry with the same id", "none", "retry-same-id", "sequence"), kit)


class DroppedReply(_HeldReply):
    name = "dropped-reply"
    title = "a dropped reply"
    provokes = ("the engine executes the first session-scoped request (other than session.close)"
                " on a session created in this run; its reply is"
                " never sent")
    passes = ("the client times out and retries with the same id, command and parameters (CLT-8; a REQ client on a"
              " new socket, CLT-5) and goes on with its session (CLT-9)")

    def start(self, request: CheckedRequest, kit: Kit) -> Plan:
        return Plan("drop")


class ServerRestart(Scenario):
    name = "server-restart"
    title = "a server restart mid-session"
    requirements = (KEEP_THE_SESSION, SURVIVE)
    keeps_session = True
    provokes = ("the first session-scoped request (other than session.close)"
                " on a session created in this run is lost unprocessed and the kit's"
                " server restarts: the endpoint is unbound for --restart-pause, then served by a new engine on the"
                " same store, so the session survives and a resume answers source: \"durable\"")
    passes = ("the client reconnects, goes on with the same session (a retry of the lost request or a resume,"
              " CLT-9) and it succeeds (CLT-11)")

    def eligible(self, request: CheckedRequest, kit: Kit) -> bool:
        return _valid(request) and request.session_id is not None and request.command != Command.SESSION_CLOSE

    def start(self, request: CheckedRequest, kit: Kit) -> Plan:
        return Plan("restart")

    def answered(self, request: CheckedRequest, reply: Any, kit: Kit) -> None:
        if is_success(reply) and request.session_id == self.session_id and request.command == Command.SESSION_RESUME:
            source = (reply.get("result") or {}).get("source")
            self.notes.append(f"session.resume after the restart answered source: {json.dumps(source)}")
        super().answered(request, reply, kit)


class UnknownErrorCode(Scenario):
    name = "unknown-error-code"
    title = f"an unknown error code ({UNKNOWN_ERROR_CODE})"
    requirements = (KEEP_THE_SESSION, SURVIVE)
    keeps_session = True
    provokes = (f"the first session-scoped request (other than session.close)"
                " on a session created in this run is answered with error code"
                f" {UNKNOWN_ERROR_CODE!r}, which no v1 registry holds (as a newer server might), without executing it")
    passes = ("the client treats it as a failure of that request only: it goes on with the same session (CLT-9) and"
              " a later request on it succeeds (CLT-11)")

    def eligible(self, request: CheckedRequest, kit: Kit) -> bool:
        return _valid(request) and request.session_id is not None and request.command != Command.SESSION_CLOSE

    def start(self, request: CheckedRequest, kit: Kit) -> Plan:
        return Plan("answer", error_reply(request, UNKNOWN_ERROR_CODE, "the server is overloaded; try again",
                                          {"retry_after_ms": 100}, kit.now()))


class UnknownMembers(Scenario):
    name = "unknown-members"
    title = "unknown members from a newer server"
    requirements = (SURVIVE,)
    provokes = ("from the first request on, every reply carries members v1 does not define, as a newer minor"
                " version may add them: in the envelope, the result, error details, hello's limits, server and"
                f" capabilities ({NEWER_CAPABILITY!r})")
    passes = "the client ignores them (CMP-2) and carries on: a request after such a success reply succeeds (CLT-11)"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.altered_successes = 0

    def eligible(self, request: CheckedRequest, kit: Kit) -> bool:
        return _valid(request)

    def start(self, request: CheckedRequest, kit: Kit) -> Plan:
        return Plan("serve", alter=self.alter)

    def follow(self, request: CheckedRequest, kit: Kit) -> Plan | None:
        return Plan("serve", alter=self.alter) if self.status is Status.ACTIVE else None

    def answered(self, request: CheckedRequest, reply: Any, kit: Kit) -> None:
        if not is_success(reply):
            return
        if self.altered_successes > 0:
            self.passed(kit, f"the client carried on after {self.altered_successes} reply(ies) with unknown members:"
                             f" {request.command} succeeded")
        self.altered_successes += 1

    @staticmethod
    def alter(reply: dict[str, Any]) -> dict[str, Any]:
        out = dict(reply)
        out[NEWER_ENVELOPE_MEMBER[0]] = NEWER_ENVELOPE_MEMBER[1]
        result = out.get("result")
        if isinstance(result, dict):
            result = dict(result)
            result[NEWER_RESULT_MEMBER[0]] = NEWER_RESULT_MEMBER[1]
            if out.get("command") == Command.HELLO:
                if isinstance(result.get("limits"), dict):
                    result["limits"] = {**result["limits"], NEWER_LIMIT[0]: NEWER_LIMIT[1]}
                if isinstance(result.get("capabilities"), list):
                    result["capabilities"] = [*result["capabilities"], NEWER_CAPABILITY]
                if isinstance(result.get("server"), dict):
                    result["server"] = {**result["server"], NEWER_SERVER_MEMBER[0]: NEWER_SERVER_MEMBER[1]}
            out["result"] = result
        error = out.get("error")
        if isinstance(error, dict) and isinstance(error.get("details"), dict):
            out["error"] = {**error, "details": {**error["details"], NEWER_DETAILS_MEMBER[0]: NEWER_DETAILS_MEMBER[1]}}
        return out


class CreateLimit(Scenario):
    name = "create-limit"
    title = "LimitExceeded on create"
    requirements = (SURVIVE,)
    provokes = ("the first session.create is answered LimitExceeded (max_sessions_per_client), without executing it;"
                " later creates are served")
    passes = "the client reports the failure and carries on: a later request succeeds (CLT-11)"

    def eligible(self, request: CheckedRequest, kit: Kit) -> bool:
        return _valid(request) and request.command == Command.SESSION_CREATE

    def start(self, request: CheckedRequest, kit: Kit) -> Plan:
        limit = self.settings.max_sessions_per_client
        return Plan("answer", error_reply(
            request, ErrorCode.LimitExceeded,
            f"client already holds {limit} active sessions; the limit is {limit}",
            {"limit": Limit.MAX_SESSIONS_PER_CLIENT.value, "value": limit}, kit.now()))


class UnsupportedVersion(Scenario):
    name = "unsupported-version"
    title = "UnsupportedVersion"
    requirements = (VERSION,)
    provokes = (f"the first request is answered UnsupportedVersion with supported_versions [{NEWER_VERSION!r}], as a"
                " server that no longer speaks 1.0 would; later requests are served")
    passes = (f"the client sends nothing but hello on that connection in a version other than {NEWER_VERSION!r}"
              " (CLT-3): it stops, or asks hello again (which the kit answers normally). Stopping and crashing look the"
              " same from the server's side")

    def eligible(self, request: CheckedRequest, kit: Kit) -> bool:
        return _valid(request)

    def start(self, request: CheckedRequest, kit: Kit) -> Plan:
        return Plan("answer", error_reply(
            request, ErrorCode.UnsupportedVersion,
            f"version {PROTOCOL_VERSION} is not supported; this server speaks {NEWER_VERSION}",
            {"supported_versions": [NEWER_VERSION]}, kit.now()))

    def follow(self, request: CheckedRequest, kit: Kit) -> Plan | None:
        if self.trigger is not None and request.connection == self.trigger.connection:
            for problem in request.problems:
                if problem.requirement == VERSION:
                    self.fail(problem, kit)
        return None

    def answered(self, request: CheckedRequest, reply: Any, kit: Kit) -> None:
        if is_success(reply) and request.command == Command.HELLO:
            self.passed(kit, "the client asked hello again and went on only after it succeeded")

    def end(self, kit: Kit) -> None:
        self.passed(kit, "the client sent no request in an unsupported version afterwards (it stopped)")


# The scenarios in the order they run by default: those that leave a session usable first, those that end
# a session or the conversation last.
SCENARIOS: tuple[type[Scenario], ...] = (
    UnknownMembers, SlowReply, DroppedReply, UnknownErrorCode, RevisionConflictScenario, ServerRestart,
    InvalidTokenScenario, ResumeExpired, ResumeNotFound, CreateLimit, UnsupportedVersion,
)
BY_NAME: dict[str, type[Scenario]] = {s.name: s for s in SCENARIOS}


@dataclass
class _Poison:
    reply_code: ErrorCode
    message: str
    details: dict[str, Any] | None
    at: float
    token: str | None  # InvalidToken: this token only


@dataclass
class Director:
    """Runs the selected scenarios one at a time and keeps what they made up true."""

    scenarios: list[Scenario]
    poisoned: dict[str, _Poison] = field(default_factory=dict)

    @classmethod
    def of(cls, names: Iterable[str], settings: Settings) -> Director:
        return cls([BY_NAME[name](settings) for name in names])

    @property
    def current(self) -> Scenario | None:
        """The scenario that waits for its trigger or follows the client (None: all concluded)."""
        for scenario in self.scenarios:
            if scenario.status in (Status.WAITING, Status.ACTIVE):
                return scenario
        return None

    def plan(self, request: CheckedRequest, kit: Kit) -> Plan:
        """How to answer `request`: a poisoned session's answer, the active scenario's follow-up, a new
        trigger, or the engine."""
        current = self.current
        plan: Plan | None = None
        followed = current is not None and current.status is Status.ACTIVE
        if followed:
            assert current is not None
            plan = current.follow(request, kit)
        poison = self._poisoned(request)
        if poison is not None:
            return Plan("answer", error_reply(request, poison.reply_code, poison.message, poison.details, kit.now()))
        if plan is not None or followed:
            # A request that concluded one scenario never triggers the next: it gets its ordinary answer.
            return plan or SERVE
        if (current is not None and current.status is Status.WAITING and current.eligible(request, kit)
                and (not current.keeps_session or request.session_id is None
                     or kit.holds_session(request.session_id))):
            # A scenario that judges whether the client goes on with its session starts only on a session
            # the kit holds: a request naming one the kit never knew (a session file left by an earlier
            # run) gets SessionNotFound from the engine, and a correct client then creates a new session.
            plan = current.begin(request, kit)
            if isinstance(current, _EndsSession) and request.session_id is not None:
                message = plan.message or {}
                error = message.get("error", {})
                token = request.token_fingerprint if current.code == ErrorCode.InvalidToken else None
                self.poisoned[request.session_id] = _Poison(current.code, error.get("message", ""),
                                                            error.get("details"), kit.now(), token)
            return plan
        return SERVE

    def _poisoned(self, request: CheckedRequest) -> _Poison | None:
        session_id = request.session_id
        poison = self.poisoned.get(session_id) if session_id is not None else None
        if poison is None or (poison.token is not None and request.token_fingerprint != poison.token):
            return None
        if request.retry and request.first_seen_at is not None and request.first_seen_at <= poison.at:
            return None  # a retry of a request sent before: the engine answers it from its cache
        return poison

    def answered(self, request: CheckedRequest, reply: Any, kit: Kit) -> None:
        """A reply the kit sent (also a held one, when it leaves)."""
        current = self.current
        if current is not None and current.status is Status.ACTIVE and current.started_at is not None:
            current.answered(request, reply, kit)

    def tick(self, kit: Kit) -> None:
        current = self.current
        if current is not None and current.status is Status.ACTIVE:
            current.tick(kit)

    def end(self, kit: Kit) -> None:
        for scenario in self.scenarios:
            if scenario.status is Status.ACTIVE:
                scenario.end(kit)
