"""A pure model of a v1 server, as the spec fixes it: what a correct target must answer next.

Theory of operation:
1. The model sees the same requests as the target, in order, and after each one the target's reply.
   `observe(request, reply, now)` returns the problems (reply vs. what the spec allows) and then moves
   the model to the state the reply implies. Where the spec leaves a choice (a session that may or may
   not have expired yet at a timing boundary, a retry-cache entry at the edge of its window, `source`
   after a restart), the model accepts every allowed reply and follows the one observed.
2. Lifecycle decisions come from `stui_protocol_kit.protocol.lifecycle`: each model session holds a
   `SessionLifecycle` (transitions, deadline and retention formulas, the error each state answers);
   the model adds only its timing slack and never restates them. Everything else follows
   docs/architecture.md "Protocol decisions": error precedence, revisions, retries keyed by
   (session_id, id) and (client_id, id), client-owned `inspector`/`preferences`, server-owned
   workspace bindings, restart to the durable state.
3. Evaluate is predicted only for the small subset the generators write (integer and string
   literals, variables, `+ - * ,` left to right, `name := expr`, statements separated by `.`); code
   outside it makes the model accept any success or EvaluationError and forget what it assigned.

This module must never do I/O, never read a clock (time is passed in) and never depend on the
reference server: it is the suite's independent opinion of what the spec says.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from stui_protocol_kit.conformance.context import RetryTraffic
from stui_protocol_kit.protocol.facts import DURABLE_RETRY_COMMANDS, RETRY_CACHED_COMMANDS, Capability, ErrorCode
from stui_protocol_kit.protocol.lifecycle import Event, SessionLifecycle, State, Timeouts
from stui_protocol_kit.protocol.problems import Problem, show
from stui_protocol_kit.protocol.validation import MessageValidator, validator

Json = Any

# How far local timing may be off the server's when judging expiry and the retry window: the model
# measures at send/receive time, the server at processing time, over a noisy machine.
TIMING_SLACK_S = 1.5
SMALL_INTEGER_MIN = -(2**60)
SMALL_INTEGER_MAX = 2**60 - 1


# Errors of steps P2-P5, which a request the schemas accept never gets.
_PRE_DISPATCH_ERRORS = frozenset({"InvalidRequest", ErrorCode.UnknownCommand, ErrorCode.UnsupportedVersion})


class _Unknown:
    """A workspace binding the model cannot predict (assigned by code outside the subset)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class ExpectedBinding:
    cls: str
    print_string: str

    def as_json(self) -> dict[str, str]:
        return {"class": self.cls, "print_string": self.print_string}


# -- the evaluate subset ------------------------------------------------------------------------------


class SubsetError(Exception):
    """The code is inside the subset and must fail with EvaluationError (e.g. an undefined variable)."""


class OutsideSubset(Exception):
    """The code is not in the subset the model predicts."""


_TOKEN = re.compile(r"\s*(?:(?P<int>\d+)|(?P<name>[A-Za-z][A-Za-z0-9_]*)|(?P<str>'(?:[^']|'')*')|(?P<op>:=|[-+*,.()]))")


