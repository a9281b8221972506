"""The terminal report: a progress bar and only non-passing lines on a terminal, every case when piped."""

from __future__ import annotations

import io

from stui_protocol_kit.conformance.case import Case, CaseResult, Outcome
from stui_protocol_kit.conformance.config import RunConfig
from stui_protocol_kit.conformance.report.terminal import TerminalReport
from stui_protocol_kit.conformance.runner import RunReport
from stui_protocol_kit.protocol.problems import Problem


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _case(case_id: str) -> Case:
    return Case(id=case_id, title=f"title of {case_id}", sends="", requirements=("SNP-4",), run=lambda ctx: None)


def _results() -> list[CaseResult]:
    failed = CaseResult(_case("snapshot.revision-conflict"), Outcome.FAILED, problems=[Problem(
        "SNP-4", "stale revision", "$.status", "error RevisionConflict", "success")])
    return [CaseResult(_case("hello.success"), Outcome.PASSED), failed]


def _render(stream: io.StringIO) -> str:
    terminal = TerminalReport(stream)
    results = _results()
    terminal.start(len(results), "tcp://127.0.0.1:1")
    for result in results:
        terminal.progress(result)
    report = RunReport(results, {}, "tcp://127.0.0.1:1", RunConfig(), "2026-11-24T00:00:00+00:00", 0.1)
    terminal.failures(report)
    terminal.summary(report)
    return stream.getvalue()


def test_on_a_terminal_only_cases_that_did_not_pass_get_a_line():
    out = _render(FakeTerminal())
    assert "FAILED" in out and "snapshot.revision-conflict" in out
    assert "SNP-4: A server MUST answer a snapshot" in out
    assert "at $.status: stale revision" in out
    assert "] PASSED" not in out  # passing cases only advance the bar
    assert "FAIL: 1 MUST requirement(s) broken: SNP-4" in out


def test_piped_output_is_plain_with_a_line_per_case():
    out = _render(io.StringIO())
    assert "\x1b[" not in out  # no terminal escapes in a CI log
    assert "PASSED      hello.success" in out
    assert "FAILED      snapshot.revision-conflict" in out
    assert "FAIL: 1 MUST requirement(s) broken: SNP-4" in out
