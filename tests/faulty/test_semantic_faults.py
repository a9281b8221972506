"""Every semantic fault (tests/faulty/semantic.py: a small patch of the reference server's logic) is
caught by the cases written for its family - and those cases only are run, so the test stays cheap.

The table names, per fault, the cases that must fail (FAILED or TIMEOUT) when run alone against the
faulty server; bench/mutation_score.py runs the whole default profile against every fault and shows
which other cases (if any) catch it too. That the same cases pass against the reference server under
every allowed setting is tests/conformance/test_fair_to_correct_servers.py's job.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stui_protocol_kit.conformance.case import Outcome
from stui_protocol_kit.conformance.runner import RunConfig, run

SERVER = Path(__file__).with_name("server.py")
# One server with short timeouts serves every selected case (the runner's default starts two): half the
# start-up cost per fault. The expiry cases' waits follow these limits.
SETTINGS = {"idle-timeout": 2, "absolute-timeout": 4, "tombstone-retention": 4, "retry-window": 60,
            "max-sessions-per-client": 4, "max-message-bytes": 65536, "cleanup-interval": 0.5}
# Faults seen only with longer timeouts: a departed connection is also detached by the idle window
# (disconnect-ignored), and a restart on a busy machine may outlast a 2 s session (the limit's count, the
# idle deadline across a restart): the runner's default servers, or longer timeouts.
DEFAULT_SERVERS = {"disconnect-ignored", "session-limit-in-memory", "session-limit-per-connection"}
LONGER = {"idle-base-from-stored-activity": {**SETTINGS, "idle-timeout": 5, "absolute-timeout": 12}}

# fault -> the cases that must fail against it (each case is run, and must fail)
CAUGHT_BY: dict[str, list[str]] = {
    # expiry and the clock
    "snapshot-restarts-absolute": ["expiry.absolute-despite-snapshots"],
    "absolute-from-restart": ["expiry.absolute-across-restart"],
    "idle-base-from-stored-activity": ["expiry.idle-deadline-across-restart"],
    "last-active-is-start": ["persistence.last-active-after-restart", "expiry.idle-deadline-across-restart"],
    "revision-check-before-expiry": ["expiry.expired-beats-command-errors"],
    "object-lookup-before-closed": ["lifecycle.closed-beats-command-errors"],
    "errors-touch-last-active": ["validate.last-active-after-errors"],
    "evaluate-is-no-activity": ["expiry.evaluate-is-activity"],
    # durability of what was reported, tombstones
    "expiry-not-durable": ["persistence.tombstones-across-restart"],
    "error-retry-not-durable": ["retries.durable-after-restart"],
    "tombstone-retention-from-restart": ["persistence.tombstones-across-restart"],
    "expired-tombstone-lost": ["persistence.tombstones-across-restart"],
    "purge-by-slow-sweep": ["expiry.tombstone-then-purge", "persistence.tombstones-across-restart"],
    # revisions after a fallback (--corrupt-newest-revision-command)
    "revision-from-restored": ["persistence.revision-after-fallback"],
    # limits
    "session-limit-per-connection": ["limits.sessions-per-client-across-connections",
                                     "limits.sessions-per-client-after-restart"],
    "session-limit-in-memory": ["limits.sessions-per-client-after-restart"],
    # inspect and evaluate
    "inspect-reevaluates": ["inspect.by-object-id-is-the-registered-value"],
    "string-quotes-restored-wrong": ["persistence.strings-after-restart"],
    # the retry cache
    "fingerprint-member-order": ["retries.member-order-irrelevant"],
    "lifecycle-before-id-reuse": ["retries.id-reused-before-closed", "expiry.id-reused-after-expiry"],
    # snapshot merge
    "empty-client-part-ignored": ["snapshot.empty-client-parts"],
    # connection tracking (CON-8 is a SHOULD: NON-STRICT)
    "attach-on-failed-request": ["concurrency.failed-request-does-not-attach"],
    "disconnect-ignored": ["concurrency.disconnect-forgotten"],
    # resume's source
    "resume-source-first-resume": ["persistence.resume-after-other-command"],
    # ordering
    "cheap-first": ["concurrency.mixed-order-on-one-connection"],
}


@pytest.mark.parametrize("fault", sorted(CAUGHT_BY))
def test_semantic_fault_is_caught_by_its_cases(fault: str) -> None:
    cases = CAUGHT_BY[fault]
    report = run(RunConfig(server_argv=[sys.executable, str(SERVER), "--fault", fault], select=cases, timeout_s=2.0,
                           server_settings=None if fault in DEFAULT_SERVERS else LONGER.get(fault, SETTINGS)))
    outcomes = {r.case.id: r.outcome for r in report.results}
    assert set(outcomes) == set(cases), outcomes
    missed = {r.case.id: (r.outcome.value, r.reason) for r in report.results
              if r.outcome not in (Outcome.FAILED, Outcome.TIMEOUT, Outcome.NON_STRICT)}
    assert not missed, missed
    for result in report.results:
        # Every finding names a requirement the case declares (or one every reply is held to).
        assert result.problems and all(p.requirement for p in result.problems), result.case.id


def test_every_semantic_fault_is_in_the_table() -> None:
    sys.path.insert(0, str(SERVER.parent))
    try:
        from semantic import SEMANTIC  # the faults, imported only to list them
    finally:
        sys.path.remove(str(SERVER.parent))
    assert set(SEMANTIC) == set(CAUGHT_BY)
