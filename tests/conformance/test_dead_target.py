"""A target that dies mid-run: the suite says so and goes on (restarting it) or stops waiting.

Without this a crashed server would cost every later case its full request timeout, and a run
against it would look like a hung suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stui_protocol_kit.conformance.case import Outcome
from stui_protocol_kit.conformance.config import RunConfig
from stui_protocol_kit.conformance.runner import run
from stui_protocol_kit.protocol.server_process import ServerProcess

SERVER = Path(__file__).resolve().parents[1] / "faulty" / "server.py"
# close.* runs first (spec order: close before evaluate); its first session.close kills the server.
SELECT = ["close.*", "evaluate.integers", "evaluate.strings"]


def outcomes(report) -> dict[str, tuple[Outcome, str]]:
    return {r.case.id: (r.outcome, r.reason) for r in report.results}


def test_embedded_target_that_dies_is_restarted_and_later_cases_still_run():
    # A large max_sessions: below 10,000 each case closes the sessions it made when it ends (LIM-6), and
    # this server dies on the first close it gets.
    report = run(RunConfig(server_argv=[sys.executable, str(SERVER), "--fault", "dies-on-close"],
                           select=SELECT, timeout_s=2.0, server_extra_args=("--max-sessions", "100000")))
    got = outcomes(report)
    assert got["close.success"][0] is Outcome.TIMEOUT
    died = next(r for r in report.results if r.case.id == "close.success")
    assert any("restarted" in note for note in died.notes)
    assert got["evaluate.integers"][0] is Outcome.PASSED
    assert got["evaluate.strings"][0] is Outcome.PASSED
    assert report.exit_code == 1


def test_external_target_that_dies_skips_the_rest_with_the_reason(tmp_path):
    with ServerProcess([sys.executable, str(SERVER), "--fault", "dies-on-close", "--bind", "tcp://127.0.0.1:0",
                        "--data-dir", str(tmp_path / "data"), "--log-level", "WARNING"], name="faulty") as proc:
        assert proc.endpoint is not None
        report = run(RunConfig(target=proc.endpoint, select=SELECT, timeout_s=2.0))
    got = outcomes(report)
    assert got["close.success"][0] is Outcome.TIMEOUT
    later = [got[c] for c in got if not c.startswith("close.")]
    assert later and all(o is Outcome.SKIPPED and "stopped answering during close.success" in reason
                         for o, reason in later)
    assert report.exit_code == 1
