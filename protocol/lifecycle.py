"""The session lifecycle as data: states, events, and the transition table.

Theory of operation:
1. Everything that decides a session's lifecycle state lives in this table. The reference engine
   consults it, the conformance model consults it, and the Mermaid diagram in spec/05-lifecycle.md is
   generated from it (a test fails when they drift).
2. This module knows nothing of sockets, storage, clocks or which side it runs on.

A session is created ACTIVE. Session-scoped commands are served only in ACTIVE; in CLOSED and
EXPIRED they are answered with the state's error (after the id and token checks, spec/12-errors.md).
Tombstones are purged after the retention period, after which the id is unknown (SessionNotFound).
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    EXPIRED = "expired"
    PURGED = "purged"


class Event(StrEnum):
    CREATE = "session.create"
    USE = "use"  # a successful session-scoped command other than close
    CLOSE = "session.close"
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
STATE_ERRORS: dict[State, str | None] = {
    State.ACTIVE: None,
    State.CLOSED: "SessionClosed",
    State.EXPIRED: "SessionExpired",
    State.PURGED: "SessionNotFound",
}


class TransitionError(ValueError):
    """An event that the table does not allow in the current state."""


def next_state(state: State | None, event: Event) -> State:
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise TransitionError(f"{event.value!r} is not allowed in state {state}") from None


def mermaid() -> str:
    """The state diagram for spec/05-lifecycle.md, generated from TRANSITIONS."""
    lines = ["stateDiagram-v2"]
    for source, edges in TRANSITIONS.items():
        for event, target in edges.items():
            left = "[*]" if source is None else source.value
            lines.append(f"  {left} --> {target.value} : {event.value}")
    lines.append("  purged --> [*]")
    return "\n".join(lines)
