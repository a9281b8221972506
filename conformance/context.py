"""What a case gets to talk to the target: checked clients, sessions, restart, the run's configuration.

Every reply that reaches a case through a `CheckedClient` has already been through the reply checks of
`stui_protocol_kit.protocol.reply_checks` (one JSON object, the response schemas, allowed error codes,
no stray null, integers as integers, echo rules): a problem raises `CaseFailed` with typed problems, so
no case can forget these checks.

The context also keeps the suite fair to every correct server under every setting the spec allows:
- it tracks the deadline of each session a case created (from the `expires_at` the target reported,
  or the formula of spec 8.1 over the target's own reply timestamps), and marks a `SessionExpired` or
  `SessionNotFound` that arrives at or after that deadline as legitimate (`exchange.notes`), so that a
  verifier expecting success skips the case - naming the setting that would let it run - instead of
  blaming the target for expiring a session the case kept too long;
- `keep_alive` lets long-running cases (the generated ones) keep a session usable or open a fresh one;
- `require_limits` turns a precondition on the announced limits into SKIPPED with the reason.

This module must never decide a case's verdict beyond those automatic checks, and never retry: a
conformance suite must see exactly what the target did.
"""

from __future__ import annotations

import contextlib
import random
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import zmq

from stui_protocol_kit.conformance.case import CORRUPT_REASON, Case, CaseFailed, CaseSkipped, SuiteError
from stui_protocol_kit.conformance.config import DEFAULT_EXAMPLES, DEFAULT_TIMEOUT_S, RunConfig, SocketKind
from stui_protocol_kit.protocol.client import Exchange, ProtocolClient, Transcript
from stui_protocol_kit.protocol.codec import parse_rfc3339
from stui_protocol_kit.protocol.curve import ClientCurve
from stui_protocol_kit.protocol.facts import DURABLE_RETRY_COMMANDS, RETRY_CACHED_COMMANDS, ErrorCode
from stui_protocol_kit.protocol.reply_checks import check_reply
from stui_protocol_kit.protocol.requirements import Requirement, requirements
from stui_protocol_kit.protocol.schemas import SchemaRegistry, registry
from stui_protocol_kit.protocol.validation import MessageValidator, validator

# The spec's tolerance around every deadline (spec 8.1: one second plus the round trip).
DEADLINE_TOLERANCE_S = 1.0
EXPIRED_NOTE = "expired_by_deadline"  # Exchange.notes key: why a SessionExpired/NotFound is legitimate


def _stamp(text: Any) -> float | None:
    try:
        return parse_rfc3339(text).timestamp() if isinstance(text, str) else None
    except ValueError:
        return None


@dataclass
class SessionHandle:
    """A session a case created: its id and token (never printed: transcripts redact the token), and
    what the run knows of its deadline, on the target's clock."""

    session_id: str
    token: str
    client_id: str
    revision: int = 0
    created: dict[str, Any] = field(default_factory=dict)
    # Target-clock seconds: creation, the latest successful request (activity), the latest deadline the
    # target reported, and the timeouts it announced.
    created_at: float = 0.0
    last_activity: float = 0.0
    reported_expires_at: float = 0.0
    idle_timeout_s: float = float("inf")
    absolute_timeout_s: float = float("inf")
    # Local monotonic time of the latest success (for keep_alive, which must not wait for a reply), and the
    # latest (target time, local time) pair seen on this session, to estimate the target's clock locally.
    last_success_local: float = field(default_factory=time.monotonic)
    anchor: tuple[float, float] = (0.0, 0.0)

    def params(self, **extra: Any) -> dict[str, Any]:
        """Parameters for a session-scoped command on this session."""
        return {"session_id": self.session_id, "token": self.token, **extra}

    @property
    def formula_deadline(self) -> float:
        """The deadline spec 8.1 gives from the announced timeouts and the activity seen (what a case waits
        for: bounded by the timeouts, whatever a faulty target reports)."""
        return min(self.last_activity + self.idle_timeout_s, self.created_at + self.absolute_timeout_s)

    @property
    def deadline(self) -> float:
        """The latest deadline the target may hold for this session (EXP-4: never earlier than one it
        reported) - what decides whether an expiry the target reports was legitimate."""
        return max(self.formula_deadline, self.reported_expires_at)

    def seconds_left(self) -> float:
        """How long the session surely still lives, on the local clock (the target's clock estimated from the
        latest reply seen on it; `inf` when nothing is known)."""
        target_time, local_time = self.anchor
        if not target_time:
            return float("inf")
        return self.formula_deadline - (target_time + (time.monotonic() - local_time))

    def observe_success(self, reply: dict[str, Any]) -> None:
        """A successful session-scoped request on this session: activity at the reply's timestamp."""
        stamp = _stamp(reply.get("timestamp"))
        if stamp is not None:
            self.last_activity = max(self.last_activity, stamp)
            self.anchor = (stamp, time.monotonic())
        result = reply.get("result") if isinstance(reply.get("result"), dict) else {}
        reported = _stamp(result.get("expires_at"))
        if reported is not None:
            self.reported_expires_at = max(self.reported_expires_at, reported)
        self.last_success_local = time.monotonic()


