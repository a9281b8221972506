"""The suite never accuses a correct server: the reference server passes under every kind of setting the
spec allows - the minimum timeouts and limits, an absolute timeout below the idle one, the largest limits -
or the cases that cannot run there are SKIPPED with a reason naming the setting or flag that would let
them run. And `--differential` compares only what the spec fixes: a stock reference server passes it.
"""

from __future__ import annotations

import re

import pytest

from stui_protocol_kit.conformance.case import Outcome
from stui_protocol_kit.conformance.config import RunConfig
from stui_protocol_kit.conformance.runner import run

# Reference-server command-line settings (spec/11-limits.md gives the minimums).
CONFIGURATIONS = {
    "minimum timeouts and limits": {
        "idle-timeout": 1, "absolute-timeout": 1, "tombstone-retention": 1, "retry-window": 1,
        "max-sessions-per-client": 1, "max-message-bytes": 65536, "max-nesting-depth": 32, "max-revisions": 2,
        "max-sessions": 16, "retry-cache-bytes": 1048576, "cleanup-interval": 0.2,
    },
    "absolute timeout below the idle one": {
        "idle-timeout": 4, "absolute-timeout": 2, "tombstone-retention": 3, "retry-window": 60,
        "cleanup-interval": 0.5,
    },
    "largest limits": {
        "idle-timeout": 86400 * 365, "absolute-timeout": 86400 * 3650, "tombstone-retention": 86400 * 365,
        "retry-window": 86400, "max-sessions-per-client": 1_000_000, "max-message-bytes": 64 * 1024 * 1024,
        "max-nesting-depth": 512, "max-revisions": 1000, "max-sessions": 10**9, "retry-cache-bytes": 2**40,
    },
}
# A skip reason says what would let the case run: a limit of the target, or a flag of the run.
NAMES_A_SETTING = re.compile(r"[a-z_]+_s\b|max_[a-z_]+|--[a-z-]+")


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_a_correct_server_passes_under_every_allowed_setting(name: str) -> None:
    # A generous --timeout: on a loaded 2-core machine a reply behind a 64 MiB message ("largest limits")
    # took over the default 5 s. Missing replies are judged elsewhere; here a slow correct server must pass.
    report = run(RunConfig(server_settings=CONFIGURATIONS[name], examples=20, seed=3, timeout_s=15.0))
    blamed = {r.case.id: (r.outcome.value, r.problem.message if r.problem else r.reason)
              for r in report.results if r.outcome in (Outcome.FAILED, Outcome.TIMEOUT, Outcome.NON_STRICT,
                                                       Outcome.ERROR)}
    assert not blamed, blamed
    assert report.run_verdict().verdict.value in ("PASS", "INCOMPLETE")
    for result in report.results:
        if result.outcome is Outcome.SKIPPED:
            assert NAMES_A_SETTING.search(result.reason), (result.case.id, result.reason)


def test_differential_mode_passes_a_stock_reference_server_for_ten_seeds() -> None:
    # A stock server (default settings: 16 sessions per client, ...) as the target; the comparison server
    # must take the target's announced limits, not the embedded defaults.
    for seed in range(10):
        report = run(RunConfig(select=("stateful.sessions",), differential=True, seed=seed, examples=12,
                               server_settings={}))
        (result,) = report.results
        assert result.outcome is Outcome.PASSED, (seed, result.problem, result.reason)


def test_the_total_session_cap_case_passes_a_correct_server_with_a_small_cap() -> None:
    """limits.total-sessions runs only against a cap it can reach cheaply; the embedded server's is
    large (so the run's own sessions never fill it), so here a reference server with a cap of 30, after
    other cases left sessions active: the refusal may come early, never too late or wrongly."""
    settings = {"max-sessions": 30, "idle-timeout": 60, "absolute-timeout": 600, "cleanup-interval": 0.5}
    report = run(RunConfig(server_settings=settings, select=("create.*", "limits.total-sessions")))
    outcomes = {r.case.id: r.outcome for r in report.results}
    assert outcomes.pop("limits.total-sessions") is Outcome.PASSED, report.results
    assert all(o in (Outcome.PASSED, Outcome.SKIPPED) for o in outcomes.values()), outcomes
