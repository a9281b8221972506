"""Cases for spec 8, expiry and tombstones (EXP), and the per-command paths after expiry.

These wait on the target's clock, so they need `expiry`: the run skips them when `idle_timeout_s`
exceeds the expiry budget, and runs them in threads so their waits overlap. Waits are derived from
the `expires_at` the target reported plus a margin, never from guesses about its cleanup period.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from stui_protocol_kit.conformance.case import NEED_EXPIRY, NEED_RESTART, CaseFailed, CaseSkipped, case
from stui_protocol_kit.conformance.cases._helpers import command_needs, command_params, expect_retry_reply, ok, validate
from stui_protocol_kit.conformance.context import CaseContext, SessionHandle
from stui_protocol_kit.conformance.verifiers import expect_equal, expect_error, expect_success, expect_true
from stui_protocol_kit.protocol.client import Exchange
from stui_protocol_kit.protocol.codec import parse_rfc3339
from stui_protocol_kit.protocol.schemas import registry

EXPIRY = [NEED_EXPIRY]
MARGIN_S = 0.6  # past a deadline: covers timestamp truncation and a busy two-core machine


def _seconds_until(ctx: CaseContext, stamp: str, reply_timestamp: str) -> float:
    """How far `stamp` lies after the target's `reply_timestamp` (spec ENV: compute remaining time from the
    reply, not the local clock) - never more than the announced timeouts allow: a deadline beyond them is
    itself a failure (EXP-1), and waiting for it would hang the run."""
    remaining = (parse_rfc3339(stamp) - parse_rfc3339(reply_timestamp)).total_seconds()
    longest = max(float(ctx.limits.get("idle_timeout_s", 0)), float(ctx.limits.get("absolute_timeout_s", 0)))
    if remaining > longest + 1:
        raise CaseFailed(f"expires_at within {longest:g}s of {reply_timestamp}", stamp, "EXP-1",
                         path="$.result.expires_at")
    return remaining


def _wait_until(ctx: CaseContext, stamp: str, reply_timestamp: str, margin: float = MARGIN_S) -> None:
    """Sleep until the target's clock has passed `stamp` by `margin`."""
    time.sleep(max(0.0, _seconds_until(ctx, stamp, reply_timestamp)) + margin)


def _activity_can_move_the_deadline(ctx: CaseContext) -> float:
    """The idle timeout, after checking the absolute deadline leaves room to see activity move the idle one
    (a case waits half the idle timeout, then past the first deadline): SKIPPED otherwise."""
    idle = ctx.require_expiry("idle_timeout_s")
    ctx.require_limits(ctx.limit("absolute_timeout_s") >= 2 * idle,
                       "absolute_timeout_s >= 2 x idle_timeout_s, so that activity can move a deadline the absolute"
                       " one does not cap")
    return idle


def _expired_session(ctx: CaseContext) -> tuple[SessionHandle, str]:
    ctx.require_expiry("idle_timeout_s")
    s = ctx.new_session()
    _wait_until(ctx, s.created["expires_at"], s.created["created_at"])
    return s, s.created["expires_at"]


def _register(command: str) -> None:
    slug = command.replace("session.", "")

    @case(f"expiry.{slug}-after-expiry", f"{command} after the idle timeout is SessionExpired",
          sends=f"create, wait past expires_at, {command}", needs=[NEED_EXPIRY, *command_needs(command)],
          requirements=["EXP-3", "LIF-2", "EXP-1"], waits={"idle_timeout_s": 1})
    def after_expiry(ctx: CaseContext) -> None:
        s, deadline = _expired_session(ctx)
        error = expect_error(ctx.call(command, command_params(command, s)), "SessionExpired", "EXP-3")
        expect_equal(deadline, error["details"]["expired_at"], "EXP-3", "details.expired_at")


for _command in [c.name for c in registry().commands.values() if c.session_scoped]:
    _register(_command)