# Below this announced max_sessions a case closes the sessions it created when it ends (LIM-6).
RELEASE_BELOW_MAX_SESSIONS = 10_000


@dataclass
class RetryTraffic:
    """What the run's requests may have put in one target's retry cache: every reply of a command whose
    replies are cached (10.1), from every case and connection, since the target's cache is shared by
    all of them. Counted as RTY-12 lets a server count (size + 1024 bytes each) and never forgotten (a
    server may keep entries past the window), so it bounds the target's cache from above: while it is
    below `retry_cache_bytes`, no cached reply may have been dropped for the bound."""

    cost: int = 0

    def add(self, command: Any, reply_bytes: bytes | None) -> None:
        if isinstance(command, str) and command in RETRY_CACHED_COMMANDS and reply_bytes is not None:
            self.cost += len(reply_bytes) + 1024

    def may_have_dropped(self, command: Any, limits: Mapping[str, Any]) -> bool:
        """Whether a cached reply of `command` may have been dropped for the announced bound (RTY-12);
        generously: at half the bound, for whatever the server counts that the suite cannot see."""
        bound = limits.get("retry_cache_bytes")
        if not isinstance(command, str) or command in DURABLE_RETRY_COMMANDS or not isinstance(bound, int) \
                or isinstance(bound, bool):
            return False
        return 2 * self.cost > bound


@dataclass
class TargetHandle:
    """One reachable target as the run sees it: where it is, what it announced, how to restart it."""

    endpoint: str
    hello: dict[str, Any]
    restart: Callable[[], str] | None = None  # restarts and returns the (possibly new) endpoint
    curve: ClientCurve | None = field(default=None, repr=False)  # CurveZMQ keys for this target, if any
    retry_traffic: RetryTraffic = field(default_factory=RetryTraffic)
    corrupt: Callable[[str], None] | None = None  # damages a session's newest stored revision

    @property
    def limits(self) -> dict[str, Any]:
        return dict(self.hello.get("limits", {}))

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self.hello.get("capabilities", []))


class CaseBudgetExceeded(SuiteError):
    """The case used up its time budget although the target answered: the suite's trouble (ERROR)."""


def effective_budget(case: Case, config: RunConfig, limits: Mapping[str, Any] | None = None) -> float:
    """A case's budget: its base, scaled for a slower target (a longer --timeout) and, for generated
    cases, a bigger --examples (the bases are written for the defaults), plus the time the case waits on
    the target's clock - each limit it waits out, as many times as it declares, as announced by hello."""
    scale = max(1.0, config.timeout_s / DEFAULT_TIMEOUT_S)
    if "hypothesis" in case.tags:
        scale *= max(1.0, config.examples / DEFAULT_EXAMPLES)
    waited = 0.0
    for name, times in case.waits.items():
        value = (limits or {}).get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            waited += times * float(value) + 2 * DEADLINE_TOLERANCE_S
    return case.budget_s * scale + waited


