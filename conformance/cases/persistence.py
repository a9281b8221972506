"""Cases for spec 7, persistence (PER), and resume after a restart (RES-3, RES-5).

Cases that restart the target need `restart` (the embedded server restarts by SIGKILL; a remote target
needs --restart-command) and run last, alone. `persistence.resume-new-connection` needs no restart.
"""

from __future__ import annotations

import time

from stui_protocol_kit.conformance.case import NEED_CORRUPT, NEED_EXPIRY, NEED_RESTART, CaseSkipped, case
from stui_protocol_kit.conformance.cases._helpers import evaluate, ok, resume, snapshot, validate
from stui_protocol_kit.conformance.cases.expiry import _seconds_until as seconds_until
from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.verifiers import (
    expect_equal,
    expect_error,
    expect_state_equal,
    expect_success,
    expect_true,
)
from stui_protocol_kit.protocol.codec import parse_rfc3339

RESTART = [NEED_RESTART]


@case("persistence.resume-new-connection", "a new connection resumes the same state",
      sends="create, snapshot {inspector, preferences} on A; resume on a new connection B",
      requirements=["CON-2", "RES-1"])
def new_connection(ctx: CaseContext) -> None:
    s = ctx.new_session(client=ctx.client())
    snapshot(ctx, s, state={"inspector": {"i": [1, 2]}, "preferences": {"p": "x"}})
    expected = resume(ctx, s)
    got = resume(ctx, s, "CON-2", client=ctx.client())
    expect_state_equal(expected["state"], got["state"], "CON-2")
    expect_equal(expected["revision"], got["revision"], "CON-2", "revision")


@case("persistence.state-after-restart", "state and revision survive a restart",
      sends="create, snapshot x2, restart, resume on a new connection",
      requirements=["PER-1", "PER-2", "RES-3", "PER-10", "PER-11"], needs=RESTART)
def after_restart(ctx: CaseContext) -> None:
    s = ctx.new_session()
    snapshot(ctx, s, state={"inspector": {"ratio": 0.25, "n": None}})
    snapshot(ctx, s, state={"preferences": {"theme": "dark"}})
    before = resume(ctx, s)
    untouched = ctx.new_session()
    ctx.restart()
    client = ctx.client()
    got = resume(ctx, s, "PER-2", client=client)
    expect_equal("durable", got["source"], "RES-3", "source")
    if got["revision"] < 2:  # a fallback must say so (PER-10) before PER-2 fails it anyway
        fallback = got.get("fallback") or {}
        expect_equal(got["revision"], fallback.get("to_revision"), "PER-10", "fallback.to_revision")
    expect_equal(2, got["revision"], "PER-2", "revision")
    expect_state_equal(before["state"], got["state"], "PER-2")
    expect_true("fallback" not in got, "no fallback", got.get("fallback"), "PER-11")
    expect_equal("live", resume(ctx, s, client=client)["source"], "RES-3", "source of a second resume")
    validate(ctx, untouched, "PER-1", client=client)


@case("persistence.bindings-after-restart", "workspace bindings are usable after a restart",
      sends="evaluate 'x := 20. s := ''ab''', snapshot, restart, evaluate 'x + 1', 's , ''c'''",
      requirements=["PER-5", "RES-5"], needs=[NEED_RESTART, "evaluate"])
def bindings(ctx: CaseContext) -> None:
    s = ctx.new_session()
    evaluate(ctx, s, "x := 20. s := 'ab'. big := 1152921504606846976 * 3")
    snapshot(ctx, s)
    ctx.restart()
    client = ctx.client()
    # No resume first: every command must load the session by itself (RES-5).
    expect_equal("21", evaluate(ctx, s, "x + 1", "PER-5", client)["print_string"], "PER-5", "x + 1")
    expect_equal("'abc'", evaluate(ctx, s, "s , 'c'", "PER-5", client)["print_string"], "PER-5", "s , 'c'")
    expect_equal(str(1152921504606846976 * 3 - 1), evaluate(ctx, s, "big - 1", "PER-5", client)["print_string"],
                 "PER-5", "big - 1")


@case("persistence.unsnapshotted-changes-lost", "after a restart, resume returns the stored revision only",
      sends="evaluate 'kept := 1', snapshot, evaluate 'lost := 2', restart, resume",
      requirements=["PER-3"], needs=[NEED_RESTART, "evaluate"])