def _tokens(code: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(code):
        if code[pos:].strip() == "":
            break
        match = _TOKEN.match(code, pos)
        if not match:
            raise OutsideSubset(code[pos:pos + 10])
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _value(value: int | str) -> ExpectedBinding:
    if isinstance(value, int):
        if SMALL_INTEGER_MIN <= value <= SMALL_INTEGER_MAX:
            return ExpectedBinding("SmallInteger", str(value))
        return ExpectedBinding("LargePositiveInteger" if value > 0 else "LargeNegativeInteger", str(value))
    cls = "ByteString" if not value or max(value) <= "\xff" else "WideString"
    return ExpectedBinding(cls, "'" + value.replace("'", "''") + "'")


def evaluate_subset(code: str, variables: dict[str, Any]) -> tuple[ExpectedBinding, dict[str, ExpectedBinding]]:
    """(value, assignments) for code in the generators' subset; SubsetError when the spec demands an
    EvaluationError; OutsideSubset when the model does not predict this code. `variables` maps names
    to raw Python values (int or str) or UNKNOWN."""
    tokens = _tokens(code)
    env: dict[str, Any] = dict(variables)
    assigned: dict[str, Any] = {}
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def primary() -> Any:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise OutsideSubset("missing operand")
        kind, text = tok
        pos += 1
        if kind == "int":
            return int(text)
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "op" and text == "-":
            nxt = peek()
            if nxt is None or nxt[0] != "int":
                raise OutsideSubset("minus")
            pos += 1
            return -int(nxt[1])
        if kind == "name":
            if text in ("self", "super", "thisContext", "nil", "true", "false"):
                raise OutsideSubset(text)
            if text not in env:
                raise SubsetError(f"undefined variable {text}")
            if env[text] is UNKNOWN:
                raise OutsideSubset(f"unpredictable variable {text}")
            return env[text]
        if kind == "op" and text == "(":
            value = expression()
            closing = peek()
            if closing != ("op", ")"):
                raise OutsideSubset("parenthesis")
            pos += 1
            return value
        raise OutsideSubset(text)

    def expression() -> Any:
        nonlocal pos
        left = primary()
        while (tok := peek()) is not None and tok[0] == "op" and tok[1] in "+-*,":
            pos += 1
            right = primary()
            op = tok[1]
            if op == ",":
                if not (isinstance(left, str) and isinstance(right, str)):
                    raise SubsetError("`,` needs two strings")
                left = left + right
            else:
                if not (isinstance(left, int) and isinstance(right, int)):
                    raise SubsetError(f"`{op}` needs two integers")
                left = {"+": left + right, "-": left - right, "*": left * right}[op]
                if abs(left) > 10**30:
                    raise OutsideSubset("large integers")
        return left

    value: Any = None
    while True:
        names: list[str] = []
        while pos + 1 < len(tokens) and tokens[pos][0] == "name" and tokens[pos + 1] == ("op", ":="):
            names.append(tokens[pos][1])
            pos += 2
        value = expression()
        for name in names:
            env[name] = value
            assigned[name] = value
        tok = peek()
        if tok is None:
            break
        if tok != ("op", "."):
            raise OutsideSubset(tok[1])
        pos += 1
        if peek() is None:
            break  # a trailing period ends the last statement
    return _value(value), {name: _value(v) for name, v in assigned.items()}


def assigned_names(code: str) -> set[str]:
    """Names a code may assign, for code the model cannot predict (over-approximation)."""
    return set(re.findall(r"([A-Za-z][A-Za-z0-9_]*)\s*:=", code))


# -- sessions ----------------------------------------------------------------------------------------


@dataclass
class Durable:
    """What the target has made durable for a session (create, each snapshot)."""

    revision: int = 0
    variables: dict[str, Any] = field(default_factory=dict)
    objects: dict[str, ExpectedBinding] = field(default_factory=dict)
    inspector: Json = field(default_factory=dict)
    preferences: Json = field(default_factory=dict)


@dataclass
class ModelSession:
    number: int  # 1-based, in create order: `$session:N` / `$token:N` in sequences
    session_id: str
    token: str
    client_id: str
    lifecycle: SessionLifecycle
    revision: int = 0
    # name -> raw value (int | str) or UNKNOWN; raw values so the subset evaluator can compute with them
    variables: dict[str, Any] = field(default_factory=dict)
    objects: dict[str, ExpectedBinding] = field(default_factory=dict)
    objects_certain: bool = True
    inspector: Json = field(default_factory=dict)
    preferences: Json = field(default_factory=dict)
    durable: Durable = field(default_factory=Durable)
    restarted: bool = False  # a restart happened since the last resume: `source` may be "durable"
    # When the target last restarted while the session was active: the idle deadline may count from then
    # (spec 8.1: a server that did not store the latest activity counts from its own start, EXP-4).
    restart_base: float = float("-inf")

    @property
    def state(self) -> State:
        return self.lifecycle.state

    def save_durable(self) -> None:
        self.durable = Durable(self.revision, dict(self.variables), dict(self.objects),
                               copy.deepcopy(self.inspector), copy.deepcopy(self.preferences))

    def restore_durable(self) -> None:
        d = self.durable
        self.revision, self.variables, self.objects = d.revision, dict(d.variables), dict(d.objects)
        self.inspector, self.preferences = copy.deepcopy(d.inspector), copy.deepcopy(d.preferences)


@dataclass
class CacheEntry:
    command: str
    fingerprint: str
    reply: Json
    stored_at: float
    durable: bool


def _fingerprint(command: str, parameters: dict[str, Any]) -> str:
    # A retry repeats command and parameters; the token was checked before the cache is consulted.
    relevant = {k: v for k, v in parameters.items() if k != "token"}
    return json.dumps([command, relevant], sort_keys=True, separators=(",", ":"))


def _raw(binding: ExpectedBinding) -> Any:
    if binding.cls in ("SmallInteger", "LargePositiveInteger", "LargeNegativeInteger"):
        return int(binding.print_string)
    if binding.cls in ("ByteString", "WideString"):
        return binding.print_string[1:-1].replace("''", "'")
    return UNKNOWN


@dataclass
class Observation:
    """What one observation found: typed problems (empty when the reply is allowed), each naming the
    requirement the reply breaks, and, for a create that made a new session, its number."""

    problems: list[Problem] = field(default_factory=list)
    new_session: int | None = None

    def problem(self, requirement: str, message: str, path: str = "$", expected: Json = None,
                actual: Json = None) -> None:
        self.problems.append(Problem(requirement, message, path, expected, actual, "model"))


class ProtocolModel:
    """The model of one target, for the sessions created through it since the model was made."""

    def __init__(self, limits: dict[str, Any], capabilities: frozenset[str] | set[str] = frozenset(),
                 check: MessageValidator | None = None, traffic: RetryTraffic | None = None) -> None:
        self.limits = dict(limits)
        self.capabilities = frozenset(capabilities)
        self.validator = check or validator()
        self.sessions: list[ModelSession] = []
        self.by_id: dict[str, ModelSession] = {}
        self.cache: dict[tuple[str, str], CacheEntry] = {}  # (session_id, request id)
        # The run's cacheable replies from this target, other cases' included (RTY-12's pressure).
        self.traffic = traffic

    # -- limits -----------------------------------------------------------------------------------------

    def _limit(self, name: str, default: float) -> float:
        value = self.limits.get(name)
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else default

    def _timeouts(self) -> Timeouts:
        return Timeouts(self._limit("idle_timeout_s", 1e18), self._limit("absolute_timeout_s", 1e18),
                        self._limit("tombstone_retention_s", 1e18))

    def _expiry(self, s: ModelSession, now: float) -> tuple[bool, bool]:
        """(may have expired, must have expired) for an active session at `now`."""
        return now >= s.lifecycle.deadline()[0] - TIMING_SLACK_S, now >= self.latest_deadline(s) + TIMING_SLACK_S

    def latest_deadline(self, s: ModelSession) -> float:
        """The latest moment a correct target may still hold the session active: its deadline, or after a
        restart the one counted from the restart (never past the absolute deadline)."""
        lc = s.lifecycle
        if s.restart_base <= lc.idle_base:
            return lc.deadline()[0]
        return min(s.restart_base + lc.timeouts.idle_timeout_s, lc.created_at + lc.timeouts.absolute_timeout_s)

    def _purge(self, s: ModelSession, now: float) -> tuple[bool, bool]:
        """(may be purged, must be purged) for a session at `now`: retention counts from the end, which for an
        expiry lies between the deadline and the latest deadline a restart allows."""
        purge_at = s.lifecycle.purge_at()
        retention = s.lifecycle.timeouts.tombstone_retention_s
        if s.state is State.ACTIVE:  # it may have expired unseen, and been purged since
            may_expire, _ = self._expiry(s, now)
            return (may_expire and now >= purge_at - TIMING_SLACK_S), now >= self.latest_deadline(s) + retention \
                + TIMING_SLACK_S
        late = max(0.0, self.latest_deadline(s) - s.lifecycle.deadline()[0]) if s.state is State.EXPIRED else 0.0
        return now >= purge_at - TIMING_SLACK_S, now >= purge_at + late + TIMING_SLACK_S

    def live_sessions_of(self, client_id: str, now: float) -> tuple[int, int]:
        """(certainly live, possibly live) sessions of a client, for the per-client limit."""
        certain = possible = 0
        for s in self.sessions:
            if s.client_id != client_id or s.state is not State.ACTIVE:
                continue
            may, must = self._expiry(s, now)
            possible += not must
            certain += not may
        return certain, possible

    # -- the entry points ---------------------------------------------------------------------------------

    def restart(self, now: float | None = None) -> None:
        """The target restarted (at `now`, when known): live state falls back to the last durable state;
        memory-only retry entries are gone (snapshot/close replies survive only with `retry.durable`)."""
        for s in self.sessions:
            s.restore_durable()
            s.restarted = True
            if now is not None and s.state is State.ACTIVE:
                s.restart_base = now
        durable_retries = Capability.RETRY_DURABLE in self.capabilities
        self.cache = {k: e for k, e in self.cache.items() if e.durable and durable_retries}

    def session(self, number: int) -> ModelSession:
        return self.sessions[number - 1]

    def observe(self, request: Json, reply: Json, now: float, connection: int = 0) -> Observation:
        """Check `reply` against what the spec allows for `request`, sent now on `connection` (the
        simulated client's socket), then follow it."""
        out = Observation()
        verdict = self.validator.check_request(request)
        if not verdict.ok:
            self._expect_code(out, reply, {verdict.error_code or ErrorCode.InvalidRequest}, "ERR-1")
            return out
        command = request["command"]
        params = request["parameters"]
        info = self.validator.registry.commands[command]
        if info.capability and info.capability not in self.capabilities:
            self._expect_code(out, reply, {"UnknownCommand"}, "VER-6")
            return out
        if command == "hello":
            self._expect_code(out, reply, {None}, "HEL-1")
        elif command == "session.create":
            self._create(out, request, reply, now, connection)
        else:
            self._session_scoped(out, request, reply, now)
        del params
        return out

    # -- helpers -------------------------------------------------------------------------------------------

    @staticmethod
    def _code(reply: Json) -> str | None:
        if isinstance(reply, dict) and reply.get("status") == "error" and isinstance(reply.get("error"), dict):
            return reply["error"].get("code")
        return None

    def _is_id_reused(self, reply: Json) -> bool:
        if self._code(reply) != ErrorCode.InvalidRequest:
            return False
        details = reply["error"].get("details")
        return isinstance(details, dict) and details.get("reason") == "id_reused"

    def _expect_id_reused(self, out: Observation, reply: Json) -> None:
        """A known id with other parameters inside the retry window: InvalidRequest, reason id_reused (RTY-3)."""
        if self._expect_code(out, reply, {"InvalidRequest"}, "RTY-3"):
            details = reply["error"].get("details", {})
            self._same(out, "RTY-3", "error.details.reason", "id_reused", details.get("reason"))

    def _expect_code(self, out: Observation, reply: Json, allowed: set[str | None], requirement: str) -> bool:
        code = self._code(reply)
        if code not in allowed:
            details = reply["error"].get("details") if code is not None else None
            if code in _PRE_DISPATCH_ERRORS and (not isinstance(details, dict) or details.get("reason") != "id_reused"):
                # A request the schemas accept refused before dispatch: the precedence order says no step
                # P1-P5 fails for it, whatever the command (ERR-1).
                requirement = "ERR-1"
            shown = sorted("success" if c is None else c for c in allowed)
            path = "$.error.code" if code is not None else "$.status"
            out.problem(requirement, f"expected {' or '.join(shown)}, got {code or 'success'}", path,
                        " or ".join(shown), code or "success")
            return False
        return True

    @staticmethod
    def _result(reply: Json) -> dict[str, Any]:
        result = reply.get("result") if isinstance(reply, dict) else None
        return result if isinstance(result, dict) else {}

    def _same(self, out: Observation, requirement: str, what: str, expected: Json, actual: Json) -> None:
        """`what` is the member's path in the reply (e.g. "result.revision")."""
        if expected != actual:
            out.problem(requirement, f"{what}: expected {show(expected)}, got {show(actual)}", f"$.{what}",
                        expected, actual)

    # -- create ----------------------------------------------------------------------------------------------

    def _create(self, out: Observation, request: Json, reply: Json, now: float, connection: int) -> None:
        client_id = request["parameters"]["client_id"]
        # Never answered from a cache (RTY-11): a repeat, on any connection, is a new create.
        del connection
        certain, possible = self.live_sessions_of(client_id, now)
        limit = self._limit("max_sessions_per_client", 1e18)
        allowed: set[str | None] = set()
        if certain < limit:
            allowed.add(None)
        if possible >= limit:
            allowed.add(ErrorCode.LimitExceeded)
        details = reply.get("error", {}).get("details") if self._code(reply) == ErrorCode.LimitExceeded else None
        if "max_sessions" in self.limits and isinstance(details, dict) and details.get("limit") == "max_sessions":
            # LIM-6: the total counts every client's sessions, other cases' too, which the model cannot see.
            allowed.add(ErrorCode.LimitExceeded)
        if not self._expect_code(out, reply, allowed, "LIM-4") or self._code(reply) is not None:
            return
        result = self._result(reply)
        self._same(out, "CRE-1", "result.revision", 0, result.get("revision"))
        if result.get("session_id") in self.by_id:
            replayed = self.by_id[result["session_id"]].token == result.get("token")
            what = " with its token (a replay)" if replayed else ""
            out.problem("RTY-11" if replayed else "CRE-2", f"session.create returned an existing session{what}",
                        "$.result.session_id")
            return
        s = ModelSession(len(self.sessions) + 1, result["session_id"], result["token"], client_id,
                         SessionLifecycle.create(self._timeouts(), now))
        s.save_durable()
        self.sessions.append(s)
        self.by_id[s.session_id] = s
        out.new_session = s.number

    # -- session-scoped -----------------------------------------------------------------------------------------

    def _session_scoped(self, out: Observation, request: Json, reply: Json, now: float) -> None:
        command, params = request["command"], request["parameters"]
        s = self.by_id.get(params["session_id"])
        if s is None:
            self._expect_code(out, reply, {"SessionNotFound"}, "ERR-1")
            return
        may_purge, must_purge = self._purge(s, now)
        code = self._code(reply)
        if must_purge or (may_purge and code == ErrorCode.SessionNotFound):
            if self._expect_code(out, reply, {"SessionNotFound"}, "EXP-5"):
                self._forget(s, now)
            return
        if params["token"] != s.token:
            self._expect_code(out, reply, {"InvalidToken"}, "SEC-2")
            return
        # Retry cache: after authentication, before the lifecycle checks.
        key = (s.session_id, request["id"])
        entry = self.cache.get(key)
        window = self._limit("retry_window_s", 1e18)
        fp = _fingerprint(command, params)
        if entry is not None:  # kept at least the window, perhaps longer
            fresh_allowed = now - entry.stored_at > window - TIMING_SLACK_S or self._may_drop(entry)
            if entry.fingerprint == fp:
                if reply == entry.reply:
                    return
                # Whether a lifecycle error reply is cached is not observable otherwise: accept a fresh one.
                lifecycle_errors = (ErrorCode.SessionClosed, ErrorCode.SessionExpired)
                if self._code(entry.reply) in lifecycle_errors and code == self._code(entry.reply):
                    return
                if not fresh_allowed:
                    got = self._code(reply) or "a different success"
                    out.problem("RTY-2", f"a retried {command} (same id, same parameters) must get the original"
                                f" reply verbatim without executing again; got {got}", "$", entry.reply, reply)
                    return
            elif self._is_id_reused(reply):
                return
            elif not fresh_allowed:
                self._expect_id_reused(out, reply)
                return
        # Lifecycle.
        if s.state is State.ACTIVE:
            may_expire, must_expire = self._expiry(s, now)
            if must_expire or (may_expire and code == ErrorCode.SessionExpired):
                # It ended at its deadline, whenever the model learns of it (retention counts from there).
                s.lifecycle.expire(min(now, s.lifecycle.deadline()[0]))
        state_error = s.lifecycle.answer()
        if state_error is not None:
            if self._expect_code(out, reply, {state_error}, "CLS-2" if s.state is State.CLOSED else "EXP-3"):
                self._remember(key, command, fp, reply, now, durable=command in DURABLE_RETRY_COMMANDS)
            return
        handler = {
            "session.resume": self._resume, "session.validate": self._validate,
            "session.snapshot": self._snapshot, "session.close": self._close,
            "evaluate": self._evaluate, "inspect": self._inspect,
        }[command]
        handler(out, s, params, reply, now)
        if not out.problems:
            if self._code(reply) is None and s.state is State.ACTIVE:
                s.lifecycle.process_event(Event.USE, now)
            # With retry.durable every cached reply of snapshot/close survives a restart, errors too (RTY-6).
            self._remember(key, command, fp, reply, now, durable=command in DURABLE_RETRY_COMMANDS)

    def _remember(self, key: tuple[str, str], command: str, fp: str, reply: Json, now: float, durable: bool) -> None:
        # Only commands that change something are cached (10.1); a read-only one is answered anew.
        if command in RETRY_CACHED_COMMANDS:
            self.cache[key] = CacheEntry(command, fp, reply, now, durable)

    def _may_drop(self, entry: CacheEntry) -> bool:
        """RTY-12: a server announcing retry_cache_bytes may drop cached evaluate/inspect replies while
        its cache holds more. Its cache holds every case's replies, so the run's traffic judges it
        (RetryTraffic); without one, what this model saw, counted as generously."""
        if self.traffic is not None:
            return self.traffic.may_have_dropped(entry.command, self.limits)
        own = RetryTraffic()
        for e in self.cache.values():
            own.add(e.command, json.dumps(e.reply).encode())
        return own.may_have_dropped(entry.command, self.limits)

    def _forget(self, s: ModelSession, now: float) -> None:
        if s.state is State.ACTIVE:
            s.lifecycle.expire(now)
        s.lifecycle.process_event(Event.RETENTION_ELAPSED, now)
        self.by_id.pop(s.session_id, None)
        self.cache = {k: e for k, e in self.cache.items() if k[0] != s.session_id}

    # -- commands ------------------------------------------------------------------------------------------------

    def _resume(self, out: Observation, s: ModelSession, params: dict[str, Any], reply: Json, now: float) -> None:
        if not self._expect_code(out, reply, {None}, "RES-1"):
            return
        result = self._result(reply)
        self._same(out, "RES-1", "result.session_id", s.session_id, result.get("session_id"))
        self._same(out, "RES-1", "result.revision", s.revision, result.get("revision"))
        allowed_sources = {"live", "durable"} if s.restarted else {"live"}
        if result.get("source") not in allowed_sources:
            wanted = " or ".join(sorted(allowed_sources))
            out.problem("RES-2", f"result.source: expected {wanted}, got {show(result.get('source'))}",
                        "$.result.source", wanted, result.get("source"))
        if "fallback" in result:
            out.problem("RES-3", "result.fallback is present although no revision was lost", "$.result.fallback",
                        None, result["fallback"])
        # Live or durable, the workspace and objects are those the model predicts for that source.
        state_requirement = "RES-3" if result.get("source") == "durable" else "RES-2"
        state = result.get("state") if isinstance(result.get("state"), dict) else {}
        self._same(out, "SNP-6", "result.state.inspector", s.inspector, state.get("inspector"))
        self._same(out, "SNP-6", "result.state.preferences", s.preferences, state.get("preferences"))
        got_vars = (state.get("workspace") or {}).get("variables") or {}
        for name, value in s.variables.items():
            if value is UNKNOWN:
                continue
            self._same(out, state_requirement, f"result.state.workspace.variables.{name}", _value(value).as_json(),
                       got_vars.get(name))
        extra = sorted(set(got_vars) - set(s.variables))
        if extra:
            out.problem("CON-4", f"state.workspace.variables holds names never bound in this session: {extra}",
                        "$.result.state.workspace.variables", sorted(s.variables), sorted(got_vars))
        got_objects = state.get("objects") or {}
        if s.objects_certain:
            self._same(out, "INS-2", "result.state.objects", {k: v.as_json() for k, v in s.objects.items()},
                       got_objects)
        # The reply is now the truth for what was unknown.
        for name, value in s.variables.items():
            if value is UNKNOWN and name in got_vars:
                got = got_vars[name]
                s.variables[name] = _raw(ExpectedBinding(got.get("class", ""), got.get("print_string", "")))
        for name in [n for n, v in s.variables.items() if v is UNKNOWN and n not in got_vars]:
            del s.variables[name]
        if not s.objects_certain:
            s.objects = {k: ExpectedBinding(v.get("class", ""), v.get("print_string", ""))
                         for k, v in got_objects.items()}
            s.objects_certain = True
        s.restarted = False

    def _validate(self, out: Observation, s: ModelSession, params: dict[str, Any], reply: Json, now: float) -> None:
        if not self._expect_code(out, reply, {None}, "VAL-1"):
            return
        result = self._result(reply)
        self._same(out, "VAL-1", "result.session_id", s.session_id, result.get("session_id"))
        self._same(out, "VAL-1", "result.revision", s.revision, result.get("revision"))

    def _snapshot(self, out: Observation, s: ModelSession, params: dict[str, Any], reply: Json, now: float) -> None:
        expected = params.get("expected_revision")
        if expected is not None and expected != s.revision:
            if self._expect_code(out, reply, {"RevisionConflict"}, "SNP-4"):
                details = reply["error"].get("details", {})
                self._same(out, "SNP-4", "error.details.current_revision", s.revision, details.get("current_revision"))
                self._same(out, "SNP-4", "error.details.expected_revision", expected, details.get("expected_revision"))
            return
        if not self._expect_code(out, reply, {None}, "SNP-1"):
            return
        result = self._result(reply)
        self._same(out, "SNP-1", "result.session_id", s.session_id, result.get("session_id"))
        self._same(out, "SNP-1", "result.revision", s.revision + 1, result.get("revision"))
        s.revision += 1
        state = params.get("state") or {}
        if "inspector" in state:
            s.inspector = copy.deepcopy(state["inspector"])
        if "preferences" in state:
            s.preferences = copy.deepcopy(state["preferences"])
        s.save_durable()

    def _close(self, out: Observation, s: ModelSession, params: dict[str, Any], reply: Json, now: float) -> None:
        if not self._expect_code(out, reply, {None}, "CLS-1"):
            return
        self._same(out, "CLS-1", "result.session_id", s.session_id, self._result(reply).get("session_id"))
        s.lifecycle.process_event(Event.CLOSE, now)
        s.save_durable()

    def _run(self, out: Observation, s: ModelSession, code: str, reply: Json) -> ExpectedBinding | None:
        """Predict and check an evaluation; returns the value on predicted success."""
        try:
            value, assigned = evaluate_subset(code, s.variables)
        except SubsetError as exc:
            name = str(exc).removeprefix("undefined variable ")
            elsewhere = any(name in other.variables for other in self.sessions if other is not s)
            # Reading a name bound only in another session must fail like any unbound name (CON-4).
            self._expect_code(out, reply, {"EvaluationError"}, "CON-4" if elsewhere else "EVL-1")
            return None
        except OutsideSubset:
            if self._expect_code(out, reply, {None, ErrorCode.EvaluationError}, "EVL-7") and self._code(reply) is None:
                for name in assigned_names(code):
                    s.variables[name] = UNKNOWN
            return None
        if not self._expect_code(out, reply, {None}, "EVL-1"):
            return None
        result = self._result(reply)
        self._same(out, "EVL-1", "result", value.as_json(),
                   {"class": result.get("class"), "print_string": result.get("print_string")})
        for name, binding in assigned.items():
            s.variables[name] = _raw(binding)
        return value

    def _evaluate(self, out: Observation, s: ModelSession, params: dict[str, Any], reply: Json, now: float) -> None:
        self._run(out, s, params["code"], reply)

    def _inspect(self, out: Observation, s: ModelSession, params: dict[str, Any], reply: Json, now: float) -> None:
        result = self._result(reply)
        if "object_id" in params:
            entry = s.objects.get(params["object_id"])
            if entry is None:
                allowed: set[str | None] = {"ObjectNotFound"} if s.objects_certain else {None, ErrorCode.ObjectNotFound}
                self._expect_code(out, reply, allowed, "INS-4")
                return
            if self._expect_code(out, reply, {None}, "INS-3"):
                self._same(out, "INS-3", "result", {"object_id": params["object_id"], **entry.as_json()},
                           {k: result.get(k) for k in ("object_id", "class", "print_string")})
            return
        before = len(out.problems)
        value = self._run(out, s, params["expression"], reply)
        if len(out.problems) > before or self._code(reply) is not None:
            return
        object_id = result.get("object_id")
        if value is None:  # outside the subset but answered: registered, content unpredictable
            s.objects_certain = False
            return
        if object_id in s.objects and s.objects[object_id] != value:
            out.problem("INS-1", f"inspect reused object_id {show(object_id)} for a different object",
                        "$.result.object_id", "an object_id never issued before in this session", object_id)
        s.objects[str(object_id)] = value


# Every requirement the model may cite (a test checks the code above cites no other): the stateful cases
# declare them all, so a finding of the model is never a citation the case did not declare.
MODEL_REQUIREMENTS: tuple[str, ...] = (
    "ERR-1", "VER-6", "HEL-1", "RTY-2", "RTY-3", "RTY-11", "LIM-4", "CRE-1", "CRE-2", "EXP-3", "EXP-5", "SEC-2",
    "CLS-1", "CLS-2", "RES-1", "RES-2", "RES-3", "SNP-1", "SNP-4", "SNP-6", "CON-4", "INS-1", "INS-2", "INS-3",
    "INS-4", "VAL-1", "EVL-1", "EVL-7",
)