class CheckedClient:
    """A ProtocolClient whose every reply is checked before the case sees it."""

    def __init__(self, ctx: CaseContext, socket_kind: SocketKind, routing_id: bytes | None = None) -> None:
        self.ctx = ctx
        self.socket_kind = socket_kind
        self.raw = ProtocolClient(ctx.endpoint, socket_kind, ctx.config.timeout_s, ctx.zmq_context, ctx.transcript,
                                  curve=ctx.target.curve, routing_id=routing_id)

    # -- sending ------------------------------------------------------------------------------------

    def call(self, command: str, parameters: dict[str, Any] | None = None, *, request_id: str | None = None,
             timeout_s: float | None = None) -> Exchange:
        """A well-formed request; the reply must echo its id and command."""
        self.ctx.check_budget()
        exchange = self.raw.call(command, parameters, request_id=request_id, timeout_s=timeout_s)
        self.ctx.check_reply(exchange, sent=exchange.request)
        return exchange

    def send(self, message: Any, *, timeout_s: float | None = None, check_echo: bool = True) -> Exchange:
        """Any JSON value as one body frame. Echo rules are checked when the body is within the size
        limit (a P1 rejection echoes nulls, which `check_echo=False` callers verify themselves)."""
        self.ctx.check_budget()
        exchange = self.raw.send(message, timeout_s=timeout_s)
        self.ctx.check_reply(exchange, sent=message if check_echo else None)
        return exchange

    def send_frames(self, frames: list[bytes], *, request: Any = None, timeout_s: float | None = None) -> Exchange:
        """Raw body frames (a REQ socket adds its delimiter). Only the checks of a reply alone apply."""
        self.ctx.check_budget()
        exchange = self.raw.exchange_frames(frames, request=request, timeout_s=timeout_s)
        self.ctx.check_reply(exchange, sent=None)
        return exchange

    def reconnect(self) -> None:
        self.raw.reconnect()

    def close(self) -> None:
        self.raw.close()