@case("expiry.activity-extends", "a successful request moves expires_at; the session lives past the first deadline",
      sends="create, validate at about half the idle timeout, validate after the first deadline",
      requirements=["EXP-1", "EXP-4"], needs=EXPIRY, waits={"idle_timeout_s": 1.5})
def activity_extends(ctx: CaseContext) -> None:
    idle = _activity_can_move_the_deadline(ctx)
    s = ctx.new_session()
    time.sleep(idle / 2)
    exchange = ctx.call("session.validate", s.params())
    result = expect_success(exchange, "session.validate", "EXP-1")
    expect_true(parse_rfc3339(result["expires_at"]) > parse_rfc3339(s.created["expires_at"]),
                f"> {s.created['expires_at']}",
                result["expires_at"], "EXP-1")
    stamp = parse_rfc3339(exchange.reply["timestamp"])
    expect_true(0 <= (parse_rfc3339(result["expires_at"]) - stamp).total_seconds() <= idle + 0.01,
                f"within {idle:g}s of the reply", result["expires_at"], "EXP-1")
    # Sleep to just past the create-time deadline, well before the refreshed one.
    _wait_until(ctx, s.created["expires_at"], exchange.reply["timestamp"], margin=0.1)
    validate(ctx, s, "EXP-4")


@case("expiry.errors-do-not-extend", "error replies do not move the idle deadline",
      sends="create; wrong-token and schema-invalid requests; wait past the create-time deadline; validate",
      requirements=["EXP-2", "ERR-3", "EXP-1"], needs=EXPIRY, waits={"idle_timeout_s": 1})
def errors_do_not_extend(ctx: CaseContext) -> None:
    ctx.require_expiry("idle_timeout_s")
    s = ctx.new_session()
    expect_error(ctx.call("session.validate", s.params(token="Z" * 43)), "InvalidToken", "EXP-2")
    expect_error(ctx.call("session.snapshot", s.params(expected_revision=-1)), "InvalidRequest", "EXP-2")
    ok(ctx, "hello", {})
    _wait_until(ctx, s.created["expires_at"], s.created["created_at"])
    expect_error(ctx.call("session.validate", s.params()), "SessionExpired", "EXP-2")


@case("expiry.not-before-deadline", "a session is usable until its expires_at",
      sends="create, wait until shortly before expires_at, validate", requirements=["EXP-4", "EXP-1"],
      needs=EXPIRY, waits={"idle_timeout_s": 1})
def not_before(ctx: CaseContext) -> None:
    ctx.require_expiry("idle_timeout_s")
    s = ctx.new_session()
    # The reported deadline (the earlier of idle and absolute), on the target's clock.
    time.sleep(max(0.0, _seconds_until(ctx, s.created["expires_at"], s.created["created_at"]) - 0.8))
    validate(ctx, s, "EXP-4")


@case("expiry.absolute-timeout", "a session in constant use expires at created_at + absolute_timeout_s",
      sends="create, validate every idle/3 seconds until past the absolute deadline",
      requirements=["EXP-1", "EXP-3"], needs=EXPIRY, waits={"absolute_timeout_s": 1})