def unsnapshotted(ctx: CaseContext) -> None:
    s = ctx.new_session()
    evaluate(ctx, s, "kept := 1")
    snapshot(ctx, s)
    evaluate(ctx, s, "lost := 2")
    ctx.restart()
    variables = resume(ctx, s, "PER-3", client=ctx.client())["state"]["workspace"]["variables"]
    expect_equal(["kept"], sorted(variables), "PER-3", "workspace variables after restart")


@case("persistence.objects-after-restart", "registered objects survive a restart; new ids are not reused",
      sends="inspect '6 * 7', snapshot, restart, inspect {object_id}, inspect '1'",
      requirements=["PER-6"], needs=[NEED_RESTART, "inspect"])
def objects(ctx: CaseContext) -> None:
    s = ctx.new_session()
    first = ok(ctx, "inspect", s.params(expression="6 * 7"))
    snapshot(ctx, s)
    ctx.restart()
    client = ctx.client()
    expect_equal(first, ok(ctx, "inspect", s.params(object_id=first["object_id"]), "PER-6", client), "PER-6",
                 "inspect by object_id after restart")
    fresh = ok(ctx, "inspect", s.params(expression="1"), "PER-6", client)
    expect_true(fresh["object_id"] != first["object_id"], "a new object_id", fresh["object_id"], "PER-6")


@case("persistence.unsnapshotted-objects-lost", "an object registered after the last snapshot is gone after a "
      "restart, and its id is never issued again",
      sends="inspect '1', snapshot, inspect '2' (id X), restart, inspect {object_id: X}, inspect '3'",
      requirements=["INS-4", "PER-3", "PER-6"], needs=[NEED_RESTART, "inspect"])