class CaseContext:
    """Everything one case may use. Created per case by the runner; closes its clients afterwards."""

    def __init__(self, case: Case, target: TargetHandle, config: RunConfig, zmq_context: zmq.Context,
                 can_restart: bool, restart_reason: str = "") -> None:
        self.case = case
        self.target = target
        self.config = config
        self.zmq_context = zmq_context
        self.can_restart = can_restart
        self.restart_reason = restart_reason
        self.registry: SchemaRegistry = registry()
        self.validator: MessageValidator = validator()
        self.requirements: dict[str, Requirement] = requirements()
        self.transcript = Transcript()
        self.notes: list[str] = []
        # Seeded per case so one case's draws do not depend on which other cases were selected.
        self.rng = random.Random(config.seed ^ zlib.crc32(case.id.encode()))
        self._clients: list[CheckedClient] = []
        self._default: CheckedClient | None = None
        self._sessions: dict[str, SessionHandle] = {}
        self._made: dict[str, str] = {}  # every session a create of this case made: id -> token
        self._created = 0
        self._nonce = f"{config.seed:x}-{random.getrandbits(24):06x}"
        self.budget_s = effective_budget(case, config, target.limits)
        self.deadline = time.monotonic() + self.budget_s

    def check_budget(self) -> None:
        """Called before every request: a case past its budget ends as ERROR (the target answers, but
        the case did not finish in the time it was given: the suite's budget is wrong, or the machine is
        overloaded), instead of stretching the run without bound."""
        if time.monotonic() > self.deadline:
            raise CaseBudgetExceeded(
                f"case {self.case.id} ran past its budget of {self.budget_s:.0f}s while the target was answering "
                "(a suite problem, not a verdict on the target; a slower target needs a longer --timeout)")

    # -- target facts ---------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self.target.endpoint

    @property
    def hello(self) -> dict[str, Any]:
        return self.target.hello

    @property
    def limits(self) -> dict[str, Any]:
        return self.target.limits

    @property
    def capabilities(self) -> frozenset[str]:
        return self.target.capabilities

    @property
    def retry_traffic(self) -> RetryTraffic:
        return self.target.retry_traffic

    def limit(self, name: str) -> float:
        """An announced limit (infinite when not announced: a case then has nothing to wait for)."""
        value = self.limits.get(name)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("inf")

    # -- clients ----------------------------------------------------------------------------------------

    def client(self, socket_kind: SocketKind | None = None, *, routing_id: bytes | None = None) -> CheckedClient:
        """A new connection (a new routing id, or the one given), closed when the case ends."""
        made = CheckedClient(self, socket_kind or self.config.socket_kind, routing_id)
        self._clients.append(made)
        return made

    @property
    def default(self) -> CheckedClient:
        if self._default is None:
            self._default = self.client()
        return self._default

    def call(self, command: str, parameters: dict[str, Any] | None = None, **kw: Any) -> Exchange:
        return self.default.call(command, parameters, **kw)

    def send(self, message: Any, **kw: Any) -> Exchange:
        return self.default.send(message, **kw)

    def client_id(self, label: str = "") -> str:
        """A client_id unique to this case and run, so per-client limits never collide across cases."""
        return f"conformance-{self.case.id}-{self._nonce}{'-' + label if label else ''}"[:128]

    def new_session(self, client: CheckedClient | None = None, client_id: str | None = None) -> SessionHandle:
        """session.create, checked for success (CRE-1); the building block of most cases."""
        from stui_protocol_kit.conformance.verifiers import CREATE_OK, expect_success

        self._created += 1
        cid = client_id or self.client_id(str(self._created))
        exchange = (client or self.default).call("session.create", {"client_id": cid})
        reply = exchange.reply if isinstance(exchange.reply, dict) else {}
        details = (reply.get("error") or {}).get("details") if reply.get("status") == "error" else None
        if isinstance(details, dict) and details.get("limit") == "max_sessions" and "max_sessions" in self.limits:
            # The target holds as many sessions as it announced (LIM-6): other cases' sessions, which
            # stay active until they expire, count too. The case cannot run; the target is not at fault.
            raise CaseSkipped(f"the target's max_sessions ({self.limits['max_sessions']}) is reached by the "
                              "sessions of this run; run it with a larger max_sessions")
        result = expect_success(exchange, "session.create", requirement=CREATE_OK)
        created = _stamp(result.get("created_at")) or _stamp(exchange.reply.get("timestamp")) or 0.0
        handle = SessionHandle(
            result["session_id"], result["token"], cid, result["revision"], result, created_at=created,
            last_activity=created, reported_expires_at=_stamp(result.get("expires_at")) or 0.0,
            idle_timeout_s=self.limit("idle_timeout_s"), absolute_timeout_s=self.limit("absolute_timeout_s"),
            anchor=(_stamp(exchange.reply.get("timestamp")) or created, exchange.received_at or time.monotonic()),
        )
        self._sessions[handle.session_id] = handle
        return handle

    def keep_alive(self, session: SessionHandle, client: CheckedClient | None = None) -> SessionHandle:
        """A session that will stay usable for a while: `session` itself (after a validate, which is activity,
        when a third of the idle timeout passed since its last success), or a new session when `session`
        has less than a third of its absolute lifetime (or of the idle timeout) left, or was closed. For
        cases that send many requests that are not activity (errors) or may close the session."""
        from stui_protocol_kit.conformance.verifiers import expect_success

        margin = min(session.absolute_timeout_s, session.idle_timeout_s) / 3
        if session.seconds_left() <= margin:
            return self.new_session(client)
        if time.monotonic() - session.last_success_local < session.idle_timeout_s / 3:
            return session
        exchange = (client or self.default).call("session.validate", session.params())
        if exchange.reply.get("status") == "error" and (
                exchange.reply["error"].get("code") == ErrorCode.SessionClosed or exchange.notes.get(EXPIRED_NOTE)):
            return self.new_session(client)
        expect_success(exchange, "session.validate")
        return session

    # -- restart ----------------------------------------------------------------------------------------

    def restart(self) -> None:
        """Restart the target and wait until it answers hello; existing clients reconnect by themselves
        (ZeroMQ), but cases should open new ones to make the "new connection" explicit."""
        if not self.can_restart or self.target.restart is None:
            raise CaseSkipped(self.restart_reason or "the run cannot restart the target")
        try:
            self.target.endpoint = self.target.restart()
        except Exception as exc:  # a restart that fails is the harness's trouble, not a verdict
            raise SuiteError(f"restarting the target failed: {exc}") from exc
        # The clock kept running on the target; sessions' deadlines are unchanged (EXP-4).

    def corrupt_newest_revision(self, session_id: str) -> None:
        """Damage the session's newest stored revision through the target's hook; the case restarts
        the target afterwards to see the damage (a server never re-reads a session it holds)."""
        if self.target.corrupt is None:
            raise CaseSkipped(CORRUPT_REASON)
        try:
            self.target.corrupt(session_id)
        except Exception as exc:  # the hook's failure is the harness's trouble, not a verdict
            raise SuiteError(f"the corrupt command failed: {exc}") from exc

    def require_expiry(self, *limits: str) -> float:
        """The largest of the named limits, or SKIPPED when it exceeds the run's expiry budget."""
        longest = max(float(self.limits.get(name, 0) or 0) for name in limits)
        if longest <= 0 or longest > self.config.expiry_budget_s:
            raise CaseSkipped(
                f"needs the target's {'/'.join(limits)} ({longest:.0f}s) within the expiry budget of "
                f"{self.config.expiry_budget_s:g}s: pass --expiry-budget {max(longest, 1):.0f} (the case then waits"
                " that long) or run the target with shorter timeouts"
            )
        return longest

    def require_limits(self, condition: bool, needs: str) -> None:
        """SKIPPED unless the announced limits allow what the case needs; `needs` says what, in terms of the
        target's settings (e.g. "absolute_timeout_s >= 2 x idle_timeout_s")."""
        if not condition:
            named = [name for name in sorted(self.limits) if name in needs] or sorted(self.limits)
            shown = ", ".join(f"{name} {self.limits[name]}" for name in named)
            raise CaseSkipped(f"needs {needs}; the target announces {shown}")

    def note(self, text: str) -> None:
        self.notes.append(text)

    def requirement_text(self, req_id: str | None) -> str:
        if req_id and req_id in self.requirements:
            return self.requirements[req_id].text
        return ""

    # -- automatic reply checks --------------------------------------------------------------------------

    def check_reply(self, exchange: Exchange, sent: Any) -> None:
        """The checks every reply gets (see the module docstring), then what the reply tells about the
        deadlines of this case's sessions."""
        request = exchange.request
        command = request.get("command") if isinstance(request, dict) else None
        self.target.retry_traffic.add(command, exchange.reply_bytes)
        reply = exchange.reply
        if command == "session.create" and isinstance(reply, dict) and reply.get("status") == "success":
            result = reply.get("result")
            if isinstance(result, dict) and isinstance(result.get("session_id"), str):
                self._made[result["session_id"]] = str(result.get("token"))
        problems = check_reply(exchange.reply, sent, limits=self.limits, has_float=exchange.reply_has_float,
                               decode_error=exchange.decode_error, check=self.validator)
        if problems:
            raise CaseFailed.of(problems, [p.as_dict() for p in problems if p.rule not in ("", "json-object")])
        self._follow_sessions(exchange)

    def _follow_sessions(self, exchange: Exchange) -> None:
        request, reply = exchange.request, exchange.reply
        if not isinstance(request, dict) or not isinstance(reply, dict):
            return
        params = request.get("parameters")
        session_id = params.get("session_id") if isinstance(params, dict) else None
        handle = self._sessions.get(session_id) if isinstance(session_id, str) else None
        if handle is None or params.get("token") != handle.token:
            return
        if reply.get("status") == "success":
            if request.get("command") != "session.close":
                handle.observe_success(reply)
            return
        code = (reply.get("error") or {}).get("code")
        stamp = _stamp(reply.get("timestamp"))
        if code in (ErrorCode.SessionExpired, ErrorCode.SessionNotFound) and stamp is not None:
            deadline = handle.deadline
            if code == ErrorCode.SessionNotFound:
                deadline += self.limit("tombstone_retention_s")
            if stamp >= deadline - DEADLINE_TOLERANCE_S:
                exchange.notes[EXPIRED_NOTE] = (
                    f"the session's deadline passed ({code} at {reply.get('timestamp')}, deadline "
                    f"{_show_time(handle.deadline)} on the target's clock): the case needs its sessions to live "
                    f"longer than the target's idle_timeout_s {self.limits.get('idle_timeout_s')} / "
                    f"absolute_timeout_s {self.limits.get('absolute_timeout_s')} allow on this machine; run the "
                    "target with longer timeouts to check it")

    def close(self) -> None:
        self._release_sessions()
        for made in self._clients:
            with contextlib.suppress(zmq.ZMQError):
                made.close()
        self._clients.clear()

    def _release_sessions(self) -> None:
        """Against a target with a small max_sessions (LIM-6), close the sessions this case created, so
        that they do not fill the target for the cases after it (they would stay active until their idle
        timeout). Best effort and unchecked: the case has its verdict already."""
        cap = self.limits.get("max_sessions")
        if not isinstance(cap, int) or cap > RELEASE_BELOW_MAX_SESSIONS or not self._made:
            return
        try:
            client = ProtocolClient(self.endpoint, "dealer", 0.5, self.zmq_context, curve=self.target.curve)
        except Exception:  # noqa: BLE001 - the run is stopping (context terminated, target gone): nothing to free
            return
        try:
            for session_id, token in self._made.items():
                client.call("session.close", {"session_id": session_id, "token": token})
        except Exception:  # noqa: BLE001 - best effort: a target gone, slow or stopping leaves nothing to free
            pass
        finally:
            with contextlib.suppress(Exception):
                client.close()


def _show_time(stamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp, UTC).strftime("%H:%M:%S.%f")[:-3] + "Z"
