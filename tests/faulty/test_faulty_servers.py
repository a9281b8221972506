"""Every faulty server is caught, on the right cases, and only there.

Each fault (tests/faulty/server.py) runs as a real ZeroMQ server started by the runner like the
embedded reference server; the suite runs the fault's case groups and must fail (FAILED or TIMEOUT)
on exactly the listed cases while passing the rest of those groups. Together they prove that every
group's checks can fail.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stui_protocol_kit.conformance.case import Outcome
from stui_protocol_kit.conformance.runner import RunConfig, run

SERVER = Path(__file__).with_name("server.py")

AFTER_CLOSE = [f"lifecycle.{c}-after-close" for c in ("evaluate", "inspect", "close", "resume", "snapshot", "validate")]
WRONG_TOKEN = [f"lifecycle.{c}-wrong-token" for c in ("evaluate", "inspect", "close", "resume", "snapshot", "validate")]
AFTER_EXPIRY = [f"expiry.{c}-after-expiry" for c in ("evaluate", "inspect", "close", "resume", "snapshot", "validate")]

# fault -> (groups run, cases that must fail: everything else in those groups must pass)
EXPECTED: dict[str, tuple[list[str], list[str]]] = {
    "accepts-wrong-token": (["security", "lifecycle"], [
        *WRONG_TOKEN, "lifecycle.closed-wrong-token", "security.token-variants", "security.wrong-token-reveals-nothing",
        "security.wrong-token-no-effect", "security.connection-is-not-identity"]),
    "loses-state-on-restart": (["persistence"], [
        "persistence.state-after-restart", "persistence.bindings-after-restart",
        "persistence.unsnapshotted-changes-lost",
        "persistence.objects-after-restart", "persistence.closed-after-restart", "persistence.revisions-continue",
        "persistence.tracking-reset", "persistence.expiry-across-restart",
        "persistence.unsnapshotted-objects-lost", "persistence.strings-after-restart",
        "persistence.resume-after-other-command", "persistence.last-active-after-restart",
        "persistence.revision-after-fallback", "persistence.tombstones-across-restart"]),
    "reuses-revision": (["snapshot", "concurrency"], [
        "concurrency.distinct-revisions", "concurrency.order-on-one-connection", "snapshot.revisions-increment",
        "snapshot.revision-conflict", "snapshot.expected-revision-match"]),
    "mislabels-closed": (["close", "lifecycle"], [
        "close.success", "close.twice", "close.closed-at-stable", *AFTER_CLOSE, "lifecycle.no-revival",
        "lifecycle.closed-beats-command-errors"]),
    "silent-on-bad-json": (["transport"], ["transport.invalid-utf8", "transport.not-json", "transport.not-json-req"]),
    "drops-result-field": (["validate"], ["validate.success", "validate.last-active-at", "validate.changes-nothing",
                                          "validate.last-active-after-errors"]),
    "integers-as-floats": (["hello", "limits"], [
        "hello.success", "hello.same-on-every-connection", "hello.touches-no-session", "hello.server-identity",
        "limits.announced", "limits.stable", "limits.payload-too-large"]),
    "echoes-wrong-id": (["envelope"], [
        "envelope.missing-member", "envelope.unknown-member", "envelope.wrong-types", "envelope.error-echo",
        "envelope.error-echo-null", "envelope.parameter-violations", "envelope.version-in-every-reply",
        "envelope.no-undefined-members"]),
    "leaks-wrong-token-details": (["security"], [
        "security.token-variants", "security.wrong-token-reveals-nothing", "security.wrong-token-no-effect",
        "security.connection-is-not-identity"]),
    "executes-retry-twice": (["retries"], [
        "retries.snapshot-not-executed-twice", "retries.other-connection", "retries.id-reused",
        "retries.evaluate-not-executed-twice", "retries.close-retry", "retries.pipelined-duplicate",
        "retries.durable-after-restart", "retries.error-reply-cached", "retries.kept-for-the-window",
        "retries.durable-kept-under-cache-pressure", "retries.member-order-irrelevant",
        "retries.id-reused-before-closed"]),
    "ignores-expected-revision": (["snapshot"], ["snapshot.revision-conflict"]),
    "close-not-final": (["close"], ["close.success", "close.twice", "close.closed-at-stable"]),
    "never-expires": (["expiry"], [
        *AFTER_EXPIRY, "expiry.activity-extends", "expiry.errors-do-not-extend", "expiry.absolute-timeout",
        "expiry.not-before-deadline",
        "expiry.tombstone-then-purge", "expiry.closed-beats-expired", "expiry.wrong-token-on-expired",
        *[f"expiry.{c}-is-activity" for c in ("resume", "snapshot", "evaluate", "inspect")],
        "expiry.p7-errors-do-not-extend", "expiry.tombstone-retention-from-end", "expiry.absolute-despite-snapshots",
        "expiry.idle-deadline-across-restart", "expiry.expired-beats-command-errors",
        "expiry.absolute-across-restart"]),
    "accepts-extra-frames": (["transport"], [
        "transport.multi-frame-dealer", "transport.multi-frame-req-style", "transport.multi-frame-req-socket",
        "transport.oversize-multi-frame"]),
    "attached-always-one": (["concurrency"], ["concurrency.attached-clients", "concurrency.attached-idle-window",
                                              "concurrency.disconnect-forgotten"]),
    "evaluate-wrong-class": (["evaluate"], ["evaluate.large-integers"]),
    "inspect-reuses-ids": (["inspect"], ["inspect.expression", "inspect.new-object-ids", "inspect.by-object-id",
                                         "inspect.by-object-id-is-the-registered-value"]),
    "wrong-supported-versions": (["versioning"], [
        "versioning.unsupported-version-bare", "versioning.unsupported-version-hello",
        "versioning.unsupported-near-versions"]),
    "nulls-as-absent": (["compatibility"], ["compatibility.null-rejected"]),
    "resume-always-durable": (["resume"], ["resume.live-state"]),
    "version-checked-late": (["errors"], ["errors.version-before-envelope", "errors.registry-details"]),
    "create-expiry-wrong": (["create"], ["create.success"]),
    # 1.0.1's replay keyed by the connection: caught where a repeat comes on the same routing id.
    "replays-create": (["retries"], ["retries.create-never-replayed", "retries.create-same-routing-id"]),
    "drops-durable-under-pressure": (["retries"], ["retries.durable-kept-under-cache-pressure"]),
    "ignores-max-sessions": (["limits"], ["limits.total-sessions"]),
}


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_suite_fails_faulty_server_on_the_right_cases(fault: str) -> None:
    groups, must_fail = EXPECTED[fault]
    report = run(RunConfig(server_argv=[sys.executable, str(SERVER), "--fault", fault],
                           select=[f"{g}.*" for g in groups], timeout_s=2.0))
    assert report.results, "no case ran"
    failing = {r.case.id for r in report.results if r.outcome in (Outcome.FAILED, Outcome.TIMEOUT, Outcome.NON_STRICT)}
    assert failing == set(must_fail), {
        "not caught": sorted(set(must_fail) - failing),
        "failed unexpectedly": {r.case.id: r.problem.message if r.problem else r.reason
                                for r in report.results if r.case.id in failing - set(must_fail)},
    }
    assert not [r.case.id for r in report.results if r.outcome is Outcome.ERROR], "a fault is never a suite error"
    assert report.exit_code == 1
    for result in report.results:
        if result.case.id in failing:
            # Every finding names a requirement the case declares (or one every reply is held to).
            assert result.problems and all(p.requirement for p in result.problems), result.case.id


def test_every_case_group_has_a_faulty_server() -> None:
    from stui_protocol_kit.conformance.case import load_cases

    spec_groups = {c.group for c in load_cases()} - {"generated", "stateful"}
    covered = {g for groups, _ in EXPECTED.values() for g in groups}
    assert spec_groups <= covered, sorted(spec_groups - covered)


def test_every_fault_of_the_faulty_server_is_proven_caught() -> None:
    sys.path.insert(0, str(SERVER.parent))
    try:
        from server import FAULTS  # the script, imported only to list its faults
    finally:
        sys.path.remove(str(SERVER.parent))
    from semantic import SEMANTIC  # proven by tests/faulty/test_semantic_faults.py

    # dies-on-close is proven by tests/conformance/test_dead_target.py
    assert set(FAULTS) - {"dies-on-close"} - set(SEMANTIC) == set(EXPECTED)
