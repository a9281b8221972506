"""The session lifecycle: states, events, the transition table, and the object that owns one session's.

Theory of operation (in the manner of h11's `_state.py`):
1. `TRANSITIONS` is the whole state machine. `SessionLifecycle.process_event(event, at)` is the only
   way a session changes state, in the reference engine and in the conformance model alike; an event
   the table does not allow raises `TransitionError` (a bug in the caller, never a protocol answer).
2. Time is an input, never read here: timeouts and retention are transitions in time (spec 5), fired
   by `SessionLifecycle.advance(now)` when their moment has come. The moments come from the formulas
   below and nowhere else:
       deadline      = min(idle_base + idle_timeout_s, created_at + absolute_timeout_s)  (absolute on a tie)
       retention end = ended_at + tombstone_retention_s
   `idle_base` is the last activity the idle deadline counts from. While a server runs it is the
   recorded last activity; for a session a server reads from storage after it started it is the later
   of the recorded activity and the start (`idle_base_after_start`, EXP-4): activity is flushed in
   batches, so a crash may lose the latest, and counting from the start never expires a session before
   a deadline that was reported for it. The recorded `last_active_at` itself is kept for VAL-2.
   A timeout ends the session at its deadline, not at the moment it is noticed.
3. `answer()` is the error a session-scoped command gets in the current state once id and token have
   been checked (STATE_ERRORS, spec/12-errors.md), and `ENDED_AT_MEMBER` names the `details` member
   that carries the end time.
4. The Mermaid diagram in spec/05-lifecycle.md is generated from `TRANSITIONS` (a test fails when they
   drift), and every edge of it is fired by code: create, use, close by the commands, the timeouts and
   RETENTION_ELAPSED by `advance`.

This module knows nothing of sockets, storage, clocks or which side it runs on, and must never read
the time itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stui_protocol_kit.protocol.facts import Command, ErrorCode


class State(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    EXPIRED = "expired"
    PURGED = "purged"


class Event(StrEnum):
    CREATE = Command.SESSION_CREATE.value  # a successful session.create
    USE = "use"  # a successful session-scoped command other than close
    CLOSE = Command.SESSION_CLOSE.value  # a successful session.close
    IDLE_TIMEOUT = "idle timeout"
    ABSOLUTE_TIMEOUT = "absolute timeout"
    RETENTION_ELAPSED = "retention elapsed"


INITIAL = None  # before create: the id does not exist

TRANSITIONS: dict[State | None, dict[Event, State]] = {
    INITIAL: {Event.CREATE: State.ACTIVE},
    State.ACTIVE: {
        Event.USE: State.ACTIVE,
        Event.CLOSE: State.CLOSED,
        Event.IDLE_TIMEOUT: State.EXPIRED,
        Event.ABSOLUTE_TIMEOUT: State.EXPIRED,
    },
    State.CLOSED: {Event.RETENTION_ELAPSED: State.PURGED},
    State.EXPIRED: {Event.RETENTION_ELAPSED: State.PURGED},
    State.PURGED: {},
}

# The error a session-scoped command gets in each state once id and token have been checked.
STATE_ERRORS: dict[State, ErrorCode | None] = {
    State.ACTIVE: None,
    State.CLOSED: ErrorCode.SessionClosed,
    State.EXPIRED: ErrorCode.SessionExpired,
    State.PURGED: ErrorCode.SessionNotFound,
}
# The `details` member of that error carrying when the session ended (error.json; a test checks it).
ENDED_AT_MEMBER: dict[State, str] = {State.CLOSED: "closed_at", State.EXPIRED: "expired_at"}

TIMEOUT_EVENTS = frozenset({Event.IDLE_TIMEOUT, Event.ABSOLUTE_TIMEOUT})


class TransitionError(ValueError):
    """An event that the table does not allow in the current state."""


def next_state(state: State | None, event: Event) -> State:
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise TransitionError(f"{event.value!r} is not allowed in state {state}") from None


@dataclass(frozen=True)
class Timeouts:
    """The three durations the lifecycle runs on, as hello announces them (seconds)."""

    idle_timeout_s: float
    absolute_timeout_s: float
    tombstone_retention_s: float


def deadline(created_at: float, idle_base: float, timeouts: Timeouts) -> tuple[float, Event]:
    """When an active session expires, and which timeout it is (the earlier; absolute on a tie)."""
    idle = idle_base + timeouts.idle_timeout_s
    absolute = created_at + timeouts.absolute_timeout_s
    if absolute <= idle:
        return absolute, Event.ABSOLUTE_TIMEOUT
    return idle, Event.IDLE_TIMEOUT


def idle_base_after_start(last_active_at: float, started_at: float) -> float:
    """The idle-deadline base of an active session read from storage by a server started at `started_at`."""
    return max(last_active_at, started_at)


def retention_end(ended_at: float, timeouts: Timeouts) -> float:
    """When a closed or expired session is purged."""
    return ended_at + timeouts.tombstone_retention_s


class SessionLifecycle:
    """One session's lifecycle state and the times it depends on; changed only by `process_event`."""

    __slots__ = ("timeouts", "state", "created_at", "last_active_at", "idle_base", "ended_at")

    def __init__(
        self, timeouts: Timeouts, *, created_at: float, state: State = State.ACTIVE,
        last_active_at: float | None = None, idle_base: float | None = None, ended_at: float | None = None,
    ) -> None:
        self.timeouts = timeouts
        self.state = state
        self.created_at = created_at
        self.last_active_at = created_at if last_active_at is None else last_active_at  # recorded (VAL-2)
        self.idle_base = self.last_active_at if idle_base is None else idle_base
        self.ended_at = ended_at

    @classmethod
    def create(cls, timeouts: Timeouts, at: float) -> SessionLifecycle:
        """A session created at `at` (the CREATE event from the initial state)."""
        return cls(timeouts, created_at=at, state=next_state(INITIAL, Event.CREATE))

    @classmethod
    def restore(
        cls, timeouts: Timeouts, *, state: State, created_at: float, last_active_at: float,
        ended_at: float | None, started_at: float,
    ) -> SessionLifecycle:
        """A session as storage recorded it, read by a server that started at `started_at`."""
        base = idle_base_after_start(last_active_at, started_at) if state is State.ACTIVE else last_active_at
        return cls(timeouts, created_at=created_at, state=state, last_active_at=last_active_at,
                   idle_base=base, ended_at=ended_at)

    # -- what the formulas say ---------------------------------------------------------------------

    def deadline(self) -> tuple[float, Event]:
        """When the session expires (or expired, for an ended one) and by which timeout."""
        return deadline(self.created_at, self.idle_base, self.timeouts)

    def purge_at(self) -> float:
        """When the session is purged: retention after it ended, or after its deadline if still active."""
        ended = self.ended_at if self.state is not State.ACTIVE and self.ended_at is not None else self.deadline()[0]
        return retention_end(ended, self.timeouts)

    def answer(self) -> ErrorCode | None:
        """The error a session-scoped command gets now (after the id and token checks), None in ACTIVE."""
        return STATE_ERRORS[self.state]

    # -- the one way to change state ---------------------------------------------------------------------

    def process_event(self, event: Event, at: float) -> State:
        """Apply `event` at time `at`; raises TransitionError when the table does not allow it.

        USE moves the recorded activity and the idle base forward only (a wall clock that stepped back
        never moves a deadline earlier); CLOSE and the timeouts record when the session ended."""
        new = next_state(self.state, event)
        if event is Event.USE:
            self.last_active_at = max(self.last_active_at, at)
            self.idle_base = max(self.idle_base, at)
        elif new is not State.ACTIVE and new is not State.PURGED and self.ended_at is None:
            self.ended_at = at
        self.state = new
        return new

    def advance(self, now: float) -> list[Event]:
        """Fire the transitions in time that are due at `now`: a timeout at the deadline, then
        RETENTION_ELAPSED at the retention's end. Returns the events fired, in order."""
        fired: list[Event] = []
        if self.state is State.ACTIVE:
            moment, event = self.deadline()
            if now < moment:
                return fired
            self.process_event(event, moment)
            fired.append(event)
        if self.state in (State.CLOSED, State.EXPIRED) and now >= self.purge_at():
            self.process_event(Event.RETENTION_ELAPSED, now)
            fired.append(Event.RETENTION_ELAPSED)
        return fired

    def expire(self, at: float) -> Event:
        """Fire the timeout the deadline names, at `at` (for a caller that learned of the expiry from
        elsewhere, such as the conformance model reading a target's SessionExpired)."""
        _, event = self.deadline()
        self.process_event(event, at)
        return event

    def __repr__(self) -> str:
        return (f"SessionLifecycle(state={self.state.value}, created_at={self.created_at}, "
                f"last_active_at={self.last_active_at}, idle_base={self.idle_base}, ended_at={self.ended_at})")


def mermaid() -> str:
    """The state diagram for spec/05-lifecycle.md, generated from TRANSITIONS."""
    lines = ["stateDiagram-v2"]
    for source, edges in TRANSITIONS.items():
        for event, target in edges.items():
            left = "[*]" if source is None else source.value
            lines.append(f"  {left} --> {target.value} : {event.value}")
    lines.append("  purged --> [*]")
    return "\n".join(lines)
