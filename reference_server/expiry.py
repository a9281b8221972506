"""The one expiry formula of the reference server (spec 8.1), for Python callers and for SQL.

    expires_at = min(idle_base + idle_timeout_s, created_at + absolute_timeout_s)

`idle_base` is the last activity as the server counts it for the idle deadline. While a server runs
it is the recorded last activity. For a session read from storage after a start it is the later of
the recorded last activity and the server's start (`idle_base`): activity is flushed in batches, so
a crash may lose the latest, and counting from the start never expires a session before a deadline
that was reported for it (EXP-4). The recorded `last_active_at` itself is kept unchanged for
session.validate (VAL-2).

Every place that decides or reports a deadline goes through `deadline`/`idle_base`, or, in storage,
through `DEADLINE_SQL`, which spells the same formula over a row's columns; a test checks that the
two agree.
"""

from __future__ import annotations

from stui_protocol_kit.protocol.lifecycle import Event


def idle_base(last_active_at: float, started_at: float) -> float:
    """The idle-deadline base of an active session read from storage by a server started at `started_at`."""
    return max(last_active_at, started_at)


def deadline(created_at: float, base: float, idle_timeout_s: float, absolute_timeout_s: float) -> tuple[float, Event]:
    """When the session expires, and which timeout it is (the earlier one; absolute on a tie)."""
    idle = base + idle_timeout_s
    absolute = created_at + absolute_timeout_s
    if absolute <= idle:
        return absolute, Event.ABSOLUTE_TIMEOUT
    return idle, Event.IDLE_TIMEOUT


# The same formula over a `sessions` row, with named parameters :started_at, :idle_timeout_s and
# :absolute_timeout_s (storage.expire_overdue).
DEADLINE_SQL = "MIN(MAX(last_active_at, :started_at) + :idle_timeout_s, created_at + :absolute_timeout_s)"