def absolute(ctx: CaseContext) -> None:
    absolute_s = ctx.require_expiry("absolute_timeout_s", "idle_timeout_s")
    idle = float(ctx.limits["idle_timeout_s"])
    if absolute_s <= idle:
        ctx.note("absolute_timeout_s <= idle_timeout_s: the idle case covers it")
    s = ctx.new_session()
    deadline = parse_rfc3339(s.created["created_at"]).timestamp() + float(ctx.limits["absolute_timeout_s"])
    last = ""
    while True:
        exchange = ctx.call("session.validate", s.params())
        now = parse_rfc3339(exchange.reply["timestamp"]).timestamp()
        if exchange.reply["status"] == "error":
            break
        last = exchange.reply["result"]["expires_at"]
        expect_true(parse_rfc3339(last).timestamp() <= deadline + 0.002, "expires_at <= the absolute deadline",
                    last, "EXP-1")
        if now > deadline + 2 * MARGIN_S:
            break
        time.sleep(min(idle / 3, max(0.05, deadline - now + MARGIN_S)))
    error = expect_error(exchange, "SessionExpired", "EXP-3")
    expect_equal(datetime.fromtimestamp(deadline, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                 error["details"]["expired_at"][:19], "EXP-3", "expired_at (to the second)")


@case("expiry.tombstone-then-purge", "expired and closed sessions answer their state, then SessionNotFound",
      sends="create two; close one; let the other expire; wait past tombstone_retention_s; validate both",
      requirements=["EXP-5", "LIF-4", "EXP-1"], needs=EXPIRY, waits={"idle_timeout_s": 1, "tombstone_retention_s": 1})
def tombstones(ctx: CaseContext) -> None:
    retention = ctx.require_expiry("tombstone_retention_s", "idle_timeout_s")
    closing, expiring = ctx.new_session(), ctx.new_session()
    ok(ctx, "session.close", closing.params())
    expect_error(ctx.call("session.validate", closing.params()), "SessionClosed", "EXP-5")
    _wait_until(ctx, expiring.created["expires_at"], expiring.created["created_at"])
    expect_error(ctx.call("session.validate", expiring.params()), "SessionExpired", "EXP-5")
    time.sleep(retention + MARGIN_S)
    for s in (closing, expiring):
        error = expect_error(ctx.call("session.validate", s.params()), "SessionNotFound", "EXP-5")
        expect_equal({}, error.get("details", {}), "LIF-4", "details of a purged session")


@case("expiry.closed-beats-expired", "a closed session past its deadline answers SessionClosed",
      sends="create, close, wait past expires_at, validate", requirements=["LIF-3", "EXP-1"], needs=EXPIRY,
      waits={"idle_timeout_s": 1})
def closed_beats_expired(ctx: CaseContext) -> None:
    ctx.require_expiry("idle_timeout_s")
    span = min(ctx.limit("idle_timeout_s"), ctx.limit("absolute_timeout_s"))
    ctx.require_limits(ctx.limit("tombstone_retention_s") >= span + 1,
                       "tombstone_retention_s >= 1 + min(idle_timeout_s, absolute_timeout_s), to see a closed session"
                       " still remembered after its expiry deadline")
    s = ctx.new_session()
    ok(ctx, "session.close", s.params())
    _wait_until(ctx, s.created["expires_at"], s.created["created_at"], margin=0.3)
    expect_error(ctx.call("session.validate", s.params()), "SessionClosed", "LIF-3")


@case("expiry.wrong-token-on-expired", "a wrong token on an expired session is InvalidToken",
      sends="create, wait past expires_at, validate with a wrong token", requirements=["SEC-3", "ERR-1", "EXP-1"],
      needs=EXPIRY)
def wrong_token_expired(ctx: CaseContext) -> None:
    s, _ = _expired_session(ctx)
    expect_error(ctx.call("session.validate", s.params(token="Q" * 43)), "InvalidToken", "SEC-3")


# Per-command activity (EXP-2: every successful session-scoped request that is not a retry hit is activity).
ACTIVITY_PARAMS = {"session.resume": {}, "session.snapshot": {"state": {"preferences": {"a": 1}}},
                   "evaluate": {"code": "x := 1"}, "inspect": {"expression": "3 + 4"}}


def _register_activity(command: str) -> None:
    slug = command.replace("session.", "")

    @case(f"expiry.{slug}-is-activity", f"a successful {command} extends the idle deadline",
          sends=f"create, wait 3/4 of the idle timeout, {command}, wait past the create-time deadline, validate",
          requirements=["EXP-2", "EXP-1", "EXP-4", "VAL-2"], needs=[NEED_EXPIRY, *command_needs(command)],
          waits={"idle_timeout_s": 1.75})
    def is_activity(ctx: CaseContext) -> None:
        idle = _activity_can_move_the_deadline(ctx)
        s = ctx.new_session()
        # 3/4, not 1/2: the deadline the command should set must lie further past the create-time one than
        # the suite's deadline tolerance (1 s), or an expiry there would be excused, never failed (a server
        # for which the command is no activity was SKIPPED at idle_timeout_s 2: found by a mutant).
        time.sleep(idle * 0.75)
        exchange = ctx.call(command, s.params(**ACTIVITY_PARAMS[command]))
        expect_success(exchange, command, "EXP-2")
        _wait_until(ctx, s.created["expires_at"], exchange.reply["timestamp"], margin=0.15)
        result = validate(ctx, s, "EXP-2")
        last = (parse_rfc3339(result["last_active_at"]) - parse_rfc3339(exchange.reply["timestamp"])).total_seconds()
        expect_true(abs(last) <= 0.1, f"last_active_at at the {command} ({exchange.reply['timestamp']})",
                    result["last_active_at"], "VAL-2")


for _command in ACTIVITY_PARAMS:
    _register_activity(_command)


@case("expiry.p7-errors-do-not-extend", "P7 errors, id_reused and retry hits do not move the idle deadline",
      sends="create, validate, snapshot id R (RevisionConflict); at half the idle timeout: RevisionConflict,"
            " EvaluationError, ObjectNotFound, id_reused, a retry of R; wait past validate's expires_at; validate",
      requirements=["EXP-2", "ERR-3", "RTY-2", "RTY-3", "EXP-1"], needs=EXPIRY, waits={"idle_timeout_s": 1.5})
def p7_errors(ctx: CaseContext) -> None:
    idle = _activity_can_move_the_deadline(ctx)
    ctx.require_limits(ctx.limit("retry_window_s") >= idle + 2,
                       "retry_window_s >= idle_timeout_s + 2, so that a retry sent half an idle period later is"
                       " still inside the window")
    s = ctx.new_session()
    deadline = expect_success(ctx.call("session.validate", s.params()), "session.validate", "EXP-2")["expires_at"]
    # R is a request whose reply is cached (10.1: read-only ones are not): an error, which is no activity.
    first = ctx.call("session.snapshot", s.params(expected_revision=7), request_id="p7-r")
    expect_error(first, "RevisionConflict", "EXP-2")
    time.sleep(idle / 2)
    expect_error(ctx.call("session.snapshot", s.params(expected_revision=7)), "RevisionConflict", "EXP-2")
    if "evaluate" in ctx.capabilities:
        expect_error(ctx.call("evaluate", s.params(code="1 +")), "EvaluationError", "EXP-2")
    if "inspect" in ctx.capabilities:
        expect_error(ctx.call("inspect", s.params(object_id="o999999")), "ObjectNotFound", "EXP-2")
    reused = ctx.call("session.resume", s.params(), request_id="p7-r")
    expect_error(reused, "InvalidRequest", "RTY-3", reason="id_reused")
    expect_retry_reply(ctx, first, ctx.call("session.snapshot", s.params(expected_revision=7), request_id="p7-r"),
                       "RTY-2", "the retried snapshot")
    _wait_until(ctx, deadline, reused.reply["timestamp"], margin=0.3)
    expect_error(ctx.call("session.validate", s.params()), "SessionExpired", "EXP-2")


@case("expiry.retry-after-expiry", "a retry after the deadline gets the original reply (P6c before P6e)",
      sends="create, snapshot id R, wait past its expires_at, snapshot id R again",
      requirements=["ERR-1", "RTY-2"], needs=EXPIRY, waits={"idle_timeout_s": 1})
def retry_after_expiry(ctx: CaseContext) -> None:
    idle = ctx.require_expiry("idle_timeout_s")
    ctx.require_limits(ctx.limit("retry_window_s") >= idle + 2,
                       "retry_window_s >= idle_timeout_s + 2, so that a retry after the session's expiry is still"
                       " inside the retry window")
    s = ctx.new_session()
    first = ctx.call("session.snapshot", s.params(), request_id="late-retry")
    expect_success(first, "session.snapshot", "RTY-2")
    # The snapshot was the last activity: wait until past the deadline it set (idle, or absolute if earlier).
    time.sleep(max(0.0, s.formula_deadline - parse_rfc3339(first.reply["timestamp"]).timestamp()) + MARGIN_S)
    again = ctx.call("session.snapshot", s.params(), request_id="late-retry")
    expect_retry_reply(ctx, first, again, "ERR-1", "a retry after expiry (the cache is step P6c, expiry P6e)")


@case("expiry.tombstone-retention-from-end", "tombstones are kept for tombstone_retention_s after close or expiry",
      sends="create two; close one after idle/2 s, let the other expire; validate each shortly before"
            " its end + tombstone_retention_s",
      requirements=["EXP-5", "EXP-1"], needs=EXPIRY, waits={"idle_timeout_s": 1, "tombstone_retention_s": 1})
def retention_from_end(ctx: CaseContext) -> None:
    retention = ctx.require_expiry("tombstone_retention_s", "idle_timeout_s")
    idle = min(ctx.limit("idle_timeout_s"), ctx.limit("absolute_timeout_s"))  # an unused session's lifetime
    closing, expiring = ctx.new_session(), ctx.new_session()
    time.sleep(max(0.0, min(idle * 0.75, idle - 0.3)))
    closed = ctx.call("session.close", closing.params())
    expect_success(closed, "session.close", "EXP-5")
    closed_at = closed.reply["timestamp"]  # the close happened no later than its reply
    # Wait to shortly before each end + retention, measured on the target's clock; a server counting from
    # created_at has purged both by then.
    checks = sorted([(closed_at, closing, "SessionClosed"),
                     (expiring.created["expires_at"], expiring, "SessionExpired")], key=lambda c: parse_rfc3339(c[0]))
    now = closed.reply["timestamp"]
    for ended, s, code in checks:
        target = (parse_rfc3339(ended).timestamp() + retention - 0.5)
        wait = target - parse_rfc3339(now).timestamp()
        if wait > retention + idle + 1:  # an end that far ahead is itself wrong; never sleep on it
            raise CaseFailed(f"an end within {idle:g}s", ended, "EXP-1")
        time.sleep(max(0.0, wait))
        exchange = ctx.call("session.validate", s.params())
        expect_error(exchange, code, "EXP-5")
        now = exchange.reply["timestamp"]


# -- deadlines that must not move (issue 9): activity, restarts, and what each reports -------------------

def _ts(stamp: str) -> float:
    return parse_rfc3339(stamp).timestamp()


def _target_now(exchange: Exchange) -> float:
    """The target's clock now, estimated from a reply's timestamp and the local time since it arrived."""
    return _ts(exchange.reply["timestamp"]) + (time.monotonic() - exchange.received_at)


def _keep_until_absolute(ctx: CaseContext, s: SessionHandle, activity: str) -> None:
    """Use the session (`activity`, then validate) every idle/3 s until past created_at + absolute_timeout_s:
    no reported expires_at may lie beyond that deadline (EXP-1), and the session then answers SessionExpired
    with that deadline (EXP-3); an earlier expiry is one the case could not have caused."""
    idle = ctx.limit("idle_timeout_s")
    deadline = _ts(s.created["created_at"]) + ctx.limit("absolute_timeout_s")
    while True:
        if activity != "session.validate":
            ctx.call(activity, s.params(**ACTIVITY_PARAMS[activity]))  # judged by the validate that follows
        exchange = ctx.call("session.validate", s.params())
        now = _ts(exchange.reply["timestamp"])
        if exchange.reply["status"] == "error":
            break
        reported = exchange.reply["result"]["expires_at"]
        expect_true(_ts(reported) <= deadline + 0.002,
                    f"expires_at <= created_at + absolute_timeout_s ({_iso(deadline)})", reported, "EXP-1",
                    f"after {activity}, validate reports expires_at {reported}, past the absolute deadline "
                    f"{_iso(deadline)}: the absolute deadline moved")
        if now > deadline + 2 * MARGIN_S:
            break
        time.sleep(min(idle / 3, max(0.05, deadline - now + MARGIN_S)))
    if now < deadline - 0.002:
        # An error before the absolute deadline: SKIPPED when the idle deadline had passed (the machine was
        # too slow to keep the session alive), else a session expired before a deadline it was promised.
        expect_success(exchange, "session.validate", "EXP-4")
    retention = ctx.limit("tombstone_retention_s")
    if (exchange.reply.get("error") or {}).get("code") == "SessionNotFound" and now >= deadline + retention - 0.5:
        raise CaseSkipped(f"the validate after the absolute deadline came when the session may already have been "
                          f"purged (tombstone_retention_s {retention:g}s) on this machine: run the target with a"
                          f" longer tombstone_retention_s to check it")
    error = expect_error(exchange, "SessionExpired", "EXP-3")
    expect_equal(_iso(deadline)[:19], error["details"]["expired_at"][:19], "EXP-3", "expired_at (to the second)")


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@case("expiry.absolute-despite-snapshots", "snapshots never move the absolute deadline",
      sends="create; every idle/3 s: snapshot, validate; until past created_at + absolute_timeout_s",
      requirements=["EXP-1", "EXP-3", "EXP-4"], needs=EXPIRY, waits={"absolute_timeout_s": 1})
def absolute_despite_snapshots(ctx: CaseContext) -> None:
    ctx.require_expiry("absolute_timeout_s", "idle_timeout_s")
    ctx.require_limits(ctx.limit("absolute_timeout_s") > ctx.limit("idle_timeout_s"),
                       "absolute_timeout_s > idle_timeout_s, so that activity keeps a session alive up to its"
                       " absolute deadline")
    _keep_until_absolute(ctx, ctx.new_session(), "session.snapshot")


@case("expiry.absolute-across-restart", "a restart does not move the absolute deadline",
      sends="create, validate after idle/2 s, restart; every idle/3 s: validate, until past created_at +"
            " absolute_timeout_s",
      requirements=["EXP-1", "EXP-3", "EXP-4"], needs=[NEED_EXPIRY, NEED_RESTART],
      waits={"absolute_timeout_s": 1})
def absolute_across_restart(ctx: CaseContext) -> None:
    ctx.require_expiry("absolute_timeout_s", "idle_timeout_s")
    s = ctx.new_session()
    # Half an idle period before the restart, so that a deadline counted from the restart is clearly later.
    time.sleep(min(ctx.limit("idle_timeout_s"), ctx.limit("absolute_timeout_s")) / 2)
    validate(ctx, s)
    ctx.restart()
    _keep_until_absolute(ctx, s, "session.validate")


@case("expiry.idle-deadline-across-restart", "a restart never cuts short a reported idle deadline, and "
      "last_active_at never moves past the last activity",
      sends="create; at 3/4 of the idle timeout: validate (deadline E); restart; past the create-time deadline,"
            " before E: validate",
      requirements=["EXP-4", "EXP-1", "VAL-2"], needs=[NEED_EXPIRY, NEED_RESTART], waits={"idle_timeout_s": 2})
def idle_across_restart(ctx: CaseContext) -> None:
    idle = _activity_can_move_the_deadline(ctx)
    s = ctx.new_session()
    time.sleep(idle * 0.75)
    first = ctx.call("session.validate", s.params())
    promised = expect_success(first, "session.validate", "EXP-4")["expires_at"]
    ctx.restart()
    client = ctx.client()
    # Past the deadline the create reported (where a server counting from stored activity alone, which
    # did not keep the validate, expires the session), well before the one the validate reported. Both
    # bounded by the announced timeouts (EXP-1), so a wrong deadline never stretches the wait.
    _seconds_until(ctx, promised, first.reply["timestamp"])
    wait = _seconds_until(ctx, s.created["expires_at"], first.reply["timestamp"]) + 0.3
    time.sleep(max(0.0, wait - (time.monotonic() - first.received_at)))
    if _target_now(first) > _ts(promised) - 0.4:
        raise CaseSkipped(f"the restart took too long to check a deadline inside the idle timeout: run the target"
                          f" with a longer idle_timeout_s (announced {idle:g}s)")
    exchange = client.call("session.validate", s.params())
    result = expect_success(exchange, "session.validate", "EXP-4")
    expect_true(_ts(result["expires_at"]) >= _ts(promised) - 0.002, f">= {promised} (reported before the restart)",
                result["expires_at"], "EXP-1", "after the restart, expires_at is earlier than a deadline already"
                " reported: the idle base must be the later of the last activity and the server's start")
    last = result["last_active_at"]
    expect_true(_ts(s.created["created_at"]) - 0.1 <= _ts(last) <= _ts(first.reply["timestamp"]) + 0.1,
                f"between created_at and the last validate before the restart ({first.reply['timestamp']})", last,
                "VAL-2", f"last_active_at {last} after the restart is not an activity the server knew")


@case("expiry.expired-beats-command-errors", "an expired session answers SessionExpired, not the command's own "
      "error (P6e before P7)",
      sends="create, wait past expires_at; snapshot with a wrong expected_revision, inspect an unknown object,"
            " evaluate invalid code",
      requirements=["ERR-1", "EXP-3", "EXP-1"], needs=EXPIRY, waits={"idle_timeout_s": 1})
def expired_beats_command_errors(ctx: CaseContext) -> None:
    s, deadline = _expired_session(ctx)
    sends = [("session.snapshot", {"expected_revision": 99})]
    if "inspect" in ctx.capabilities:
        sends.append(("inspect", {"object_id": "o999999"}))
    if "evaluate" in ctx.capabilities:
        sends.append(("evaluate", {"code": "1 +"}))
    for command, extra in sends:
        error = expect_error(ctx.call(command, s.params(**extra)), "SessionExpired", "ERR-1")
        expect_equal(deadline, error["details"]["expired_at"], "EXP-3", f"details.expired_at of {command}")


@case("expiry.id-reused-after-expiry", "an id reused for another request on an expired session is id_reused "
      "(P6c before P6e)",
      sends="create, snapshot id R, wait past the deadline it set, resume id R",
      requirements=["RTY-3", "ERR-1", "EXP-1"], needs=EXPIRY, waits={"idle_timeout_s": 1})
def id_reused_after_expiry(ctx: CaseContext) -> None:
    idle = ctx.require_expiry("idle_timeout_s")
    ctx.require_limits(ctx.limit("retry_window_s") >= idle + 2,
                       "retry_window_s >= idle_timeout_s + 2, so that the id is still cached after the session's"
                       " expiry")
    s = ctx.new_session()
    # A snapshot: its reply is cacheable (10.1); it was the last activity, so wait past the deadline it set.
    first = ctx.call("session.snapshot", s.params(), request_id="reused-expired")
    expect_success(first, "session.snapshot", "RTY-3")
    time.sleep(max(0.0, s.formula_deadline - parse_rfc3339(first.reply["timestamp"]).timestamp()) + MARGIN_S)
    reply = ctx.call("session.resume", s.params(), request_id="reused-expired").reply
    error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
    got = f"{error.get('code')} ({(error.get('details') or {}).get('reason')})" if error else reply.get("status")
    # Checked here, not by expect_error: SessionExpired is the answer the case rules out, never an excuse.
    expect_equal("InvalidRequest (id_reused)", got, "RTY-3", "the reply to an id reused after the expiry",
                 path="$.error")
