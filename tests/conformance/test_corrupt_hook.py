"""`--corrupt-newest-revision-command`: optional like `--restart-command`. Without it the fallback cases are
SKIPPED with a reason naming the flag; with it, the suite appends the session id and the command damages
that session's newest revision (the embedded server provides the reference server's own tool)."""

from __future__ import annotations

import pytest

from stui_protocol_kit.conformance.case import Outcome
from stui_protocol_kit.conformance.cli import main as cli_main
from stui_protocol_kit.conformance.config import RunConfig
from stui_protocol_kit.conformance.runner import run
from stui_protocol_kit.conformance.target import EmbeddedServer

CASE = "persistence.revision-after-fallback"


def test_fallback_case_is_skipped_naming_the_flag_when_the_target_has_no_hook() -> None:
    with EmbeddedServer(name="no-hook") as server:
        assert server.endpoint is not None
        # A restart command that restarts nothing: only the missing corrupt hook keeps the case from running.
        report = run(RunConfig(target=server.endpoint, restart_command="true", select=[CASE]))
    (result,) = report.results
    assert result.outcome is Outcome.SKIPPED, result
    assert "--corrupt-newest-revision-command" in result.reason


def test_a_failing_hook_is_the_suites_error_never_a_verdict() -> None:
    with EmbeddedServer(name="bad-hook") as server:
        assert server.endpoint is not None
        report = run(RunConfig(target=server.endpoint, restart_command="true", corrupt_command="false",
                               select=[CASE]))
    (result,) = report.results
    assert result.outcome is Outcome.ERROR, result
    assert "corrupt command" in result.reason


def test_the_run_verb_takes_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["run", "--help"]) == 0
    assert "--corrupt-newest-revision-command" in capsys.readouterr().out


def test_the_embedded_server_provides_the_hook() -> None:
    # The case asserts a fallback from revision 2 to 1 after the restart: it passes only if the reference
    # tool damaged exactly the newest revision.
    report = run(RunConfig(select=[CASE]))
    (result,) = report.results
    assert result.outcome is Outcome.PASSED, (result.problem, result.reason)