def unsnapshotted_objects(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ok(ctx, "inspect", s.params(expression="1"))
    snapshot(ctx, s)
    lost = ok(ctx, "inspect", s.params(expression="2"))["object_id"]
    ctx.restart()
    client = ctx.client()
    expect_error(client.call("inspect", s.params(object_id=lost)), "ObjectNotFound", "INS-4")
    fresh = ok(ctx, "inspect", s.params(expression="3"), "PER-6", client)
    expect_true(fresh["object_id"] != lost, f"an object_id other than {lost}", fresh["object_id"], "PER-6",
                "an id lost with the restart was issued again")


@case("persistence.closed-after-restart", "a closed session stays closed after a restart",
      sends="create, close, restart, validate", requirements=["PER-4", "LIF-1"], needs=RESTART)
def closed(ctx: CaseContext) -> None:
    s = ctx.new_session()
    ok(ctx, "session.close", s.params())
    ctx.restart()
    expect_error(ctx.client().call("session.validate", s.params()), "SessionClosed", "PER-4")


@case("persistence.revisions-continue", "revision numbers continue after a restart, never reused",
      sends="snapshot x2, restart, snapshot, resume", requirements=["PER-7", "SNP-1"], needs=RESTART)
def revisions_continue(ctx: CaseContext) -> None:
    s = ctx.new_session()
    snapshot(ctx, s)
    snapshot(ctx, s)
    ctx.restart()
    client = ctx.client()
    expect_equal(3, snapshot(ctx, s, "PER-7", client=client)["revision"], "PER-7", "revision after restart")
    expect_equal(3, resume(ctx, s, client=client)["revision"], "PER-7", "resumed revision")


@case("persistence.tracking-reset", "a restart resets connection tracking",
      sends="use a session on two connections, restart, validate on a third", requirements=["CON-9"],
      needs=RESTART)
def tracking_reset(ctx: CaseContext) -> None:
    s = ctx.new_session()
    validate(ctx, s, client=ctx.client())
    validate(ctx, s, client=ctx.client())
    ctx.restart()
    expect_equal(1, validate(ctx, s, "CON-9", client=ctx.client())["attached_clients"], "CON-9", "attached_clients")


@case("persistence.expiry-across-restart", "a restart does not bring an expiry deadline forward",
      sends="create, validate, restart, validate", requirements=["EXP-4"], needs=RESTART)
def expiry_across_restart(ctx: CaseContext) -> None:
    s = ctx.new_session()
    before = validate(ctx, s)
    ctx.restart()
    after = validate(ctx, s, "EXP-4", client=ctx.client())
    expect_true(after["expires_at"] >= before["expires_at"], f">= {before['expires_at']}", after["expires_at"],
                "EXP-4")


@case("persistence.live-changes-kept", "live changes of an active session are kept while other sessions work",
      sends="evaluate 'keep := 1' (no snapshot), 30 other sessions each snapshot, resume the first",
      requirements=["PER-13", "RES-2"], needs=["evaluate"])
def live_changes_kept(ctx: CaseContext) -> None:
    s = ctx.new_session()
    evaluate(ctx, s, "keep := 1")
    for i in range(30):
        other = ctx.new_session(client_id=ctx.client_id(f"other-{i}"))
        snapshot(ctx, other, state={"preferences": {"i": i}})
    variables = resume(ctx, s, "PER-13")["state"]["workspace"]["variables"]
    expect_equal({"class": "SmallInteger", "print_string": "1"}, variables.get("keep"), "PER-13", "workspace keep")


@case("persistence.last-active-after-restart", "after a restart last_active_at is an activity the server knew, "
      "never a later time",
      sends="create, wait 0.3 s, validate, wait 0.3 s, restart, validate", requirements=["VAL-2"], needs=RESTART)
def last_active_after_restart(ctx: CaseContext) -> None:
    s = ctx.new_session()
    time.sleep(0.3)
    before = ctx.call("session.validate", s.params())
    expect_success(before, "session.validate", "VAL-2")
    time.sleep(0.3)
    ctx.restart()
    last = validate(ctx, s, "VAL-2", client=ctx.client())["last_active_at"]
    created, latest = parse_rfc3339(s.created["created_at"]), parse_rfc3339(before.reply["timestamp"])
    expect_true((created - parse_rfc3339(last)).total_seconds() <= 0.1
                and (parse_rfc3339(last) - latest).total_seconds() <= 0.1,
                f"between created_at {s.created['created_at']} and the last validate {before.reply['timestamp']}",
                last, "VAL-2", f"last_active_at {last} after the restart is not an activity the server knew (the"
                " restart itself is no activity)")


@case("persistence.tombstones-across-restart", "expired and closed sessions stay so across a restart, with their "
      "end times, and are purged tombstone_retention_s after their end",
      sends="create one, and another shortly before the first expires; validate the first (SessionExpired), close"
            " the second; restart; validate both;"
            " wait past each end + tombstone_retention_s; validate both",
      requirements=["LIF-1", "EXP-1", "EXP-3", "EXP-5", "PER-4", "CLS-2"], needs=[NEED_RESTART, NEED_EXPIRY],
      waits={"idle_timeout_s": 1, "tombstone_retention_s": 1})
def tombstones_across_restart(ctx: CaseContext) -> None:
    retention = ctx.require_expiry("tombstone_retention_s", "idle_timeout_s")
    ctx.require_limits(retention >= 3, "tombstone_retention_s >= 3, so that tombstones outlive a restart")
    expiring = ctx.new_session()
    lifetime = seconds_until(ctx, expiring.created["expires_at"], expiring.created["created_at"])
    # Both tombstones start just before the restart, so that a slow restart still leaves most of their
    # retention: the second session is created late enough to be open still when the first has expired.
    time.sleep(max(0.0, lifetime - 0.4))
    closing = ctx.new_session()
    time.sleep(1.0)
    expired = expect_error(ctx.call("session.validate", expiring.params()), "SessionExpired", "EXP-3")
    ok(ctx, "session.close", closing.params())
    closed = expect_error(ctx.call("session.validate", closing.params()), "SessionClosed", "PER-4")
    ctx.restart()
    client = ctx.client()
    ends = {closing.session_id: parse_rfc3339(closed["details"]["closed_at"]).timestamp(),
            expiring.session_id: parse_rfc3339(expired["details"]["expired_at"]).timestamp()}
    for s, code, member, before in ((closing, "SessionClosed", "closed_at", closed),
                                    (expiring, "SessionExpired", "expired_at", expired)):
        exchange = client.call("session.validate", s.params())
        if parse_rfc3339(exchange.reply["timestamp"]).timestamp() > ends[s.session_id] + retention - 0.3:
            raise CaseSkipped(f"the restart took too long to see a tombstone within tombstone_retention_s"
                              f" ({retention:g}s): run the target with a longer tombstone_retention_s")
        after = expect_error(exchange, code, "LIF-1" if code == "SessionExpired" else "PER-4")
        expect_equal(before["details"][member], after["details"][member], "CLS-2" if member == "closed_at" else
                     "EXP-3", f"details.{member} after the restart")
    # Past the later end + retention (on the target's clock, from the last reply): both purged.
    now = parse_rfc3339(exchange.reply["timestamp"]).timestamp()
    # Never longer than the announced limits allow: an end time far off is itself wrong (CLS-2, EXP-3).
    time.sleep(min(retention + lifetime + 2, max(0.0, max(ends.values()) + retention - now) + 0.6))
    for s in (closing, expiring):
        expect_error(client.call("session.validate", s.params()), "SessionNotFound", "EXP-5")


@case("persistence.strings-after-restart", "strings with embedded quotes are restored exactly after a restart",
      sends="evaluate \"s := 'it''s'. t := ''''\", snapshot, restart, evaluate 's', \"s , 'x'\", 't , t'",
      requirements=["PER-5", "RES-5"], needs=[NEED_RESTART, "evaluate"])
def strings_after_restart(ctx: CaseContext) -> None:
    s = ctx.new_session()
    evaluate(ctx, s, "s := 'it''s'. t := ''''")
    snapshot(ctx, s)
    ctx.restart()
    client = ctx.client()
    for code, expected in (("s", "'it''s'"), ("s , 'x'", "'it''sx'"), ("t , t", "''''''")):
        got = evaluate(ctx, s, code, "PER-5", client)["print_string"]
        expect_equal(expected, got, "PER-5", f"{code} after the restart")


@case("persistence.resume-after-other-command", "after a restart, a resume that follows another command is live",
      sends="evaluate 'kept := 1', snapshot, restart, evaluate 'added := 2', resume",
      requirements=["RES-2", "RES-5"], needs=[NEED_RESTART, "evaluate"])
def resume_after_other_command(ctx: CaseContext) -> None:
    s = ctx.new_session()
    evaluate(ctx, s, "kept := 1")
    snapshot(ctx, s)
    ctx.restart()
    client = ctx.client()
    # The evaluate loads the session (RES-5) and changes it: the resume must answer that live state.
    evaluate(ctx, s, "added := 2", "RES-5", client)
    got = resume(ctx, s, "RES-2", client=client)
    expect_equal("live", got["source"], "RES-2", "source of a resume after an evaluate loaded the session")
    expect_equal(["added", "kept"], sorted(got["state"]["workspace"]["variables"]), "RES-2", "workspace variables")


@case("persistence.revision-after-fallback", "after a fallback the next snapshot gets a number never used before",
      sends="snapshot x2, damage the newest revision, restart, resume (fallback), snapshot, restart, resume",
      requirements=["PER-7", "PER-10", "SNP-1", "PER-2"], needs=[NEED_RESTART, NEED_CORRUPT])
def revision_after_fallback(ctx: CaseContext) -> None:
    s = ctx.new_session()
    snapshot(ctx, s, state={"preferences": {"n": 1}})
    snapshot(ctx, s, state={"preferences": {"n": 2}})
    ctx.corrupt_newest_revision(s.session_id)
    ctx.restart()
    client = ctx.client()
    got = resume(ctx, s, client=client)
    expect_equal(1, got["revision"], "PER-10", "revision restored after revision 2 was damaged")
    expect_equal({"from_revision": 2, "to_revision": 1}, {k: (got.get("fallback") or {}).get(k)
                 for k in ("from_revision", "to_revision")}, "PER-10", "fallback")
    expect_equal({"n": 1}, got["state"]["preferences"], "PER-10", "preferences of revision 1")
    after = snapshot(ctx, s, "SNP-1", client=client, state={"preferences": {"n": 3}})["revision"]
    expect_true(after > 2, "a revision above 2 (revision 2 was acknowledged before)", after, "PER-7",
                f"the snapshot after the fallback reused revision number {after}")
    ctx.restart()
    again = resume(ctx, s, "PER-2", client=ctx.client())
    expect_equal(after, again["revision"], "PER-2", "revision after a second restart")
    expect_equal({"n": 3}, again["state"]["preferences"], "PER-2", "preferences after a second restart")
